#!/usr/bin/env python3
"""Tollgate over ODBC (psqlODBC through unixODBC) from Python with pyodbc, the way Power BI,
Tableau and Excel reach it: the DSN of `odbc.ini`, the catalog functions (SQLTables,
SQLColumns) a BI tool calls to show its navigator, and a parameterized query.

    ODBCINI=bi-examples/odbc/odbc.ini python bi-examples/odbc/odbc_tables.py --user globex --password globex
"""

import argparse

import pyodbc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="tollgate")
    parser.add_argument("--user", default="acme")
    parser.add_argument("--password", default="acme")
    parser.add_argument("--server", help="overrides the DSN's Servername")
    parser.add_argument("--port", help="overrides the DSN's Port")
    args = parser.parse_args()

    connection_string = f"DSN={args.dsn};UID={args.user};PWD={args.password}"
    if args.server:
        connection_string += f";Servername={args.server}"
    if args.port:
        connection_string += f";Port={args.port}"
    with pyodbc.connect(connection_string) as connection:
        cursor = connection.cursor()
        for table in cursor.tables(schema="tpch").fetchall():
            print(f"table {table.table_schem}.{table.table_name}")
        for column in cursor.columns(table="orders", schema="tpch").fetchall():
            print(f"column tpch.orders.{column.column_name} {column.type_name}")
        rows = cursor.execute(
            "SELECT o_orderpriority, count(*) FROM tpch.orders WHERE o_orderkey < ? "
            "GROUP BY o_orderpriority ORDER BY o_orderpriority",
            10_000,
        ).fetchall()
        for priority, orders in rows:
            print(f"{priority} {orders}")


if __name__ == "__main__":
    main()
