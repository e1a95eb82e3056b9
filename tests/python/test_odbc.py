"""psqlODBC (Debian's `odbc-postgresql`, through unixODBC and pyodbc) over the pgwire front
end: SQLTables, SQLColumns, SQLPrimaryKeys and SQLGetTypeInfo see only the tenant's grants;
parameters and the common types arrive as Python values.
"""

import datetime
from decimal import Decimal

import pyodbc
import pytest


@pytest.fixture
def globex(pg_conninfo):
    info = dict(part.split("=", 1) for part in pg_conninfo("globex").split())
    connection = pyodbc.connect(
        "DRIVER={PostgreSQL Unicode};"
        f"SERVER={info['host']};PORT={info['port']};DATABASE={info['dbname']};"
        f"UID={info['user']};PWD={info['password']}"
    )
    yield connection
    connection.close()


def test_catalog_functions_list_only_the_grants(globex):
    cursor = globex.cursor()
    tables = sorted((row.table_schem, row.table_name) for row in cursor.tables(schema="tpch"))
    assert tables == [("tpch", "lineitem"), ("tpch", "orders")]
    columns = [(row.column_name, row.type_name) for row in cursor.columns(table="orders", schema="tpch")]
    assert columns == [
        ("o_orderkey", "int8"),
        ("o_custkey", "int8"),
        ("o_orderstatus", "text"),
        ("o_totalprice", "numeric"),
        ("o_orderdate", "date"),
        ("o_orderpriority", "text"),
        ("o_clerk", "text"),
        ("o_shippriority", "int4"),
    ]
    assert list(cursor.primaryKeys("orders", schema="tpch")) == []
    type_names = {row.type_name for row in cursor.getTypeInfo()}
    assert {"int8", "text", "date", "numeric"} <= type_names


def test_parameters_and_types(globex):
    cursor = globex.cursor()
    rows = cursor.execute(
        "SELECT o_orderkey, o_totalprice, o_orderdate FROM tpch.orders "
        "WHERE o_orderkey < ? ORDER BY o_orderkey",
        100,
    ).fetchall()
    (expected,) = cursor.execute("SELECT count(*) FROM tpch.orders WHERE o_orderkey < 100").fetchone()
    assert len(rows) == expected > 0
    assert all(isinstance(row[1], Decimal) and isinstance(row[2], datetime.date) for row in rows)
    values = cursor.execute(
        "SELECT CAST(1 AS smallint), CAST(2 AS int), CAST(3 AS bigint), CAST(1.5 AS double precision), "
        "CAST('x' AS text), DATE '2024-02-29', TIMESTAMP '2024-01-01 10:00:00', CAST(12.34 AS numeric(10,2))"
    ).fetchone()
    assert tuple(values) == (
        1,
        2,
        3,
        1.5,
        "x",
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 1, 1, 10, 0),
        Decimal("12.34"),
    )
