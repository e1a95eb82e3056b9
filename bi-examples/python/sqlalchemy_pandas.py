#!/usr/bin/env python3
"""Tollgate over the Postgres wire protocol from Python: SQLAlchemy's reflection and pandas,
as an analyst's notebook would use them.

Connects as a tenant, lists the tables it was granted with their descriptions and the columns
of `tpch.orders` as the grant shapes them, then reads orders per priority into a DataFrame,
and streams the orders of one date range through a psycopg server-side cursor:

    python bi-examples/python/sqlalchemy_pandas.py --user globex --password globex

SQLAlchemy (with psycopg2) reflects through `pg_catalog`, which Tollgate scopes to the
tenant's grants; the server-side cursor is `DECLARE … CURSOR` and `FETCH`, which stream
without the gateway collecting the result.
"""

import argparse
import datetime

import pandas as pd
import psycopg
import sqlalchemy as sa

ORDERS_PER_PRIORITY = """
SELECT o_orderpriority, count(*) AS orders
FROM tpch.orders
WHERE o_orderdate >= %(since)s
GROUP BY o_orderpriority
ORDER BY o_orderpriority
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6432)
    parser.add_argument("--user", default="acme")
    parser.add_argument("--password", default="acme")
    parser.add_argument("--since", type=datetime.date.fromisoformat, default=datetime.date(1995, 1, 1))
    args = parser.parse_args()

    url = sa.URL.create(
        "postgresql+psycopg2",
        username=args.user,
        password=args.password,
        host=args.host,
        port=args.port,
        database="tollgate",
    )
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    for table in sorted(inspector.get_table_names(schema="tpch")):
        comment = inspector.get_table_comment(table, schema="tpch")["text"] or ""
        print(f"table tpch.{table}: {comment}")
    for column in inspector.get_columns("orders", schema="tpch"):
        print(f"column tpch.orders.{column['name']} {column['type']}")

    frame = pd.read_sql(ORDERS_PER_PRIORITY, engine, params={"since": args.since})
    print(frame.to_string(index=False))
    engine.dispose()

    conninfo = (
        f"host={args.host} port={args.port} dbname=tollgate user={args.user} password={args.password}"
    )
    with psycopg.connect(conninfo) as connection:
        with connection.cursor(name="orders_since") as cursor:
            cursor.itersize = 1000
            cursor.execute(
                "SELECT o_orderkey FROM tpch.orders WHERE o_orderdate >= %s", (args.since,)
            )
            streamed = sum(1 for _ in cursor)
    print(f"streamed={streamed}")


if __name__ == "__main__":
    main()
