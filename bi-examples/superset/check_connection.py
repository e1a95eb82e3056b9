#!/usr/bin/env python3
"""What Apache Superset does with a database's SQLAlchemy URI when it tests and explores the
connection: create an engine, list schemas and tables, reflect columns, run a query.

    python bi-examples/superset/check_connection.py postgresql+psycopg2://globex:globex@127.0.0.1:6432/tollgate
"""

import sys

import sqlalchemy as sa


def main() -> None:
    uri = sys.argv[1] if len(sys.argv) > 1 else "postgresql+psycopg2://acme:acme@127.0.0.1:6432/tollgate"
    engine = sa.create_engine(uri)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1")).scalar_one()
    inspector = sa.inspect(engine)
    print("schemas", ", ".join(inspector.get_schema_names()))
    for table in sorted(inspector.get_table_names(schema="tpch")):
        columns = inspector.get_columns(table, schema="tpch")
        print(f"table tpch.{table} columns={len(columns)}")
    with engine.connect() as connection:
        orders = connection.execute(sa.text("SELECT count(*) FROM tpch.orders")).scalar_one()
    print(f"orders={orders}")
    engine.dispose()
    print("ok")


if __name__ == "__main__":
    main()
