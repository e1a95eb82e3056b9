"""moto's standalone server, with two behaviours of Athena's API that moto leaves out, and
faults a test can turn on.

* GetQueryResults pages: at most MaxResults rows (default 1,000, the header row of a
  SELECT included) per page, and a NextToken while rows remain, as Athena does.
* A succeeded query reports DataScannedInBytes: the value of the environment variable
  TOLLGATE_MOTO_ATHENA_SCANNED_BYTES (moto always reports 0).
* Faults of S3 object reads (GET and HEAD of `/<bucket>/<key>`, not listings): a JSON body
  `{"status": 503, "delay": 0.0, "count": 2}` POSTed to `/_tollgate/faults` makes the next
  `count` object reads wait `delay` seconds, then answer `status` with S3's error body (or,
  with `status` null, the real answer, late). `GET /_tollgate/faults` returns how many
  faults are left and how many were served.

Usage: python moto_server.py -H 127.0.0.1 -p PORT   (the arguments of `python -m moto.server`)
"""

import json
import os
import threading
import time

import moto.server
from moto.athena.responses import AthenaResponse
from moto.server import main

PAGE_ROWS = 1000
SCANNED_BYTES = int(os.environ.get("TOLLGATE_MOTO_ATHENA_SCANNED_BYTES", "0"))

all_results = AthenaResponse.get_query_results
execution = AthenaResponse.get_query_execution


def paged_results(self):
    body = json.loads(all_results(self))
    rows = body["ResultSet"]["Rows"]
    size = int(self._get_param("MaxResults") or PAGE_ROWS)
    start = int(self._get_param("NextToken") or 0)
    body["ResultSet"]["Rows"] = rows[start : start + size]
    if start + size < len(rows):
        body["NextToken"] = str(start + size)
    return json.dumps(body)


def execution_with_scanned_bytes(self):
    body = json.loads(execution(self))
    query = body["QueryExecution"]
    if query["Status"]["State"] == "SUCCEEDED":
        query["Statistics"]["DataScannedInBytes"] = SCANNED_BYTES
    return json.dumps(body)


AthenaResponse.get_query_results = paged_results
AthenaResponse.get_query_execution = execution_with_scanned_bytes

FAULTS_PATH = "/_tollgate/faults"
S3_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


class Faults:
    """The faults still to inject into object reads, shared by the server's threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.status = None
        self.delay = 0.0
        self.left = 0
        self.served = 0

    def configure(self, body):
        with self.lock:
            self.status = body.get("status")
            self.delay = float(body.get("delay", 0.0))
            self.left = int(body.get("count", 0))
            self.served = 0

    def take(self):
        """The fault for one object read, if any is left: (status or None, delay)."""
        with self.lock:
            if self.left <= 0:
                return None
            self.left -= 1
            self.served += 1
            return self.status, self.delay

    def state(self):
        with self.lock:
            return {"left": self.left, "served": self.served}


FAULTS = Faults()


def is_object_read(environ):
    segments = [part for part in environ.get("PATH_INFO", "").split("/") if part]
    return environ.get("REQUEST_METHOD") in ("GET", "HEAD") and len(segments) >= 2


def answer(start_response, status, body):
    data = body.encode()
    reason = {200: "OK", 500: "Internal Server Error", 503: "Service Unavailable"}
    start_response(
        f"{status} {reason.get(status, 'Error')}",
        [("Content-Type", "application/xml" if status >= 400 else "application/json"),
         ("Content-Length", str(len(data)))],
    )
    return [data]


class FaultyDispatcher(moto.server.DomainDispatcherApplication):
    """moto's dispatcher with the fault switch in front of it."""

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == FAULTS_PATH:
            if environ["REQUEST_METHOD"] == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                FAULTS.configure(json.loads(environ["wsgi.input"].read(length) or b"{}"))
            return answer(start_response, 200, json.dumps(FAULTS.state()))
        fault = FAULTS.take() if is_object_read(environ) else None
        if fault is not None:
            status, delay = fault
            time.sleep(delay)
            if status is not None:
                code, message = S3_ERRORS.get(status, ("InternalError", "injected fault"))
                body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
                return answer(start_response, status, body)
        return super().__call__(environ, start_response)


moto.server.DomainDispatcherApplication = FaultyDispatcher

if __name__ == "__main__":
    main()
