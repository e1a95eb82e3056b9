"""psycopg 3 over the pgwire front end: text and binary results, typed parameters,
server-side (named) cursors, COPY TO STDOUT, and a tenant's metadata holding only its grants.
"""

import datetime
from decimal import Decimal

import psycopg
import pytest


@pytest.fixture
def acme(pg_conninfo):
    with psycopg.connect(pg_conninfo("acme")) as conn:
        yield conn


@pytest.fixture
def globex(pg_conninfo):
    with psycopg.connect(pg_conninfo("globex")) as conn:
        yield conn


ORDER_1 = "SELECT o_orderkey, o_custkey, o_totalprice, o_orderdate, o_orderpriority FROM tpch.orders WHERE o_orderkey = %s"


def test_text_and_binary_results_agree_and_have_python_types(acme):
    text = acme.execute(ORDER_1, (1,)).fetchone()
    binary = acme.cursor(binary=True).execute(ORDER_1, (1,)).fetchone()
    assert text == binary
    key, customer, price, date, priority = text
    assert key == 1
    assert isinstance(customer, int)
    assert isinstance(price, Decimal) and price > 0
    assert isinstance(date, datetime.date)
    assert isinstance(priority, str) and priority[0].isdigit()


def test_typed_parameters(acme):
    row = acme.execute(
        "SELECT count(*) FROM tpch.orders "
        "WHERE o_orderdate >= %s AND o_totalprice > %s AND o_orderpriority <> %s "
        "AND o_orderkey < %s",
        (datetime.date(1995, 1, 1), Decimal("1000.50"), "5-LOW", 10_000),
    ).fetchone()
    expected = acme.execute(
        "SELECT count(*) FROM tpch.orders WHERE o_orderdate >= DATE '1995-01-01' "
        "AND o_totalprice > 1000.50 AND o_orderpriority <> '5-LOW' AND o_orderkey < 10000"
    ).fetchone()
    assert row == expected
    assert row[0] > 0
    values = acme.execute(
        "SELECT %s::bigint, %s::double precision, %s::text, %s::boolean, %s::date",
        (7, 2.5, "zürich", True, datetime.date(2024, 2, 29)),
    ).fetchone()
    assert values == (7, 2.5, "zürich", True, datetime.date(2024, 2, 29))


@pytest.mark.parametrize("binary", [False, True])
def test_named_cursor_streams_in_pieces(acme, binary):
    (total,) = acme.execute("SELECT count(*) FROM tpch.orders").fetchone()
    with acme.cursor(name="orders_cursor", binary=binary) as cursor:
        cursor.itersize = 500
        cursor.execute("SELECT o_orderkey, o_totalprice FROM tpch.orders ORDER BY o_orderkey")
        assert [column.name for column in cursor.description] == ["o_orderkey", "o_totalprice"]
        first = cursor.fetchmany(1000)
        one = cursor.fetchone()
        rest = cursor.fetchall()
    keys = [row[0] for row in first] + [one[0]] + [row[0] for row in rest]
    assert len(keys) == total
    assert keys == sorted(keys)
    assert isinstance(first[0][1], Decimal)
    acme.commit()


def test_copy_to_stdout_text_and_binary(acme):
    with acme.cursor() as cursor:
        with cursor.copy("COPY (SELECT r_regionkey, r_name FROM tpch.region ORDER BY 1) TO STDOUT") as copy:
            text_rows = list(copy.rows())
        assert text_rows == [
            ("0", "AFRICA"),
            ("1", "AMERICA"),
            ("2", "ASIA"),
            ("3", "EUROPE"),
            ("4", "MIDDLE EAST"),
        ]
        with cursor.copy(
            "COPY (SELECT r_regionkey, r_name FROM tpch.region ORDER BY 1) TO STDOUT (FORMAT binary)"
        ) as copy:
            copy.set_types(["bigint", "text"])
            binary_rows = list(copy.rows())
        assert binary_rows == [(int(key), name) for key, name in text_rows]


def test_copy_of_a_dataset_with_its_columns(acme):
    with acme.cursor() as cursor:
        with cursor.copy("COPY tpch.region (r_regionkey, r_name) TO STDOUT") as copy:
            rows = sorted(copy.rows())
    assert rows[0] == ("0", "AFRICA")
    assert len(rows) == 5


def test_a_tenant_sees_only_its_grants(globex):
    tables = globex.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema = 'tpch' ORDER BY table_name"
    ).fetchall()
    assert tables == [("tpch", "lineitem"), ("tpch", "orders")]
    columns = [
        name
        for (name,) in globex.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'tpch' AND table_name = 'orders' ORDER BY ordinal_position"
        ).fetchall()
    ]
    assert "o_comment" not in columns and "o_orderkey" in columns
    with pytest.raises(psycopg.errors.UndefinedTable):
        globex.execute("SELECT count(*) FROM tpch.customer")


def test_dataset_descriptions_are_in_pg_description(globex):
    described = globex.execute(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'tpch' AND c.relkind = 'r' ORDER BY c.relname"
    ).fetchall()
    assert described == [("lineitem", "TPC-H lineitem table"), ("orders", "TPC-H orders table")]
    # No other tenant's dataset is described to globex.
    (customers,) = globex.execute(
        "SELECT count(*) FROM pg_catalog.pg_description WHERE description = 'TPC-H customer table'"
    ).fetchone()
    assert customers == 0
