//! Faults of the servers Tollgate depends on, each against a real server: what tenants see
//! while it fails, and that service and accounts are whole once it returns.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tollgate_catalog::LedgerKind;
use tollgate_tests::pg_cluster::PrivateCluster;
use tollgate_tests::{TestCertificate, TestGateway, message, sqlstate};

/// A query of acme's that names `marker` in its text, so its usage record can be found.
fn marked_query(marker: usize) -> String {
    format!("SELECT count(*) FROM tpch.region WHERE r_name <> 'fault-{marker}'")
}

/// Runs `sql`, which returns a row when it succeeds.
async fn run(client: &Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    client.simple_query(sql).await.map(|messages| {
        assert!(
            messages
                .iter()
                .any(|m| matches!(m, SimpleQueryMessage::Row(_))),
            "a row"
        );
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_ledger_refuses_queries_and_service_resumes_when_it_returns() {
    let certificate = TestCertificate::generate();
    let cluster = PrivateCluster::start(&certificate.cert_pem(), &certificate.key_pem())
        .expect("a private PostgreSQL for the ledger");
    let ledger_conninfo = cluster.conninfo(false);
    let gateway = TestGateway::start_with(|options| {
        options.usage.ledger = LedgerKind::Postgres;
        options.usage.postgres = Some(ledger_conninfo.clone());
        options.usage.record_sql_text = true;
    })
    .await;
    let acme = gateway.connect("acme").await;
    let mut marker = 0;
    let mut ran = Vec::new();
    for _ in 0..5 {
        marker += 1;
        run(&acme, &marked_query(marker)).await.expect("served");
        ran.push(marker);
    }

    cluster.stop().expect("stop the ledger's server");
    // The first query after the stop runs (nothing has failed yet); its record cannot be
    // written, so it ends with 58000 once the writes' retries are spent. From then on every
    // query is refused before it starts.
    marker += 1;
    let error = run(&acme, &marked_query(marker))
        .await
        .expect_err("a query whose record cannot be written does not complete");
    assert_eq!(sqlstate(&error), "58000", "{error}");
    ran.push(marker);
    for _ in 0..3 {
        marker += 1;
        let started = Instant::now();
        let error = run(&acme, &marked_query(marker))
            .await
            .expect_err("refused while the ledger is down");
        assert_eq!(sqlstate(&error), "58000", "{error}");
        assert!(
            message(&error).contains("usage ledger is unavailable"),
            "{}",
            message(&error)
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "refused before it starts"
        );
    }
    // Another tenant, and a new session, are refused the same way; sessions stay open.
    let globex = gateway.connect("globex").await;
    let error = run(&globex, "SELECT count(*) FROM tpch.orders")
        .await
        .expect_err("refused");
    assert_eq!(sqlstate(&error), "58000");

    cluster.restart().expect("start the ledger's server again");
    let started = Instant::now();
    loop {
        marker += 1;
        match run(&acme, &marked_query(marker)).await {
            Ok(()) => {
                ran.push(marker);
                break;
            }
            Err(error) => {
                assert_eq!(sqlstate(&error), "58000", "{error}");
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "service resumes by itself once the ledger returns: {error}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    for _ in 0..3 {
        marker += 1;
        run(&acme, &marked_query(marker)).await.expect("served");
        ran.push(marker);
    }
    run(&globex, "SELECT count(*) FROM tpch.orders")
        .await
        .expect("globex served again");

    // Every query that ran has exactly one record, the one kept through the outage
    // included; refused ones have none.
    let (ledger, connection) = tokio_postgres::connect(&cluster.conninfo(false), NoTls)
        .await
        .expect("connect to the ledger");
    tokio::spawn(connection);
    let rows = ledger
        .query(
            "SELECT record::json->>'sql_text' FROM tollgate_usage WHERE tenant = 'acme' \
             AND record::json->>'sql_text' LIKE '%fault-%'",
            &[],
        )
        .await
        .expect("read the ledger");
    let mut recorded: Vec<usize> = rows
        .iter()
        .filter_map(|row| {
            let text: String = row.get(0);
            let marker = text.rsplit("fault-").next()?;
            marker.trim_end_matches('\'').parse().ok()
        })
        .collect();
    recorded.sort_unstable();
    assert_eq!(recorded, ran, "one record per query that ran, none lost");
    gateway.stop().await;
}
