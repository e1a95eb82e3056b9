//! The Python clients, run by pytest against a gateway started here: over Flight SQL the
//! ADBC driver, `pyarrow.flight`, the `bi-examples/` scripts and a Spark job
//! (`tests/python/test_flight.py`); over pgwire psycopg 3 (`tests/python/test_psycopg.py`).
//!
//! The expected counts are taken over pgwire, so both front ends must agree. The Python
//! environment is a virtualenv made by `scripts/python-env` (which `scripts/test` runs).
//! `TOLLGATE_SKIP_SPARK=1` skips the Spark job.

use tollgate_catalog::DatasetKind;
use tollgate_tests::moto::venv_python;
use tollgate_tests::{TestGateway, pytest};

/// `sql`'s single `bigint` as `user`, over pgwire.
async fn count(gateway: &TestGateway, user: &str, sql: &str) -> i64 {
    let client = gateway.connect(user).await;
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients() {
    let python = venv_python();
    // tpch.nation is declared a view, for the clients' view listings.
    let gateway = TestGateway::start_with(|options| {
        for dataset in &mut options.datasets {
            if dataset.id == "tpch.nation" {
                dataset.kind = DatasetKind::View;
            }
        }
    })
    .await;
    let flight_uri = format!("grpc://{}", gateway.flight_addr());
    let lineitem = count(&gateway, "acme", "SELECT count(*) FROM tpch.lineitem").await;
    let globex_orders = count(&gateway, "globex", "SELECT count(*) FROM tpch.orders").await;

    let stdout = pytest::run(
        &python,
        "tests/python",
        &[
            ("TOLLGATE_FLIGHT_URI", flight_uri),
            ("TOLLGATE_PG_HOST", gateway.addr().ip().to_string()),
            ("TOLLGATE_PG_PORT", gateway.addr().port().to_string()),
            ("TOLLGATE_LINEITEM_ROWS", lineitem.to_string()),
            ("TOLLGATE_GLOBEX_ORDERS_ROWS", globex_orders.to_string()),
        ],
    )
    .await;
    println!("{stdout}");
    gateway.stop().await;
}
