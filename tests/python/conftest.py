"""The gateway under test and what it should answer, from the environment.

tests/tests/python_clients.rs starts the demo gateway on free ports, counts a few results over
pgwire and runs pytest with these variables set.
"""

import os

import pytest


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run these tests through the Rust test, "
            "`cargo nextest run -p tollgate-tests --test python_clients`",
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def flight_uri() -> str:
    """The Flight SQL listener, e.g. `grpc://127.0.0.1:41234`."""
    return _env("TOLLGATE_FLIGHT_URI")


@pytest.fixture(scope="session")
def lineitem_rows() -> int:
    """`SELECT count(*) FROM tpch.lineitem` as acme, over pgwire."""
    return int(_env("TOLLGATE_LINEITEM_ROWS"))


@pytest.fixture(scope="session")
def globex_orders_rows() -> int:
    """`SELECT count(*) FROM tpch.orders` as globex (its grant keeps 1995 on), over pgwire."""
    return int(_env("TOLLGATE_GLOBEX_ORDERS_ROWS"))


@pytest.fixture(scope="session")
def pg_conninfo():
    """A libpq connection string for a demo tenant (whose password is its name), over pgwire."""
    host = _env("TOLLGATE_PG_HOST")
    port = _env("TOLLGATE_PG_PORT")

    def conninfo(user: str) -> str:
        return f"host={host} port={port} dbname=tollgate user={user} password={user} application_name=tests"

    return conninfo
