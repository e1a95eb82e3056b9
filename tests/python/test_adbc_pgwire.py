"""The ADBC PostgreSQL driver over the pgwire front end: its connect-time type query,
results as Arrow (the driver reads every query with COPY … TO STDOUT (FORMAT binary)),
bound parameters, and `adbc_get_objects` / `adbc_get_table_schema` listing only the
tenant's datasets.
"""

import adbc_driver_postgresql.dbapi as adbc_pg
import pyarrow as pa
import pytest


@pytest.fixture
def globex(pg_conninfo):
    info = dict(part.split("=", 1) for part in pg_conninfo("globex").split())
    uri = (
        f"postgresql://{info['user']}:{info['password']}@{info['host']}:{info['port']}"
        f"/{info['dbname']}"
    )
    with adbc_pg.connect(uri) as connection:
        yield connection


def test_results_are_arrow_with_postgres_types(globex):
    with globex.cursor() as cursor:
        cursor.execute(
            "SELECT o_orderkey, o_orderdate, o_orderpriority, o_shippriority FROM tpch.orders "
            "WHERE o_orderkey < $1 ORDER BY o_orderkey",
            parameters=(100,),
        )
        table = cursor.fetch_arrow_table()
        cursor.execute(
            "SELECT count(*) FROM tpch.orders WHERE o_orderkey < 100"
        )
        (expected,) = cursor.fetchone()
    assert table.schema.types == [pa.int64(), pa.date32(), pa.string(), pa.int32()]
    assert table.num_rows == expected > 0
    keys = table.column("o_orderkey").to_pylist()
    assert keys == sorted(keys)


def test_get_objects_lists_only_the_tenants_datasets(globex):
    objects = globex.adbc_get_objects(depth="all").read_all().to_pylist()
    tables = {
        (schema["db_schema_name"], table["table_name"]): [
            column["column_name"] for column in table["table_columns"]
        ]
        for catalog in objects
        for schema in catalog["catalog_db_schemas"] or []
        for table in schema["db_schema_tables"] or []
    }
    # The datasets granted to globex, and its own `tollgate` schema (usage, queries).
    assert {name for name in tables if name[0] != "tollgate"} == {
        ("tpch", "orders"),
        ("tpch", "lineitem"),
    }
    assert ("tollgate", "usage") in tables
    assert "o_comment" not in tables[("tpch", "orders")]
    assert "o_orderkey" in tables[("tpch", "orders")]
    constraints = {
        (schema["db_schema_name"], table["table_name"]): [
            (c["constraint_name"], c["constraint_type"], c["constraint_column_names"],
             [u["fk_table"] + "." + u["fk_column_name"] for u in c["constraint_column_usage"] or []])
            for c in table["table_constraints"] or []
        ]
        for catalog in objects
        for schema in catalog["catalog_db_schemas"] or []
        for table in schema["db_schema_tables"] or []
    }
    # The keys the demo declares that globex sees (orders' key to customer is not one).
    assert constraints[("tpch", "orders")] == [("orders_pkey", "PRIMARY KEY", ["o_orderkey"], [])]
    assert constraints[("tpch", "lineitem")] == [
        ("lineitem_pkey", "PRIMARY KEY", ["l_orderkey", "l_linenumber"], []),
        ("lineitem_l_orderkey_fkey", "FOREIGN KEY", ["l_orderkey"], ["orders.o_orderkey"]),
    ]
    schema = globex.adbc_get_table_schema("orders", db_schema_filter="tpch")
    assert schema.field("o_orderkey").type == pa.int64()
    assert "o_comment" not in schema.names
