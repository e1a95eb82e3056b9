"""SQLAlchemy 2 with psycopg2 over the pgwire front end: the engine's connect-time
queries, reflection (`inspect()`: schemas, tables, columns, keys, indexes; autoloaded
tables), and pandas.read_sql / read_sql_table, each tenant seeing only its grants.
"""

import datetime

import pandas as pd
import pytest
import sqlalchemy as sa


@pytest.fixture
def engine(pg_conninfo):
    engines = {}

    def engine_of(user: str) -> sa.Engine:
        info = dict(part.split("=", 1) for part in pg_conninfo(user).split())
        url = sa.URL.create(
            "postgresql+psycopg2",
            username=info["user"],
            password=info["password"],
            host=info["host"],
            port=int(info["port"]),
            database=info["dbname"],
        )
        engines[user] = sa.create_engine(url)
        return engines[user]

    yield engine_of
    for created in engines.values():
        created.dispose()


def test_inspect_lists_each_tenants_schemas_and_tables(engine):
    acme = sa.inspect(engine("acme"))
    assert acme.get_schema_names() == ["information_schema", "public", "tollgate", "tpch"]
    # The gateway of this run declares tpch.nation a view.
    assert sorted(acme.get_table_names(schema="tpch")) == [
        "customer",
        "lineitem",
        "orders",
        "part",
        "partsupp",
        "region",
        "supplier",
    ]
    assert acme.has_table("orders", schema="tpch")
    assert acme.get_view_names(schema="tpch") == ["nation"]
    # information_schema's relations are views, as in PostgreSQL: never listed as tables.
    assert acme.get_table_names(schema="information_schema") == []
    assert {"columns", "tables"} <= set(acme.get_view_names(schema="information_schema"))
    assert not set(acme.get_table_names()) & {"columns", "tables", "schemata"}

    globex = sa.inspect(engine("globex"))
    assert sorted(globex.get_table_names(schema="tpch")) == ["lineitem", "orders"]
    assert not globex.has_table("customer", schema="tpch")


def test_reflection_of_columns_keys_and_indexes(engine):
    globex = engine("globex")
    inspector = sa.inspect(globex)
    columns = [
        (column["name"], str(column["type"]), column["nullable"], column["default"])
        for column in inspector.get_columns("orders", schema="tpch")
    ]
    # globex's grant leaves out o_comment.
    assert columns == [
        ("o_orderkey", "BIGINT", False, None),
        ("o_custkey", "BIGINT", False, None),
        ("o_orderstatus", "TEXT", False, None),
        ("o_totalprice", "NUMERIC(15, 2)", False, None),
        ("o_orderdate", "DATE", False, None),
        ("o_orderpriority", "TEXT", False, None),
        ("o_clerk", "TEXT", False, None),
        ("o_shippriority", "INTEGER", False, None),
    ]
    # Column descriptions of the catalog are column comments.
    comments = {c["name"]: c["comment"] for c in inspector.get_columns("orders", schema="tpch")}
    assert comments["o_orderkey"] == "Order key, unique per order"
    assert comments["o_orderdate"] == "Date the order was placed"
    # The keys the demo declares; orders' key to customer is not shown to globex, which is
    # not granted customer. A primary key's index is not one of get_indexes'.
    primary = inspector.get_pk_constraint("orders", schema="tpch")
    assert (primary["name"], primary["constrained_columns"]) == ("orders_pkey", ["o_orderkey"])
    assert inspector.get_foreign_keys("orders", schema="tpch") == []
    assert [
        (key["name"], key["constrained_columns"], key["referred_schema"],
         key["referred_table"], key["referred_columns"])
        for key in inspector.get_foreign_keys("lineitem", schema="tpch")
    ] == [("lineitem_l_orderkey_fkey", ["l_orderkey"], "tpch", "orders", ["o_orderkey"])]
    assert inspector.get_indexes("orders", schema="tpch") == []
    assert inspector.get_unique_constraints("orders", schema="tpch") == []
    acme = sa.inspect(engine("acme"))
    assert sorted(
        (key["constrained_columns"], key["referred_table"], key["referred_columns"])
        for key in acme.get_foreign_keys("lineitem", schema="tpch")
    ) == [
        (["l_orderkey"], "orders", ["o_orderkey"]),
        (["l_partkey", "l_suppkey"], "partsupp", ["ps_partkey", "ps_suppkey"]),
    ]
    assert acme.get_pk_constraint("partsupp", schema="tpch")["constrained_columns"] == [
        "ps_partkey",
        "ps_suppkey",
    ]

    orders = sa.Table("orders", sa.MetaData(), schema="tpch", autoload_with=globex)
    with globex.connect() as connection:
        reflected = connection.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()
        counted = connection.execute(sa.text("SELECT count(*) FROM tpch.orders")).scalar_one()
    assert reflected == counted > 0
    assert pd.read_sql_table("orders", globex, schema="tpch").shape == (counted, 8)


def test_pandas_read_sql_types_and_values(engine):
    frame = pd.read_sql(
        "SELECT o_orderkey, o_totalprice, o_orderdate FROM tpch.orders "
        "WHERE o_orderkey < %(limit)s ORDER BY o_orderkey",
        engine("globex"),
        params={"limit": 100},
    )
    assert list(frame.columns) == ["o_orderkey", "o_totalprice", "o_orderdate"]
    assert str(frame["o_orderkey"].dtype) == "int64"
    assert str(frame["o_totalprice"].dtype) == "float64"
    # globex's grant keeps orders from 1995 on.
    assert all(date >= datetime.date(1995, 1, 1) for date in frame["o_orderdate"])
    with engine("acme").connect() as connection:
        expected = connection.execute(
            sa.text(
                "SELECT count(*) FROM tpch.orders "
                "WHERE o_orderkey < 100 AND o_orderdate >= DATE '1995-01-01'"
            )
        ).scalar_one()
    assert len(frame) == expected
