"""Python clients against Tollgate's Arrow Flight SQL front end.

Four clients, as tenants use them: the ADBC Flight SQL driver (the Go driver behind the
DB-API), raw `pyarrow.flight`, the scripts of `bi-examples/`, and a Spark job. The gateway is
started by tests/tests/python_clients.rs, which passes its address and the expected counts in
the environment (see conftest.py). Demo logins: user = password = tenant (`acme`, `globex`).
"""

import datetime
import os
import pathlib
import re
import subprocess
import sys

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from parallel_endpoints import DEFAULT_QUERY as LINEITEM_QUERY
from parallel_endpoints import login, read_endpoints, statement_query

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "bi-examples"

TPCH_TABLES = [
    "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier",
]


def adbc_connect(uri: str, user: str, password: str | None = None):
    """An ADBC DB-API connection; the demo password is the user's name."""
    return flight_sql.connect(
        uri,
        db_kwargs={"username": user, "password": user if password is None else password},
        # Read-only gateway: without this the driver warns that it cannot start transactions.
        autocommit=True,
    )


# --- ADBC -------------------------------------------------------------------------------------


def tpch_tables(conn) -> list[str]:
    """The tables that ADBC's GetObjects lists in catalog `tollgate`, schema `tpch`."""
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    catalogs = {catalog["catalog_name"]: catalog for catalog in objects}
    assert "tollgate" in catalogs, objects
    schemas = {
        schema["db_schema_name"]: schema
        for schema in catalogs["tollgate"]["catalog_db_schemas"] or []
    }
    assert "tpch" in schemas, objects
    return sorted(table["table_name"] for table in schemas["tpch"]["db_schema_tables"] or [])


def test_adbc_objects_are_the_grants(flight_uri):
    with adbc_connect(flight_uri, "acme") as conn:
        assert tpch_tables(conn) == TPCH_TABLES
    with adbc_connect(flight_uri, "globex") as conn:
        assert tpch_tables(conn) == ["lineitem", "orders"]


def test_adbc_table_schema_is_shaped_by_the_grant(flight_uri):
    with adbc_connect(flight_uri, "globex") as conn:
        orders = conn.adbc_get_table_schema(
            "orders", catalog_filter="tollgate", db_schema_filter="tpch"
        )
    assert "o_orderkey" in orders.names
    assert "o_comment" not in orders.names
    assert orders.field("o_orderdate").type == pa.date32()
    with adbc_connect(flight_uri, "acme") as conn:
        assert "o_comment" in conn.adbc_get_table_schema("orders", db_schema_filter="tpch").names


def test_adbc_wrong_password_fails_authentication(flight_uri):
    with pytest.raises(adbc_driver_manager.ProgrammingError) as failure:
        adbc_connect(flight_uri, "acme", "not the password")
    assert failure.value.status_code == adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED
    assert "Unauthenticated" in str(failure.value)


def single_value(cursor, sql: str, parameters=None):
    cursor.execute(sql, parameters)
    (value,) = cursor.fetchone()
    return value


def test_adbc_bound_parameters_match_inlined_literals(flight_uri):
    since = "SELECT count(*) FROM tpch.orders WHERE o_orderdate >= {}"
    priority = (
        "SELECT count(*) FROM tpch.orders WHERE o_orderpriority = {} AND o_custkey > {}"
    )
    with adbc_connect(flight_uri, "acme") as conn, conn.cursor() as cursor:
        # A date: CreatePreparedStatement, DoPut of a one-row date32 batch, GetFlightInfo.
        bound_1996 = single_value(cursor, since.format("$1"), (datetime.date(1996, 1, 1),))
        literal_1996 = single_value(cursor, since.format("DATE '1996-01-01'"))
        assert 0 < bound_1996 == literal_1996
        # The same prepared statement bound again with another value.
        bound_1997 = single_value(cursor, since.format("$1"), (datetime.date(1997, 1, 1),))
        literal_1997 = single_value(cursor, since.format("DATE '1997-01-01'"))
        assert 0 < bound_1997 == literal_1997 < literal_1996
        # Text and integer parameters (sent as Utf8 and Int64).
        bound = single_value(cursor, priority.format("$1", "$2"), ("1-URGENT", 100))
        literal = single_value(cursor, priority.format("'1-URGENT'", "100"))
        assert 0 < bound == literal


