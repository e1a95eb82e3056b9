//! Faults of the servers Tollgate depends on, each against a real server: what tenants see
//! while it fails, and that service and accounts are whole once it returns.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};
use tollgate_catalog::{GrantOptions, HumanDuration, LedgerKind, SourceOptions};
use tollgate_tests::machine_pg::{self, ADMIN, conninfo, drop_database, recreate_database};
use tollgate_tests::marked::{MarkedQueries, MarkedRecord};
use tollgate_tests::pg_cluster::PrivateCluster;
use tollgate_tests::{TestCertificate, TestGateway, assert_dataset_unavailable, message, sqlstate};

/// Rows of the replica table read in the middle of a query: many times what socket buffers
/// and the scan's queue hold, so most are still on the replica when it dies.
const EVENTS: i64 = 400_000;

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
    let mut queries = MarkedQueries::new("fault");
    for _ in 0..5 {
        queries.served(&acme).await;
    }

    cluster.stop().expect("stop the ledger's server");
    // The first query after the stop runs (nothing has failed yet); its record cannot be
    // written, so it ends with 58000 once the writes' retries are spent. From then on every
    // query is refused before it starts.
    let error = queries
        .run(&acme)
        .await
        .expect_err("a query whose record cannot be written does not complete");
    assert_eq!(sqlstate(&error), "58000", "{error}");
    for _ in 0..3 {
        queries.refused(&acme).await;
    }
    // Another tenant, and a new session, are refused the same way; sessions stay open.
    let globex = gateway.connect("globex").await;
    let error = globex
        .simple_query("SELECT count(*) FROM tpch.orders")
        .await
        .expect_err("refused");
    assert_eq!(sqlstate(&error), "58000");

    cluster.restart().expect("start the ledger's server again");
    queries.until_served(&acme, Duration::from_secs(15)).await;
    for _ in 0..3 {
        queries.served(&acme).await;
    }
    globex
        .simple_query("SELECT count(*) FROM tpch.orders")
        .await
        .expect("globex served again");

    let (ledger, connection) = tokio_postgres::connect(&cluster.conninfo(false), NoTls)
        .await
        .expect("connect to the ledger");
    tokio::spawn(connection);
    let rows = ledger
        .query(
            "SELECT record::json->>'sql_text', record::json->>'sqlstate', \
             (record::json->>'rows_returned')::bigint \
             FROM tollgate_usage WHERE tenant = 'acme' \
             AND record::json->>'sql_text' LIKE '%fault-%'",
            &[],
        )
        .await
        .expect("read the ledger");
    let records: Vec<MarkedRecord> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    queries.assert_recorded(&records);
    gateway.stop().await;
}

/// `events (id, payload, replica)` with [`EVENTS`] rows, `replica` saying which one it is.
async fn fill_replica(client: &Client, replica: &str) {
    client
        .batch_execute(&format!(
            "CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL, replica text NOT NULL);
             INSERT INTO events SELECT i, repeat('x', 100), '{replica}' FROM generate_series(1, {EVENTS}) AS i;
             ANALYZE events;"
        ))
        .await
        .expect("fill a replica");
}

/// Dataset `feed.events` of acme on two replicas: a private cluster first, a database of
/// the machine's PostgreSQL second, each filled by [`fill_replica`]. The gateway waits at
/// most `read_timeout` for a replica's next answer.
struct TwoReplicas {
    first: PrivateCluster,
    admin: Client,
    second: String,
    gateway: TestGateway,
}

impl TwoReplicas {
    async fn start(read_timeout: Duration) -> Self {
        let certificate = TestCertificate::generate();
        let first = PrivateCluster::start(&certificate.cert_pem(), &certificate.key_pem())
            .expect("a private PostgreSQL as the first replica");
        let (client, connection) = tokio_postgres::connect(&first.conninfo(false), NoTls)
            .await
            .expect("connect to the first replica");
        tokio::spawn(connection);
        fill_replica(&client, "first").await;
        drop(client);
        let admin = machine_pg::connect(ADMIN).await;
        let second = format!("tollgate_faults_replica_{}", std::process::id());
        recreate_database(&admin, &second).await;
        fill_replica(&machine_pg::connect(&conninfo(&second)).await, "second").await;

        let replicas = vec![first.conninfo(false), conninfo(&second)];
        let gateway = TestGateway::start_with(|options| {
            options.sources.insert(
                "feed_replicas".to_owned(),
                SourceOptions::Postgres {
                    replicas,
                    max_connections: 4,
                    connect_timeout: HumanDuration(Duration::from_secs(2)),
                    read_timeout: HumanDuration(read_timeout),
                    tls: None,
                },
            );
            options.datasets.push(
                toml::from_str(
                    "id = \"feed.events\"\nsource = \"feed_replicas\"\npath = \"public.events\"",
                )
                .expect("dataset options"),
            );
            let grant: GrantOptions =
                toml::from_str("tenant = \"acme\"\ndataset = \"feed.events\"")
                    .expect("grant options");
            options.grants.push(grant);
        })
        .await;
        Self {
            first,
            admin,
            second,
            gateway,
        }
    }

