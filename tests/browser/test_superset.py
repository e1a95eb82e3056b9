"""Apache Superset charting a dataset through the gateway, rendered in a real browser.

tests/tests/superset_browser.rs starts the demo gateway and runs this with TOLLGATE_PG_HOST
and TOLLGATE_PG_PORT (pgwire), TOLLGATE_SUPERSET_VENV (Superset's virtualenv, made by
scripts/python-env), TOLLGATE_SCREENSHOTS and TOLLGATE_CHROMIUM. Superset starts here with its
own SQLite metadata database; the gateway is added to it as a `postgresql+psycopg2://`
database with globex's login, `tpch.orders` is registered as a dataset, a chart of revenue
per year is created through Superset's REST API, and Debian's chromium renders the chart's
page: it shows globex's years only (its grant keeps orders from 1995 on) with the revenue
psql reads through the gateway. SQL Lab then runs a query through the gateway in the browser.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

PG_HOST = os.environ["TOLLGATE_PG_HOST"]
PG_PORT = os.environ["TOLLGATE_PG_PORT"]
SHOTS = Path(os.environ["TOLLGATE_SCREENSHOTS"])
CHROMIUM = os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium")
VENV = Path(os.environ["TOLLGATE_SUPERSET_VENV"])
CONFIG = Path(__file__).resolve().parent.parent / "superset" / "superset_config.py"
# The metadata database scripts/python-env prepared once (migrated, roles, admin user).
TEMPLATE = VENV / "tollgate-superset.db"
ADMIN = ("admin", "admin")
GLOBEX = f"host={PG_HOST} port={PG_PORT} dbname=tollgate user=globex password=globex"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def psql(sql: str) -> list[list[str]]:
    ran = subprocess.run(
        ["psql", GLOBEX, "-XAt", "-F", "\t", "-c", sql], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    return [line.split("\t") for line in ran.stdout.splitlines()]


@pytest.fixture(scope="module")
def superset(tmp_path_factory):
    """A Superset server on a free loopback port; its base URL."""
    work = tmp_path_factory.mktemp("superset")
    database = work / "superset.db"
    shutil.copyfile(TEMPLATE, database)
    env = dict(
        os.environ,
        SUPERSET_CONFIG_PATH=str(CONFIG),
        TOLLGATE_SUPERSET_DB=str(database),
        TOLLGATE_SUPERSET_SECRET=secrets.token_urlsafe(32),
        PYTHONDONTWRITEBYTECODE="1",
    )
    port = free_port()
    log = open(work / "superset.log", "w")
    server = subprocess.Popen(
        [VENV / "bin" / "superset", "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (work / "superset.log").read_text()[-5000:]
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Superset did not start in 180 s"
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def page(superset):
    """A browser page signed in to Superset as its admin."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{superset}/login/")
        page.locator("input#username, input[name=username]").first.fill(ADMIN[0])
        page.locator("input#password, input[name=password]").first.fill(ADMIN[1])
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
        yield page
        browser.close()


def api(page: Page, base: str, method: str, path: str, body=None) -> dict:
    """Calls Superset's REST API with the browser's session and its CSRF token."""
    csrf = page.request.get(f"{base}/api/v1/security/csrf_token/").json()["result"]
    answer = page.request.fetch(
        f"{base}{path}", method=method, data=body,
        headers={"X-CSRFToken": csrf, "Referer": base, "Content-Type": "application/json"},
    )
    assert answer.ok, (answer.status, answer.text())
    return answer.json()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_superset_charts_revenue_per_year_through_the_gateway(page, superset):
    database = api(page, superset, "POST", "/api/v1/database/", {
        "database_name": "Tollgate (globex)",
        "sqlalchemy_uri": f"postgresql+psycopg2://globex:globex@{PG_HOST}:{PG_PORT}/tollgate",
        "expose_in_sqllab": True,
    })["id"]
    dataset = api(page, superset, "POST", "/api/v1/dataset/", {
        "database": database, "schema": "tpch", "table_name": "orders",
    })["id"]
    columns = api(page, superset, "GET", f"/api/v1/dataset/{dataset}")["result"]["columns"]
    names = {column["column_name"] for column in columns}
    assert {"o_orderdate", "o_totalprice"} <= names
    assert "o_comment" not in names, "globex is not granted o_comment"

    year = "CAST(EXTRACT(YEAR FROM o_orderdate) AS INTEGER)"
    params = {
        "datasource": f"{dataset}__table",
        "viz_type": "table",
        "query_mode": "aggregate",
        "groupby": [{"expressionType": "SQL", "sqlExpression": year, "label": "year"}],
        "metrics": [{
            "expressionType": "SIMPLE", "column": {"column_name": "o_totalprice"},
            "aggregate": "SUM", "label": "revenue",
        }],
        "adhoc_filters": [],
        "row_limit": 100,
        "order_desc": True,
        "column_config": {"revenue": {"d3NumberFormat": ",.2f"}},
    }
    chart = api(page, superset, "POST", "/api/v1/chart/", {
        "slice_name": "Revenue per year",
        "viz_type": "table",
        "datasource_id": dataset,
        "datasource_type": "table",
        "params": json.dumps(params),
    })["id"]

    expected = {
        int(y): f"{float(revenue):,.2f}"
        for y, revenue in psql(f"SELECT {year}, sum(o_totalprice) FROM tpch.orders GROUP BY 1")
    }
    assert min(expected) == 1995, "globex's grant keeps orders from 1995 on"

    page.goto(f"{superset}/explore/?slice_id={chart}")
    expect(page.get_by_role("columnheader", name="revenue")).to_be_visible(timeout=120_000)
    for y, revenue in expected.items():
        row = page.locator("tr").filter(has_text=revenue).first
        expect(row).to_contain_text(str(y), timeout=60_000)
    shown = " ".join(page.locator("table").all_inner_texts())
    assert "1994" not in shown, "a year globex may not read"
    shot(page, "superset-chart")

    page.goto(f"{superset}/sqllab/")
    page.get_by_text("Add a new tab", exact=True).click()
    editor = page.locator(".ace_content").first
    expect(editor).to_be_visible(timeout=120_000)
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.locator(".ace_text-input").first.type("SELECT count(*) AS globex_orders FROM tpch.orders")
    page.get_by_role("button", name="Run").click()
    count = psql("SELECT count(*) FROM tpch.orders")[0][0]
    results = page.locator(".SouthPane, [data-test=sql-lab-results], main").filter(
        has_text="globex_orders"
    ).first
    expect(results).to_contain_text(count, timeout=120_000)
    shot(page, "superset-sqllab")
