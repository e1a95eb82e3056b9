"""Read a dataset through the Web-API with Python `requests`: order an `http` channel,
take its token from the ready event, then page through rows by `next` links and run a SQL
statement paged by `nextUri`.

Start the demo gateway first (`cargo run -p tollgate-gateway --bin tollgate -- demo`), then:

    python3 bi-examples/web/page_dataset.py [http://127.0.0.1:8080] [tg_globex.demo-globex]
"""

import sys

import requests

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
KEY = sys.argv[2] if len(sys.argv) > 2 else "tg_globex.demo-globex"


def control(method, path, body=None):
    response = requests.request(
        method, BASE + path, json=body, headers={"Authorization": "Bearer " + KEY}, timeout=60
    )
    response.raise_for_status()
    return response.json()


def order_http_channel():
    """Orders an `http` channel of recent orders and returns its base URL and token."""
    after = control("GET", "/v1/events?after=0")["next_after"]
    order = control(
        "POST",
        "/v1/channels",
        {
            "kind": "http",
            "datasets": [
                {
                    "dataset": "tpch.orders",
                    "columns": ["o_orderkey", "o_orderdate", "o_totalprice"],
                    "row_filter": "o_orderdate >= DATE '1997-01-01'",
                }
            ],
        },
    )
    while True:
        events = control("GET", f"/v1/events?after={after}&wait=10")
        for event in events["items"]:
            if event["type"] == "channel.ready" and event["order"] == order["id"]:
                return event["connection"]["base_url"], event["connection"]["token"]
            if event["type"] == "channel.failed" and event["order"] == order["id"]:
                sys.exit(f"the order failed: {event}")
        after = events["next_after"]


def main():
    base, token = order_http_channel()
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + token

    # Resources: follow `next` links until there is none.
    url = base + "/v1/data/tpch/orders?select=o_orderkey,o_totalprice&o_totalprice=gte.200000&order=o_orderkey&limit=500"
    rows, pages = 0, 0
    while url:
        response = session.get(url, timeout=60)
        response.raise_for_status()
        rows += len(response.json())
        pages += 1
        url = response.links.get("next", {}).get("url")
    print(f"resource rows: {rows} in {pages} pages")

    # Statements: follow `nextUri` until there is none.
    page = session.post(
        base + "/v1/statements?rows=1000",
        json={
            "sql": "SELECT o_orderdate, count(*) AS orders FROM tpch.orders WHERE o_totalprice >= $1 GROUP BY o_orderdate ORDER BY o_orderdate",
            "parameters": [200000],
        },
        timeout=60,
    ).json()
    days, orders = 0, 0
    while True:
        days += len(page["data"])
        orders += sum(row["orders"] for row in page["data"])
        if "nextUri" not in page:
            break
        page = session.get(page["nextUri"], timeout=60).json()
    print(f"statement rows: {days} days, {orders} orders")


if __name__ == "__main__":
    main()
