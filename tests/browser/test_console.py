"""The web console in a real browser (Debian's chromium, headless, driven by Playwright).

tests/tests/console_browser.rs starts the demo gateway and runs this with:
TOLLGATE_HTTP_URL (the HTTP listener), TOLLGATE_PG_HOST and TOLLGATE_PG_PORT (pgwire),
TOLLGATE_SCREENSHOTS (where screenshots go) and TOLLGATE_CHROMIUM (the browser). A tenant
signs in, orders a `postgres` channel, copies the psql connection string it is shown once,
runs queries with psql through it, sees them in its usage chart, and revokes the channel;
a query running in psql is listed and cancelled from the console; globex never sees acme's
datasets, channels or usage; the provider's pages list tenants, usage across tenants and the
audit trail; every page passes axe-core with no serious or critical violation.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect, sync_playwright

BASE = os.environ["TOLLGATE_HTTP_URL"]
SHOTS = Path(os.environ["TOLLGATE_SCREENSHOTS"])
CHROMIUM = os.environ.get("TOLLGATE_CHROMIUM", "/usr/bin/chromium")
KEYS = {
    "acme": "tg_acme.demo-acme",
    "globex": "tg_globex.demo-globex",
    "admin": "tg_admin.demo-admin",
}


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def signed_in(browser, who: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=BASE)
    page = context.new_page()
    page.goto(f"{BASE}/console")
    page.get_by_label("API key").fill(KEYS[who])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(f"Signed in as {'provider' if who == 'admin' else who}")).to_be_visible()
    return page


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def accessible(page: Page) -> None:
    results = Axe().run(page)
    serious = [
        violation
        for violation in results.response["violations"]
        if violation.get("impact") in ("serious", "critical")
    ]
    assert not serious, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in serious]


def queries_so_far(page: Page) -> int:
    page.goto(f"{BASE}/console#/usage")
    total = page.locator("#usage-total")
    expect(total).to_contain_text("queries")
    return int(re.match(r"(\d+) queries", total.inner_text()).group(1))


def test_a_tenant_orders_a_channel_queries_through_it_sees_its_usage_and_revokes_it(browser):
    page = signed_in(browser, "globex")
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
    expect(page.get_by_role("heading", name="tpch.orders")).to_be_visible()
    accessible(page)
    shot(page, "tenant-catalog")
    before = queries_so_far(page)

    page.goto(f"{BASE}/console#/channels?dataset=tpch.orders")
    expect(page.get_by_role("heading", name="Order a channel")).to_be_visible()
    page.get_by_label("Kind").select_option("postgres")
    page.get_by_label("Row filter").fill("o_orderpriority = '1-URGENT'")
    accessible(page)
    page.get_by_role("button", name="Order channel").click()
    credentials = page.locator("#credentials")
    expect(credentials).to_be_visible(timeout=60_000)
    psql = page.locator('pre[data-label="psql"]').inner_text()
    assert psql.startswith('psql "host=')
    page.locator('button[aria-label="Copy psql"]').click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == psql
    shot(page, "tenant-channel-credentials")

    conninfo = re.match(r'psql "(.*)"$', psql).group(1)
    for sql in (
        "SELECT count(*) FROM tpch.orders",
        "SELECT o_orderpriority, count(*) FROM tpch.orders GROUP BY 1",
        "SELECT sum(o_totalprice) FROM tpch.orders",
    ):
        ran = subprocess.run(
            ["psql", conninfo, "-XAtc", sql], capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr
    priorities = subprocess.run(
        ["psql", conninfo, "-XAtc", "SELECT DISTINCT o_orderpriority FROM tpch.orders"],
        capture_output=True, text=True, timeout=60,
    ).stdout.split()
    assert priorities == ["1-URGENT"], "the channel's row filter holds"

    after = queries_so_far(page)
    assert after >= before + 4, (before, after)
    expect(page.get_by_role("img", name="Queries per day")).to_be_visible()
    expect(page.get_by_role("img", name="Cost per dataset")).to_contain_text("tpch.orders")
    accessible(page)
    shot(page, "tenant-usage")

    page.goto(f"{BASE}/console#/channels")
    channel = page.locator("#channel-list tbody tr").filter(has_text="tpch.orders").first
    name = channel.locator("td").first.inner_text()
    channel.get_by_role("button", name=f"Revoke {name}").click()
    expect(page.get_by_text(f"Channel {name} is revoked.")).to_be_visible()
    ran = subprocess.run(
        ["psql", conninfo, "-XAtc", "SELECT 1"], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode != 0, "a revoked channel's login still connects"
    shot(page, "tenant-channels")


def endless_query_of_acme(bound: int) -> subprocess.Popen:
    """psql running, as acme's own login, a join that rejects every pair (`bound` tells the
    queries apart)."""
    conninfo = (
        f"host={os.environ['TOLLGATE_PG_HOST']} port={os.environ['TOLLGATE_PG_PORT']} "
        "dbname=tollgate user=acme password=acme"
    )
    return subprocess.Popen(
        ["psql", conninfo, "-XAtc",
         "SELECT count(*) FROM tpch.lineitem a CROSS JOIN tpch.lineitem b "
         f"WHERE a.l_orderkey + b.l_orderkey < {bound}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_a_running_query_is_listed_and_cancelled(browser):
    heavy = endless_query_of_acme(0)
    try:
        page = signed_in(browser, "acme")
        page.goto(f"{BASE}/console#/queries")
        expect(page.get_by_role("heading", name="Running queries")).to_be_visible()
        row = page.locator("#query-list tbody tr").filter(has_text="CROSS JOIN")
        for _ in range(50):
            if row.count():
                break
            page.get_by_role("button", name="Refresh").click()
            page.wait_for_timeout(200)
        expect(row).to_have_count(1)
        accessible(page)
        shot(page, "tenant-queries")
        query = row.locator("td").first.inner_text()
        row.get_by_role("button", name=f"Cancel query {query}").click()
        expect(page.get_by_text(f"Query {query} is cancelled.")).to_be_visible()
        _, stderr = heavy.communicate(timeout=60)
        assert heavy.returncode != 0
        assert "cancel" in stderr.lower(), stderr
    finally:
        heavy.kill()


def ordered_postgres_channel(page: Page, dataset: str) -> str:
    """Orders a `postgres` channel of `dataset` on the console's channels page, waits until
    its credentials show; the channel's id."""
    page.goto(f"{BASE}/console#/channels?dataset={dataset}")
    page.get_by_label("Kind").select_option("postgres")
    page.get_by_role("button", name="Order channel").click()
    expect(page.locator("#credentials")).to_be_visible(timeout=60_000)
    return re.search(r"Channel (\S+) is ready", page.locator("#order-status").inner_text()).group(1)