def test_adbc_arrow_types(flight_uri):
    with adbc_connect(flight_uri, "acme") as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT o_orderkey, o_orderdate, o_totalprice, o_orderpriority "
            "FROM tpch.orders ORDER BY o_orderkey LIMIT 3"
        )
        table = cursor.fetch_arrow_table()
    assert table.num_rows == 3
    schema = table.schema
    assert schema.field("o_orderkey").type == pa.int64()
    assert schema.field("o_orderdate").type == pa.date32()
    assert schema.field("o_totalprice").type == pa.decimal128(15, 2)
    priority = schema.field("o_orderpriority").type
    assert pa.types.is_string(priority) or pa.types.is_string_view(priority), priority
    assert table.column("o_orderkey").to_pylist() == [1, 2, 3]
    assert isinstance(table.column("o_orderdate")[0].as_py(), datetime.date)


def test_adbc_dataset_not_granted_does_not_exist(flight_uri):
    with adbc_connect(flight_uri, "globex") as conn, conn.cursor() as cursor:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="does not exist"):
            cursor.execute("SELECT * FROM tpch.customer")


# --- pyarrow.flight ---------------------------------------------------------------------------


@pytest.fixture
def client(flight_uri):
    with flight.FlightClient(flight_uri) as client:
        yield client


def test_basic_login_returns_a_bearer_token(client):
    name, value = client.authenticate_basic_token("globex", "globex")
    assert name.lower() == b"authorization"
    assert value.startswith(b"Bearer ")
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token("globex", "not the password")


def test_calls_without_a_valid_token_are_unauthenticated(client):
    query = statement_query("SELECT 1")
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(query)
    forged = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer forged")])
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(query, forged)


def test_all_endpoints_read_in_parallel(client, lineitem_rows):
    options = login(client, "acme", "acme")
    info = client.get_flight_info(statement_query(LINEITEM_QUERY), options)
    assert len(info.endpoints) >= 1
    assert info.schema.names == ["l_orderkey", "l_partkey", "l_quantity", "l_extendedprice"]
    table = read_endpoints(client, info, options, workers=4)
    assert table.num_rows == lineitem_rows
    # Each stream has the schema announced by GetFlightInfo (the ADBC driver insists on it).
    assert table.schema.equals(info.schema)


def test_a_ticket_is_redeemed_only_by_its_tenant(client):
    acme = login(client, "acme", "acme")
    info = client.get_flight_info(statement_query(LINEITEM_QUERY), acme)
    ticket = info.endpoints[0].ticket
    globex = login(client, "globex", "globex")
    with pytest.raises(flight.FlightUnauthorizedError):
        client.do_get(ticket, globex).read_all()
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.do_get(ticket).read_all()


# --- the examples -----------------------------------------------------------------------------


def run_example(path: pathlib.Path, *args: str, timeout: float = 120) -> str:
    """Runs an example with this interpreter; returns stdout, failing with both streams."""
    done = subprocess.run(
        [sys.executable, str(path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{path.name} {args} failed:\n{done.stderr}\n{done.stdout}"
    return done.stdout


def test_example_adbc_pandas(flight_uri):
    script = EXAMPLES / "flight-python" / "adbc_pandas.py"
    out = run_example(script, "--uri", flight_uri)
    for table in TPCH_TABLES:
        assert f"tollgate.tpch.{table}" in out, out
    assert "o_comment" in out, out
    assert re.search(r"^\s*1-URGENT\s+\d+$", out, re.MULTILINE), out

    out = run_example(script, "--uri", flight_uri, "--user", "globex", "--password", "globex")
    assert "tollgate.tpch.orders" in out, out
    assert "tollgate.tpch.customer" not in out, out
    assert "o_comment" not in out, out
    assert re.search(r"^\s*5-LOW\s+\d+$", out, re.MULTILINE), out


def test_example_parallel_endpoints(flight_uri, lineitem_rows):
    out = run_example(EXAMPLES / "flight-python" / "parallel_endpoints.py", "--uri", flight_uri)
    found = re.search(r"^endpoints=(\d+) rows=(\d+)$", out, re.MULTILINE)
    assert found, out
    assert int(found[1]) >= 1
    assert int(found[2]) == lineitem_rows


@pytest.mark.skipif(
    os.environ.get("TOLLGATE_SKIP_SPARK") == "1", reason="TOLLGATE_SKIP_SPARK=1"
)
def test_example_spark_reads_every_endpoint(flight_uri, globex_orders_rows):
    args = ["--uri", flight_uri, "--dataset", "orders", "--user", "globex", "--password", "globex"]
    out = run_example(EXAMPLES / "spark" / "read_dataset.py", *args, timeout=600)
    found = re.search(r"^rows=(\d+)$", out, re.MULTILINE)
    assert found, out
    assert int(found[1]) == globex_orders_rows
