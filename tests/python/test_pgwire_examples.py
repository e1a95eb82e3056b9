"""The pgwire examples of `bi-examples/` (python, odbc, superset), run as their READMEs say."""

import re

from test_flight import EXAMPLES, run_example


def test_example_sqlalchemy_pandas(pg_conninfo):
    info = dict(part.split("=", 1) for part in pg_conninfo("globex").split())
    script = EXAMPLES / "python" / "sqlalchemy_pandas.py"
    where = ["--host", info["host"], "--port", info["port"]]
    out = run_example(script, *where, "--user", "globex", "--password", "globex")
    assert re.findall(r"^table (\S+):", out, re.MULTILINE) == ["tpch.lineitem", "tpch.orders"], out
    assert "table tpch.orders: TPC-H orders table" in out, out
    assert "column tpch.orders.o_orderkey BIGINT" in out, out
    assert "o_comment" not in out, out
    assert re.search(r"^\s*5-LOW\s+\d+$", out, re.MULTILINE), out
    streamed = re.search(r"^streamed=(\d+)$", out, re.MULTILINE)
    assert streamed and int(streamed[1]) > 0, out

    out = run_example(script, *where)
    assert "table tpch.customer:" in out, out
    assert "column tpch.orders.o_comment TEXT" in out, out


def test_example_odbc_tables(pg_conninfo, monkeypatch):
    info = dict(part.split("=", 1) for part in pg_conninfo("globex").split())
    monkeypatch.setenv("ODBCINI", str(EXAMPLES / "odbc" / "odbc.ini"))
    out = run_example(
        EXAMPLES / "odbc" / "odbc_tables.py",
        "--user", "globex", "--password", "globex",
        "--server", info["host"], "--port", info["port"],
    )
    assert re.findall(r"^table (\S+)$", out, re.MULTILINE) == ["tpch.lineitem", "tpch.orders"], out
    assert "column tpch.orders.o_orderkey int8" in out, out
    assert "o_comment" not in out, out
    assert re.search(r"^5-LOW \d+$", out, re.MULTILINE), out


def test_example_superset_connection(pg_conninfo):
    info = dict(part.split("=", 1) for part in pg_conninfo("globex").split())
    uri = f"postgresql+psycopg2://globex:globex@{info['host']}:{info['port']}/tollgate"
    out = run_example(EXAMPLES / "superset" / "check_connection.py", uri)
    assert "table tpch.orders columns=8" in out, out
    assert "table tpch.lineitem columns=15" in out, out
    assert "customer" not in out, out
    assert out.rstrip().endswith("ok"), out