def test_globex_never_sees_acme_datasets_channels_or_usage(browser):
    acme = signed_in(browser, "acme")
    acme_channel = ordered_postgres_channel(acme, "tpch.lineitem")

    globex = signed_in(browser, "globex")
    expect(globex.get_by_role("heading", name="tpch.orders")).to_be_visible()
    assert globex.get_by_role("heading", name="tpch.customer").count() == 0, "acme's dataset"
    globex.goto(f"{BASE}/console#/channels")
    expect(globex.get_by_role("heading", name="Your channels")).to_be_visible()
    assert acme_channel not in globex.locator("main").inner_text()
    globex.goto(f"{BASE}/console#/usage")
    expect(globex.locator("#usage-total")).to_be_visible()
    assert "acme" not in globex.locator("main").inner_text()
    # The API answers the same: acme's channel is not globex's to see.
    status = globex.evaluate(
        "async (id) => (await fetch('/v1/channels/' + id)).status", acme_channel
    )
    assert status == 404
    # A change without the session's CSRF token is refused.
    status = globex.evaluate(
        """async () => (await fetch('/v1/channels', {method: 'POST',
             headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({kind: 'postgres', datasets: [{dataset: 'tpch.orders'}]})})).status"""
    )
    assert status == 403
    shot(globex, "tenant-isolation")