    async fn stop(self) {
        self.gateway.stop().await;
        drop_database(&self.admin, &self.second).await;
    }
}

/// Reads `feed.events` through a portal in pieces: the first piece from the first replica,
/// then `fault` strikes it, then pieces until the query fails. The rows read, the error,
/// and how long after the fault it came.
async fn read_through_fault(
    acme: &mut Client,
    fault: impl FnOnce(),
) -> (usize, tokio_postgres::Error, Duration) {
    let transaction = acme.transaction().await.expect("begin");
    let portal = transaction
        .bind("SELECT id, replica FROM feed.events", &[])
        .await
        .expect("bind");
    let piece = transaction
        .query_portal(&portal, 1_000)
        .await
        .expect("the first piece");
    assert_eq!(piece.len(), 1_000);
    assert_eq!(piece[0].get::<_, &str>(1), "first");
    fault();
    let struck = Instant::now();
    let mut read = piece.len();
    loop {
        match transaction.query_portal(&portal, 10_000).await {
            Ok(rows) if rows.is_empty() => panic!("all {read} rows arrived after the fault"),
            Ok(rows) => read += rows.len(),
            Err(error) => return (read, error, struck.elapsed()),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_in_the_middle_of_a_query_fails_that_query_only_and_the_next_fails_over() {
    let replicas = TwoReplicas::start(Duration::from_secs(30)).await;
    let (first, gateway) = (&replicas.first, &replicas.gateway);
    let mut acme = gateway.connect("acme").await;

    // A query read in pieces through a portal: the first piece comes from the first replica,
    // which is then killed.
    let (read, error, _) = read_through_fault(&mut acme, || {
        first.kill().expect("kill the first replica");
    })
    .await;
    assert!(read < usize::try_from(EVENTS).expect("rows"), "{read} rows");
    eprintln!("the query read {read} rows, then: {}", message(&error));
    let port = first.port.to_string();
    assert_dataset_unavailable(
        &error,
        "feed.events",
        "",
        &[&port, "127.0.0.1", "tollgate_faults"],
    );

    // The tenant's other datasets keep answering, in the same session.
    let rows = acme
        .query_one("SELECT count(*) FROM tpch.region", &[])
        .await
        .expect("another dataset");
    assert_eq!(rows.get::<_, i64>(0), 5);
    // The next query on the dataset fails over to the second replica.
    let row = acme
        .query_one(
            "SELECT count(*), min(replica), max(replica) FROM feed.events",
            &[],
        )
        .await
        .expect("served by the second replica");
    assert_eq!(row.get::<_, i64>(0), EVENTS);
    assert_eq!(row.get::<_, &str>(1), "second");
    assert_eq!(row.get::<_, &str>(2), "second");

    replicas.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_hangs_hits_the_read_timeout_and_the_next_query_fails_over() {
    let replicas = TwoReplicas::start(Duration::from_secs(1)).await;
    let mut acme = replicas.gateway.connect("acme").await;

    // A query read in pieces through a portal: the first piece comes from the first replica,
    // which then freezes with its connections open.
    let (read, error, waited) = read_through_fault(&mut acme, || {
        replicas.first.pause().expect("freeze the first replica");
    })
    .await;
    eprintln!(
        "the query read {read} rows, then after {waited:?}: {}",
        message(&error)
    );
    let port = replicas.first.port.to_string();
    assert_dataset_unavailable(
        &error,
        "feed.events",
        "its source sent nothing for 1s",
        &[&port, "127.0.0.1", "tollgate_faults"],
    );
    assert!(
        waited < Duration::from_secs(10),
        "the read timeout, not the statement timeout, ended the query: {waited:?}"
    );

    // The frozen replica is skipped: the next query is answered by the second at once.
    let count = "SELECT count(*), min(replica), max(replica) FROM feed.events";
    let started = Instant::now();
    let row = acme
        .query_one(count, &[])
        .await
        .expect("served by the second replica");
    eprintln!("the next query took {:?}", started.elapsed());
    assert_eq!(row.get::<_, i64>(0), EVENTS);
    assert_eq!(row.get::<_, &str>(1), "second");
    assert_eq!(row.get::<_, &str>(2), "second");

    // Once its skip has passed the frozen replica is tried first again: the query waits for
    // it no longer than the read (or connect) timeout, then the second replica answers it
    // in full.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let started = Instant::now();
    let row = acme
        .query_one(count, &[])
        .await
        .expect("moved to the second replica");
    let took = started.elapsed();
    eprintln!("a query tried on the frozen replica first took {took:?}");
    assert_eq!(row.get::<_, i64>(0), EVENTS);
    assert_eq!(row.get::<_, &str>(2), "second");
    assert!(took < Duration::from_secs(10), "{took:?}");

    replicas.first.resume().expect("thaw the first replica");
    replicas.stop().await;
}
