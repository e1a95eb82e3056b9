"""Order a channel through the control API, wait for its ready event, and connect with psql.

Start the demo gateway first (`cargo run -p tollgate-gateway --bin tollgate -- demo`), then:

    python3 bi-examples/api/order_channel.py [http://127.0.0.1:8080] [tg_globex.demo-globex]

Uses only the standard library and the `psql` client.
"""

import json
import subprocess
import sys
import urllib.request

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
KEY = sys.argv[2] if len(sys.argv) > 2 else "tg_globex.demo-globex"


def call(method, path, body=None):
    request = urllib.request.Request(
        BASE + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.headers, json.loads(response.read() or b"null")


def main():
    _, _, catalog = call("GET", "/v1/catalog")
    for item in catalog["items"]:
        print(f"{item['dataset']}: {len(item['columns'])} columns, "
              f"{item['prices']['currency_per_gib_returned']} per GiB returned")
    _, _, events = call("GET", "/v1/events")
    after = events["next_after"]
    status, headers, order = call("POST", "/v1/channels", {
        "kind": "postgres",
        "datasets": [{"dataset": "tpch.orders",
                      "columns": ["o_orderkey", "o_orderdate", "o_totalprice"],
                      "row_filter": "o_totalprice > 300000"}],
    })
    print(f"order {order['id']}: {status}, follow it at {headers['Location']}")
    while True:
        _, _, events = call("GET", f"/v1/events?after={after}&wait=20")
        after = events["next_after"]
        ready = [e for e in events["items"]
                 if e.get("order") == order["id"] and e["type"] in ("channel.ready", "order.failed")]
        if ready:
            break
    event = ready[0]
    if event["type"] == "order.failed":
        sys.exit(f"order failed: {event['reason']}")
    connection = event["connection"]
    print(f"channel {event['channel']} is ready: {connection['postgresql_url']}")
    conninfo = (f"host={connection['host']} port={connection['port']} dbname={connection['database']} "
                f"user={event['login']} password={event['password']}")
    subprocess.run(["psql", conninfo, "-c",
                    "SELECT count(*) AS big_orders, max(o_totalprice) FROM tpch.orders"], check=True)


if __name__ == "__main__":
    main()
