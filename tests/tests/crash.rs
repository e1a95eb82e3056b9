//! The ledger survives `kill -9`: every query a client saw complete has its record, and
//! the records are read back by `tollgate usage export` and by a restarted gateway. Also
//! the audit log's lines (a hash chain that `tollgate audit verify` walks, across a
//! restart, and that an edited or removed line breaks) and the export formats, from the
//! real binary.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use serde_json::Value;
use tokio_postgres::{Client, NoTls};
use tollgate_planner::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tollgate_tests::process::{self, GatewayProcess};
use tollgate_tests::{demo_options, install_crypto_provider};
use tonic::transport::Channel;

async fn connect(conninfo: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The marker of a load query: `SELECT <marker> AS marker, …`.
fn marker(sql: &str) -> Option<u64> {
    sql.strip_prefix("SELECT ")?.split(' ').next()?.parse().ok()
}

/// Every record, exported by `tollgate usage export` in `format` to `path`; returns `path`.
fn export_file(config: &Path, format: &str, path: std::path::PathBuf) -> std::path::PathBuf {
    let output = process::run(&[
        "usage",
        "export",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--format",
        format,
        "--output",
        path.to_str().expect("utf-8 path"),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    path
}

/// Runs load queries as `user` until the gateway goes away; the markers of the queries
/// whose results arrived complete.
async fn pgwire_load(conninfo: String, worker: u64, completed: Arc<Mutex<Vec<u64>>>) {
    let Ok(client) = connect(&conninfo).await else {
        return;
    };
    for i in 0.. {
        let marker = worker * 1_000_000 + i;
        let sql = format!(
            "SELECT {marker} AS marker, count(*) FROM tpch.lineitem WHERE l_orderkey < {}",
            100 + i % 5000
        );
        match client.simple_query(&sql).await {
            Ok(_) => completed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(marker),
            Err(_) => return,
        }
    }
}

/// As [`pgwire_load`], over Flight SQL: a query is complete when its last stream ended.
async fn flight_load(gateway: std::net::SocketAddr, worker: u64, completed: Arc<Mutex<Vec<u64>>>) {
    let Ok(channel) = Channel::from_shared(format!("http://{gateway}"))
        .expect("uri")
        .connect()
        .await
    else {
        return;
    };
    let mut client = FlightSqlServiceClient::new(channel);
    if client.handshake("acme", "acme").await.is_err() {
        return;
    }
    for i in 0.. {
        let marker = worker * 1_000_000 + i;
        let sql = format!(
            "SELECT {marker} AS marker, l_orderkey FROM tpch.lineitem WHERE l_orderkey < 50"
        );
        let Ok(info) = client.execute(sql, None).await else {
            return;
        };
        for endpoint in &info.endpoint {
            let Some(ticket) = endpoint.ticket.clone() else {
                return;
            };
            let Ok(stream) = client.do_get(ticket).await else {
                return;
            };
            if stream.try_collect::<Vec<_>>().await.is_err() {
                return;
            }
        }
        completed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(marker);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_completed_query() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = demo_options(dir.path());
    options.usage.record_sql_text = true;
    let config = process::write_config(dir.path(), &options);
    let mut gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway.log"));

    let completed = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for (worker, user) in [(1, "acme"), (2, "globex"), (3, "acme"), (4, "globex")] {
        workers.push(tokio::spawn(pgwire_load(
            gateway.conninfo(user),
            worker,
            Arc::clone(&completed),
        )));
    }
    workers.push(tokio::spawn(flight_load(
        gateway.flight_addr(),
        5,
        Arc::clone(&completed),
    )));
    tokio::time::sleep(Duration::from_secs(3)).await;
    gateway.kill();
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .expect("the load stops once the gateway is gone")
            .expect("worker");
    }
    let completed: Vec<u64> = completed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(
        completed.len() >= 20,
        "only {} queries completed",
        completed.len()
    );
    assert!(
        completed.iter().any(|m| m / 1_000_000 == 5),
        "no Flight SQL query completed"
    );

    // Every completion is in the ledger, as its own record(s), once.
    let records = process::usage_export(&config, &[]);
    let mut ids = HashSet::new();
    let mut recorded = HashSet::new();
    for record in &records {
        assert!(ids.insert(record["record_id"].as_str().expect("id").to_owned()));
        if record["outcome"] == "ok"
            && let Some(marker) = record["sql_text"].as_str().and_then(marker)
        {
            recorded.insert(marker);
        }
    }
    let missing: Vec<&u64> = completed.iter().filter(|m| !recorded.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "completed without a record: {missing:?}"
    );
    println!(
        "{} queries completed before kill -9; the ledger holds {} records, {} of them ok load queries",
        completed.len(),
        records.len(),
        recorded.len()
    );

    // A restarted gateway serves the same ledger.
    let gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway-restarted.log"));
    let acme = connect(&gateway.conninfo("acme")).await.expect("connect");
    let ok: i64 = acme
        .query_one(
            "SELECT count(*) FROM tollgate.usage WHERE outcome = 'ok' AND datasets = ARRAY['tpch.lineitem']",
            &[],
        )
        .await
        .expect("tollgate.usage")
        .get(0);
    let acme_completed = completed
        .iter()
        .filter(|m| matches!(*m / 1_000_000, 1 | 3 | 5))
        .count();
    assert!(ok as usize >= acme_completed, "{ok} < {acme_completed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lines_and_exports_from_the_binary() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let audit_log = dir.path().join("audit.log");
    let mut options = demo_options(dir.path());
    options.usage.audit_log = Some(audit_log.clone());
    let config = process::write_config(dir.path(), &options);
    let gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway.log"));

    let wrong = gateway
        .conninfo("acme")
        .replace("password=acme", "password=wrong");
    assert!(connect(&wrong).await.is_err());
    let acme = connect(&gateway.conninfo("acme")).await.expect("login");
    let refused = acme
        .simple_query("DELETE FROM tpch.orders")
        .await
        .expect_err("refused");
    assert_eq!(tollgate_tests::sqlstate(&refused), "42501");
    acme.simple_query("SELECT * FROM tpch.region")
        .await
        .expect("query");
    let globex = connect(&gateway.conninfo("globex")).await.expect("login");
    globex
        .simple_query("SELECT count(*) FROM tpch.orders")
        .await
        .expect("query");
    let channel = Channel::from_shared(format!("http://{}", gateway.flight_addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    assert!(
        FlightSqlServiceClient::new(channel)
            .handshake("globex", "wrong")
            .await
            .is_err()
    );
    drop(gateway);

    let lines: Vec<Value> = std::fs::read_to_string(&audit_log)
        .expect("the audit log")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let has = |checks: &[(&str, &str)]| {
        lines
            .iter()
            .any(|line| checks.iter().all(|(key, value)| line[*key] == *value))
    };
    for expected in [
        &[
            ("event", "authentication"),
            ("outcome", "failure"),
            ("user", "acme"),
            ("protocol", "pgwire"),
        ][..],
        &[
            ("event", "authentication"),
            ("outcome", "success"),
            ("user", "acme"),
            ("tenant", "acme"),
        ],
        &[
            ("event", "authentication"),
            ("outcome", "failure"),
            ("user", "globex"),
            ("protocol", "flight_sql"),
        ],
        &[
            ("event", "statement_refused"),
            ("tenant", "acme"),
            ("principal", "acme"),
            ("sqlstate", "42501"),
        ],
    ] {
        assert!(
            has(expected),
            "no audit line with {expected:?} in {lines:#?}"
        );
    }

    audit_chain_shows_tampering(&config, &audit_log, dir.path()).await;

    // The operator exports every tenant; a date range and a tenant narrow it.
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (
        today.to_string(),
        today.succ_opt().expect("tomorrow").to_string(),
    );
    let all = process::usage_export(&config, &["--from", &from, "--to", &to]);
    let tenants: HashSet<&str> = all.iter().filter_map(|r| r["tenant"].as_str()).collect();
    assert_eq!(tenants, HashSet::from(["acme", "globex"]));
    let acme_only = process::usage_export(&config, &["--tenant", "acme"]);
    assert!(acme_only.iter().all(|r| r["tenant"] == "acme"));
    assert!(!acme_only.is_empty() && acme_only.len() < all.len());
    assert!(
        process::usage_export(&config, &["--to", &from]).is_empty(),
        "nothing before today"
    );

    let csv = export_file(&config, "csv", dir.path().join("usage.csv"));
    let csv = std::fs::read_to_string(csv).expect("csv");
    let mut csv_lines = csv.lines();
    let header = csv_lines.next().expect("header");
    assert!(
        header.starts_with("record_id,query_id,part,parts,tenant,principal,channel,protocol"),
        "{header}"
    );
    assert_eq!(csv_lines.count(), all.len());

    let parquet = export_file(&config, "parquet", dir.path().join("usage.parquet"));
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(parquet).expect("parquet"))
            .expect("a Parquet file")
            .build()
            .expect("reader");
    let rows: usize = reader.map(|batch| batch.expect("batch").num_rows()).sum();
    assert_eq!(rows, all.len());
}

/// The audit log of a gateway restarted on the same file verifies whole; a line edited or
/// removed is found.
async fn audit_chain_shows_tampering(config: &Path, audit_log: &Path, dir: &Path) {
    let verify = |path: &Path| process::run(&["audit", "verify", path.to_str().expect("utf-8")]);
    let first = verify(audit_log);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let lines = std::fs::read_to_string(audit_log)
        .expect("the audit log")
        .lines()
        .count();
    let gateway = GatewayProcess::spawn(config, &dir.join("gateway-2.log"));
    let wrong = gateway
        .conninfo("globex")
        .replace("password=globex", "password=wrong");
    assert!(connect(&wrong).await.is_err());
    drop(gateway);
    let text = std::fs::read_to_string(audit_log).expect("the audit log");
    assert!(text.lines().count() > lines);
    let again = verify(audit_log);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let intact = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(intact.contains("chain intact; head "), "{intact}");

    let edited = dir.join("edited.log");
    let mut edited_lines: Vec<String> = text.lines().map(str::to_owned).collect();
    edited_lines[1] = edited_lines[1].replacen("\"timestamp\":\"2", "\"timestamp\":\"3", 1);
    std::fs::write(&edited, edited_lines.join("\n") + "\n").expect("write");
    let refused = verify(&edited);
    assert!(!refused.status.success());
    let reason = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(reason.contains("the chain breaks at line 3"), "{reason}");

    let removed = dir.join("removed.log");
    let mut kept: Vec<&str> = text.lines().collect();
    kept.remove(1);
    std::fs::write(&removed, kept.join("\n") + "\n").expect("write");
    let refused = verify(&removed);
    assert!(!refused.status.success());
    let reason = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(reason.contains("the chain breaks at line 2"), "{reason}");
}
