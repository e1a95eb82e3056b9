"""SQLAlchemy 2 with psycopg2 over the pgwire front end: the engine's connect-time
queries, reflection of schemas and tables (`inspect()`), and pandas.read_sql, each tenant
seeing only its grants.
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
    assert sorted(acme.get_table_names(schema="tpch")) == [
        "customer",
        "lineitem",
        "nation",
        "orders",
        "part",
        "partsupp",
        "region",
        "supplier",
    ]
    assert acme.has_table("orders", schema="tpch")
    assert acme.get_view_names(schema="tpch") == []

    globex = sa.inspect(engine("globex"))
    assert sorted(globex.get_table_names(schema="tpch")) == ["lineitem", "orders"]
    assert not globex.has_table("customer", schema="tpch")


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