def test_the_provider_sees_tenants_usage_and_the_audit_trail(browser):
    page = signed_in(browser, "admin")
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    expect(page.get_by_role("cell", name="acme", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="globex", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Entitlements of globex")).to_be_visible()
    accessible(page)
    shot(page, "provider-tenants")
    page.goto(f"{BASE}/console#/datasets")
    expect(page.get_by_role("heading", name="Datasets and prices")).to_be_visible()
    expect(page.get_by_role("cell", name="tpch.orders", exact=True)).to_be_visible()
    accessible(page)
    shot(page, "provider-datasets")
    page.goto(f"{BASE}/console#/usage")
    expect(page.get_by_role("img", name="Cost per tenant")).to_contain_text("globex")
    accessible(page)
    shot(page, "provider-usage")
    page.goto(f"{BASE}/console#/refusals")
    expect(page.get_by_role("heading", name="Recent refusals")).to_be_visible()
    accessible(page)
    shot(page, "provider-refusals")
    page.goto(f"{BASE}/console#/audit")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    accessible(page)
    shot(page, "provider-audit")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    page.goto(f"{BASE}/console#/tenants")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()


def test_a_channel_login_signs_in_and_sees_only_its_own_queries_and_usage(browser):
    acme = signed_in(browser, "acme")
    channel = ordered_postgres_channel(acme, "tpch.nation")
    login = acme.locator('pre[data-label="Login"]').inner_text()
    password = acme.locator('pre[data-label="Password"]').inner_text()
    conninfo = re.match(r'psql "(.*)"$', acme.locator('pre[data-label="psql"]').inner_text()).group(1)
    for sql in ("SELECT count(*) FROM tpch.nation", "SELECT n_name FROM tpch.nation LIMIT 3"):
        ran = subprocess.run(["psql", conninfo, "-XAtc", sql], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
    # A query of the tenant's own login runs meanwhile: the channel's login never sees it.
    heavy = endless_query_of_acme(-1)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{BASE}/console")
        page.get_by_label("Login").fill(login)
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in with login").click()
        expect(page.get_by_role("alert")).to_be_visible()
        accessible(page)
        shot(page, "login-sign-in")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in with login").click()
        expect(page.get_by_text(f"Signed in as {login} (acme)")).to_be_visible()
        expect(page.get_by_role("heading", name="tpch.nation")).to_be_visible()
        assert page.get_by_role("link", name="Channels").count() == 0
        assert page.get_by_role("link", name=re.compile("Order a channel")).count() == 0
        accessible(page)
        shot(page, "login-catalog")

        page.goto(f"{BASE}/console#/usage")
        expect(page.locator("#usage-total")).to_contain_text("2 queries")
        shot(page, "login-usage")

        running = acme.evaluate(
            """async () => (await (await fetch('/v1/queries', {headers:
                 {Authorization: 'Bearer tg_acme.demo-acme'}})).json()).items"""
        )
        for _ in range(50):
            if any("CROSS JOIN" in q["sql"] for q in running):
                break
            acme.wait_for_timeout(200)
            running = acme.evaluate(
                """async () => (await (await fetch('/v1/queries', {headers:
                     {Authorization: 'Bearer tg_acme.demo-acme'}})).json()).items"""
            )
        heavy_id = next(q["id"] for q in running if "CROSS JOIN" in q["sql"])
        page.goto(f"{BASE}/console#/queries")
        expect(page.get_by_text("No query is running.")).to_be_visible()
        csrf = page.evaluate("async () => (await (await fetch('/console/session')).json()).csrf")
        status = page.evaluate(
            """async ([id, csrf]) => (await fetch('/v1/queries/' + id,
                 {method: 'DELETE', headers: {'X-CSRF-Token': csrf}})).status""",
            [heavy_id, csrf],
        )
        assert status == 404, "a login cancels only its own queries"
        status = page.evaluate(
            """async (csrf) => (await fetch('/v1/channels', {method: 'POST',
                 headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                 body: JSON.stringify({kind: 'postgres', datasets: [{dataset: 'tpch.orders'}]})})).status""",
            csrf,
        )
        assert status == 403, "a login orders nothing"

        # Revoking the channel ends its login's console sessions.
        revoked = acme.evaluate(
            """async (id) => (await fetch('/v1/channels/' + id, {method: 'DELETE',
                 headers: {Authorization: 'Bearer tg_acme.demo-acme'}})).status""",
            channel,
        )
        assert revoked in (200, 202, 204), revoked
        for _ in range(50):
            if page.evaluate("async () => (await fetch('/console/session')).status") == 401:
                break
            page.wait_for_timeout(200)
        page.goto(f"{BASE}/console#/catalog")
        page.reload()
        expect(page.get_by_role("button", name="Sign in with login")).to_be_visible()
    finally:
        heavy.kill()
