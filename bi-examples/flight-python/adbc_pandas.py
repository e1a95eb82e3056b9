#!/usr/bin/env python3
"""Tollgate over Arrow Flight SQL from Python, with the ADBC driver and pandas.

Logs in as a tenant, lists the tables it was granted and the columns of `tpch.orders` as the
grant shapes them, then runs a parameterized query and reads the result into pandas:

    python bi-examples/flight-python/adbc_pandas.py --user globex --password globex

What the driver does on the wire: `connect` is a Flight Handshake with HTTP basic credentials,
answered with a bearer token that every later call carries. `adbc_get_objects` is
GetCatalogs, GetDbSchemas and GetTables. `cursor.execute(sql, parameters)` creates a prepared
statement, sends the parameters as one Arrow record batch (DoPut), asks for the result
(GetFlightInfo) and reads each endpoint (DoGet); `fetch_df` hands the Arrow batches to pandas.
"""

import argparse
import datetime

import adbc_driver_flightsql.dbapi as flight_sql

# `$1` is the first parameter: Tollgate parses SQL in the PostgreSQL dialect.
ORDERS_PER_PRIORITY = """
SELECT o_orderpriority, count(*) AS orders
FROM tpch.orders
WHERE o_orderdate >= $1
GROUP BY o_orderpriority
ORDER BY o_orderpriority
"""


def main() -> None:
    args = parse_args()
    # autocommit: the gateway is read-only and has no transactions to turn on.
    with flight_sql.connect(
        args.uri,
        db_kwargs={"username": args.user, "password": args.password},
        autocommit=True,
    ) as conn:
        print(f"tables granted to {args.user}:")
        for name in granted_tables(conn):
            print(f"  {name}")

        orders = conn.adbc_get_table_schema("orders", db_schema_filter="tpch")
        print(f"columns of tpch.orders: {', '.join(orders.names)}")

        with conn.cursor() as cursor:
            cursor.execute(ORDERS_PER_PRIORITY, (args.since,))
            frame = cursor.fetch_df()

    print(f"orders per priority since {args.since}:")
    print(frame.to_string(index=False))


def granted_tables(conn) -> list[str]:
    """`catalog.schema.table` of every table the tenant sees, from ADBC's GetObjects tree."""
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    return sorted(
        f"{catalog['catalog_name']}.{schema['db_schema_name']}.{table['table_name']}"
        for catalog in objects
        for schema in catalog["catalog_db_schemas"] or []
        for table in schema["db_schema_tables"] or []
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default="grpc://127.0.0.1:50051")
    parser.add_argument("--user", default="acme")
    parser.add_argument("--password", default="acme")
    parser.add_argument(
        "--since",
        type=datetime.date.fromisoformat,
        default=datetime.date(1996, 1, 1),
        help="first order date counted (default 1996-01-01)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
