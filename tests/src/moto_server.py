"""moto's standalone server, with two behaviours of Athena's API that moto leaves out.

* GetQueryResults pages: at most MaxResults rows (default 1,000, the header row of a
  SELECT included) per page, and a NextToken while rows remain, as Athena does.
* A succeeded query reports DataScannedInBytes: the value of the environment variable
  TOLLGATE_MOTO_ATHENA_SCANNED_BYTES (moto always reports 0).

Usage: python moto_server.py -H 127.0.0.1 -p PORT   (the arguments of `python -m moto.server`)
"""

import json
import os

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

if __name__ == "__main__":
    main()
