"""psqlODBC (Debian's `odbc-postgresql`, through unixODBC and pyodbc) over the pgwire front
end: SQLTables, SQLColumns, SQLPrimaryKeys and SQLGetTypeInfo see only the tenant's grants;
parameters and the common types arrive as Python values. unixODBC's `isql` runs a query and
lists the tables through a data source, as a shell user would.
"""

import datetime
import os
import subprocess
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
    keys = [(row.column_name, row.key_seq, row.pk_name) for row in cursor.primaryKeys("orders", schema="tpch")]
    assert keys == [("o_orderkey", 1, "orders_pkey")]
    foreign = [
        (row.pktable_name, row.pkcolumn_name, row.fkcolumn_name, row.fk_name)
        for row in cursor.foreignKeys(foreignTable="lineitem", foreignSchema="tpch")
    ]
    assert foreign == [("orders", "o_orderkey", "l_orderkey", "lineitem_l_orderkey_fkey")]
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


def test_isql_queries_and_lists_tables_through_a_data_source(pg_conninfo, tmp_path):
    info = dict(part.split("=", 1) for part in pg_conninfo("globex").split())
    odbc_ini = tmp_path / "odbc.ini"
    odbc_ini.write_text(
        "[tollgate]\nDriver = PostgreSQL Unicode\n"
        f"Servername = {info['host']}\nPort = {info['port']}\nDatabase = {info['dbname']}\n"
    )
    commands = (
        "SELECT o_orderpriority, count(*) FROM tpch.orders GROUP BY o_orderpriority ORDER BY 1\n"
        "help\n"
    )
    run = subprocess.run(
        ["isql", "-b", "-d|", "-c", "tollgate", "globex", "globex"],
        input=commands,
        capture_output=True,
        text=True,
        env={**os.environ, "ODBCINI": str(odbc_ini)},
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    priorities = [line.split("|")[0] for line in lines if line[:2] in {"1-", "2-", "3-", "4-", "5-"}]
    assert priorities == ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"], run.stdout
    tables = [line.split("|")[1:3] for line in lines if line.startswith("tollgate|tpch|")]
    assert tables == [["tpch", "lineitem"], ["tpch", "orders"]], run.stdout
    assert "customer" not in run.stdout, run.stdout
