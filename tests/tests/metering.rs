//! Metering end to end: every query leaves one record whose rows and bytes are what the
//! client received, over pgwire and Flight SQL; failures, cancels, timeouts and limits are
//! recorded; tenants see only their own usage and cost; `/metrics` counts it all; the
//! ledger also lives in PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::sql::client::FlightSqlServiceClient;
use bytes::BytesMut;
use futures::TryStreamExt;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::{Client, NoTls, Row};
use tollgate_catalog::{ByteSize, HumanDuration, LedgerKind, TollgateOptions};
use tollgate_tests::raw::{RawSession, Reply};
use tollgate_tests::{TestGateway, sqlstate};
use tonic::transport::Channel;

const ENDLESS: &str = "SELECT count(*) FROM generate_series(1, 100000000000)";
const GIB: f64 = 1073741824.0;

fn keep_sql_text(options: &mut TollgateOptions) {
    options.usage.record_sql_text = true;
}

/// Records of the caller's tenant whose SQL text contains `marker` (and is not a usage
/// query itself), waiting up to 10 s for `expected` of them: records of failures are
/// written without the client waiting for them.
async fn records(client: &Client, marker: &str, expected: usize) -> Vec<Row> {
    let started = Instant::now();
    loop {
        let rows = client
            .query(
                "SELECT query_id, part, parts, outcome, sqlstate, rows_returned, bytes_returned, \
                        wire_bytes, bytes_scanned, rows_scanned, protocol, principal, tenant, \
                        application_name, datasets, cost \
                 FROM tollgate.usage_records \
                 WHERE strpos(sql_text, $1) > 0 AND strpos(sql_text, 'tollgate.usage') = 0 \
                 ORDER BY part",
                &[&marker],
            )
            .await
            .expect("read tollgate.usage_records");
        if rows.len() >= expected || started.elapsed() > Duration::from_secs(10) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgwire_records_equal_what_the_client_received() {
    let gateway = TestGateway::start_with(keep_sql_text).await;
    let mut raw = RawSession::login(gateway.addr(), "acme", "acme").await;
    let mut message = BytesMut::new();
    frontend::query(
        "SELECT l_orderkey, l_shipmode FROM tpch.lineitem WHERE l_orderkey < 2000",
        &mut message,
    )
    .expect("encode");
    raw.send(&message).await;
    let replies = raw.until_ready().await;
    let sizes: Vec<u64> = replies
        .iter()
        .filter_map(|reply| match reply {
            Reply::Row(bytes) => Some(*bytes),
            _ => None,
        })
        .collect();
    assert!(sizes.len() > 100, "{} rows", sizes.len());
    assert!(replies.iter().any(|r| matches!(r, Reply::Complete(_))));

    // The record is durable once the client saw CommandComplete: it is there at once.
    let acme = gateway.connect("acme").await;
    let rows = records(&acme, "l_shipmode", 0).await;
    assert_eq!(rows.len(), 1, "one record per query");
    let record = &rows[0];
    assert_eq!(record.get::<_, String>("outcome"), "ok");
    assert_eq!(record.get::<_, Option<String>>("sqlstate"), None);
    assert_eq!(record.get::<_, i64>("rows_returned"), sizes.len() as i64);
    assert_eq!(
        record.get::<_, i64>("wire_bytes"),
        sizes.iter().sum::<u64>() as i64
    );
    // Arrow bytes: at least the 8-byte keys.
    assert!(record.get::<_, i64>("bytes_returned") >= 8 * sizes.len() as i64);
    assert!(record.get::<_, i64>("bytes_scanned") > 0);
    assert!(record.get::<_, i64>("rows_scanned") >= sizes.len() as i64);
    assert_eq!(record.get::<_, String>("protocol"), "pgwire");
    assert_eq!(record.get::<_, String>("principal"), "acme");
    assert_eq!(
        record.get::<_, Vec<String>>("datasets"),
        vec!["tpch.lineitem"]
    );

    // The application name the client gave is kept.
    let named = gateway
        .try_connect(&format!(
            "{} application_name=billing-check",
            gateway.conninfo("acme")
        ))
        .await
        .expect("connect");
    named
        .simple_query("SELECT count(*) FROM tpch.region WHERE r_name <> 'named-client'")
        .await
        .expect("query");
    let rows = records(&acme, "named-client", 1).await;
    assert_eq!(
        rows[0]
            .get::<_, Option<String>>("application_name")
            .as_deref(),
        Some("billing-check")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_records_equal_what_the_client_received() {
    let gateway = TestGateway::start_with(keep_sql_text).await;
    let channel = Channel::from_shared(format!("http://{}", gateway.flight_addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect to Flight SQL");
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake("acme", "acme").await.expect("handshake");
    let info = client
        .execute(
            "SELECT l_orderkey, l_quantity FROM tpch.lineitem".to_owned(),
            None,
        )
        .await
        .expect("execute");
    assert!(info.endpoint.len() > 1, "the scan splits into endpoints");

    let mut rows = 0;
    let wire = Arc::new(AtomicU64::new(0));
    for endpoint in &info.endpoint {
        let mut request = tonic::Request::new(endpoint.ticket.clone().expect("ticket"));
        let bearer = format!("Bearer {}", client.token().expect("token"));
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().expect("header"));
        // The raw messages, counted as they arrive, then decoded.
        let counted = Arc::clone(&wire);
        let messages = client
            .inner_mut()
            .do_get(request)
            .await
            .expect("do_get")
            .into_inner()
            .map_err(|status| arrow_flight::error::FlightError::Tonic(Box::new(status)))
            .inspect_ok(move |data| {
                counted.fetch_add(
                    (data.data_header.len() + data.data_body.len()) as u64,
                    Ordering::Relaxed,
                );
            });
        let batches: Vec<_> = FlightRecordBatchStream::new_from_flight_data(messages)
            .try_collect()
            .await
            .expect("stream");
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }

    let acme = gateway.connect("acme").await;
    let parts = records(&acme, "l_quantity", info.endpoint.len()).await;
    assert_eq!(
        parts.len(),
        info.endpoint.len(),
        "one record per endpoint read"
    );
    let query_id: String = parts[0].get("query_id");
    for (k, part) in parts.iter().enumerate() {
        assert_eq!(part.get::<_, String>("query_id"), query_id, "one query");
        assert_eq!(part.get::<_, i64>("part"), k as i64);
        assert_eq!(part.get::<_, i64>("parts"), info.endpoint.len() as i64);
        assert_eq!(part.get::<_, String>("protocol"), "flight_sql");
        assert_eq!(part.get::<_, String>("outcome"), "ok");
    }
    // tollgate.usage adds the parts up into one query.
    let usage = acme
        .query_one(
            "SELECT rows_returned, wire_bytes, outcome, protocol FROM tollgate.usage \
             WHERE query_id = $1",
            &[&query_id],
        )
        .await
        .expect("tollgate.usage");
    assert_eq!(usage.get::<_, i64>("rows_returned"), rows as i64);
    assert_eq!(
        usage.get::<_, i64>("wire_bytes"),
        wire.load(Ordering::Relaxed) as i64
    );
    assert_eq!(usage.get::<_, String>("outcome"), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_cancels_timeouts_and_limits_are_recorded() {
    let gateway = TestGateway::start_with(|options| {
        keep_sql_text(options);
        let s = options.profiles.get_mut("S").expect("profile S");
        s.statement_timeout = HumanDuration(Duration::from_millis(300));
        s.max_result_rows = Some(5);
    })
    .await;
    let globex = gateway.connect("globex").await;
    let acme = gateway.connect("acme").await;

    let failing = [
        ("SELEC 'syntax-marker'", "error", "42601"),
        (
            "DELETE FROM tpch.orders WHERE o_comment = 'policy-marker'",
            "error",
            "42501",
        ),
        (
            "SELECT 'undefined-marker' FROM tpch.secrets",
            "error",
            "42P01",
        ),
        (
            "SELECT count(*) FROM generate_series(1, 100000000000) WHERE value <> -17",
            "timeout",
            "57014",
        ),
        (
            "SELECT o_orderkey FROM tpch.orders WHERE o_orderkey <> -18",
            "limit",
            "54000",
        ),
    ];
    for (sql, _, code) in failing {
        let error = globex.simple_query(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&error), code, "{sql}");
    }

    // A cancelled query.
    let cancel = acme.cancel_token();
    let running = tokio::spawn(async move { acme.simple_query(ENDLESS).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel_query(NoTls).await.expect("cancel request");
    let error = running.await.expect("task").expect_err("cancelled");
    assert_eq!(sqlstate(&error), "57014");

    for (sql, outcome, code) in failing {
        let marker = &sql[sql.len() - 12..];
        let rows = records(&globex, marker, 1).await;
        assert_eq!(rows.len(), 1, "{sql}");
        assert_eq!(rows[0].get::<_, String>("outcome"), outcome, "{sql}");
        assert_eq!(
            rows[0].get::<_, Option<String>>("sqlstate").as_deref(),
            Some(code),
            "{sql}"
        );
    }
    let acme = gateway.connect("acme").await;
    let rows = records(&acme, "100000000000)", 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>("outcome"), "cancelled");
    assert_eq!(
        rows[0].get::<_, Option<String>>("sqlstate").as_deref(),
        Some("57014")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_and_spill_are_recorded() {
    let gateway = TestGateway::start_with(|options| {
        keep_sql_text(options);
        let m = options.profiles.get_mut("M").expect("profile M");
        m.memory_limit = ByteSize(16 << 20);
        m.spill = true;
        m.spill_quota = ByteSize(1 << 30);
    })
    .await;
    let acme = gateway.connect("acme").await;
    acme.simple_query(
        "SELECT max(r) FROM (SELECT row_number() OVER (ORDER BY value DESC) AS r \
         FROM generate_series(1, 3000000)) WHERE r <> -19",
    )
    .await
    .expect("the sort spills");
    let rows = acme
        .query(
            "SELECT peak_memory, spill_bytes FROM tollgate.usage_records \
             WHERE strpos(sql_text, '-19') > 0 AND strpos(sql_text, 'tollgate.usage') = 0",
            &[],
        )
        .await
        .expect("tollgate.usage_records");
    assert_eq!(rows.len(), 1);
    let (peak, spilled): (i64, i64) = (rows[0].get(0), rows[0].get(1));
    assert!(peak > 0 && peak <= 16 << 20, "peak memory {peak}");
    assert!(spilled > 0, "spilled {spilled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sees_only_its_own_usage_by_any_path() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let globex = gateway.connect("globex").await;
    acme.simple_query("SELECT count(*) FROM tpch.customer")
        .await
        .expect("acme query");
    globex
        .simple_query("SELECT count(*) FROM tpch.orders")
        .await
        .expect("globex query");

    for (client, tenant) in [(&acme, "acme"), (&globex, "globex")] {
        for table in ["usage_records", "usage", "usage_datasets"] {
            let tenants: Vec<String> = client
                .query(
                    &format!("SELECT DISTINCT tenant FROM tollgate.{table}"),
                    &[],
                )
                .await
                .expect(table)
                .iter()
                .map(|row| row.get(0))
                .collect();
            assert_eq!(tenants, vec![tenant.to_owned()], "{tenant} reads {table}");
        }
    }
    // A filter naming the other tenant finds nothing, and the daily view holds only the
    // tenant's own datasets.
    let other: i64 = globex
        .query_one(
            "SELECT count(*) FROM tollgate.usage_records WHERE tenant = 'acme' OR principal = 'acme'",
            &[],
        )
        .await
        .expect("filtered")
        .get(0);
    assert_eq!(other, 0);
    let datasets: Vec<String> = globex
        .query("SELECT DISTINCT dataset FROM tollgate.usage_daily", &[])
        .await
        .expect("usage_daily")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(datasets, vec!["tpch.orders".to_owned()]);

    // Over Flight SQL too.
    let channel = Channel::from_shared(format!("http://{}", gateway.flight_addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut flight = FlightSqlServiceClient::new(channel);
    flight
        .handshake("globex", "globex")
        .await
        .expect("handshake");
    let info = flight
        .execute(
            "SELECT tenant, principal FROM tollgate.usage_records".to_owned(),
            None,
        )
        .await
        .expect("execute");
    let mut seen = Vec::new();
    for endpoint in &info.endpoint {
        let batches: Vec<_> = flight
            .do_get(endpoint.ticket.clone().expect("ticket"))
            .await
            .expect("do_get")
            .try_collect()
            .await
            .expect("stream");
        for batch in batches {
            let tenants = batch
                .column(0)
                .as_any()
                .downcast_ref::<tollgate_planner::datafusion::arrow::array::StringArray>(
            );
            seen.extend(
                tenants
                    .expect("utf8")
                    .iter()
                    .map(|t| t.unwrap_or_default().to_owned()),
            );
        }
    }
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|tenant| tenant == "globex"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_can_answer_what_it_owes_in_sql() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    acme.simple_query("SELECT * FROM tpch.nation")
        .await
        .expect("query");
    acme.simple_query("SELECT n_name FROM tpch.nation WHERE n_nationkey < 3")
        .await
        .expect("query");
    // The demo prices every dataset at 0.05 per GiB returned and 0.01 per GiB scanned.
    let row = acme
        .query_one(
            "SELECT sum(cost), sum(bytes_scanned), sum(bytes_returned) FROM tollgate.usage \
             WHERE datasets = ARRAY['tpch.nation']",
            &[],
        )
        .await
        .expect("tollgate.usage");
    let (cost, scanned, returned): (f64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let expected = scanned as f64 / GIB * 0.01 + returned as f64 / GIB * 0.05;
    assert!(scanned > 0 && returned > 0);
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");

    let daily = acme
        .query_one(
            "SELECT queries, cost FROM tollgate.usage_daily \
             WHERE dataset = 'tpch.nation' AND day = CAST(now() AS DATE)",
            &[],
        )
        .await
        .expect("usage_daily");
    assert_eq!(daily.get::<_, i64>(0), 2);
    assert!((daily.get::<_, f64>(1) - expected).abs() < 1e-12);

    let month: f64 = acme
        .query_one(
            "SELECT sum(cost) FROM tollgate.usage_daily WHERE day >= date_trunc('month', now())",
            &[],
        )
        .await
        .expect("this month")
        .get(0);
    assert!(month >= expected);
}

/// The body of `GET /metrics`.
async fn scrape(gateway: &TestGateway) -> String {
    let mut socket = tokio::net::TcpStream::connect(gateway.http_addr())
        .await
        .expect("connect to the HTTP listener");
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = String::new();
    socket
        .read_to_string(&mut response)
        .await
        .expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name_and_labels} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_queries_rows_and_bytes_per_tenant() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    for _ in 0..3 {
        acme.simple_query("SELECT * FROM tpch.region")
            .await
            .expect("query");
    }
    acme.simple_query("SELECT * FROM tpch.nothing")
        .await
        .expect_err("undefined");
    let text = scrape(&gateway).await;
    assert!(
        metric(
            &text,
            r#"tollgate_queries_total{tenant="acme",protocol="pgwire",outcome="ok"}"#
        ) >= 3.0
    );
    assert_eq!(
        metric(
            &text,
            r#"tollgate_queries_total{tenant="acme",protocol="pgwire",outcome="error"}"#
        ),
        1.0
    );
    assert!(metric(&text, r#"tollgate_rows_returned_total{tenant="acme"}"#) >= 15.0);
    assert!(metric(&text, r#"tollgate_bytes_scanned_total{tenant="acme"}"#) > 0.0);
    assert!(metric(&text, r#"tollgate_bytes_returned_total{tenant="acme"}"#) > 0.0);
    assert!(
        metric(
            &text,
            r#"tollgate_query_duration_seconds_count{tenant="acme",protocol="pgwire"}"#
        ) >= 4.0
    );
    assert!(metric(&text, "tollgate_ledger_records_per_commit_count") >= 1.0);
    assert!(!text.contains("globex"), "no query of globex ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_can_live_in_postgresql() {
    let admin_conninfo = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
    let (admin, connection) = tokio_postgres::connect(admin_conninfo, NoTls)
        .await
        .expect("the machine's PostgreSQL");
    tokio::spawn(connection);
    let schema = format!("tollgate_ledger_test_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .expect("create schema");

    let ledger = format!("{admin_conninfo} options='-c search_path={schema}'");
    let gateway = TestGateway::start_with(|options| {
        options.usage.ledger = LedgerKind::Postgres;
        options.usage.postgres = Some(ledger);
    })
    .await;
    let acme = gateway.connect("acme").await;
    let rows = acme
        .simple_query("SELECT * FROM tpch.region")
        .await
        .expect("query");
    assert!(!rows.is_empty());
    let stored: i64 = admin
        .query_one(
            &format!("SELECT count(*) FROM {schema}.tollgate_usage WHERE tenant = 'acme'"),
            &[],
        )
        .await
        .expect("ledger table")
        .get(0);
    assert!(stored >= 1);
    let seen: i64 = acme
        .query_one(
            "SELECT count(*) FROM tollgate.usage WHERE datasets = ARRAY['tpch.region']",
            &[],
        )
        .await
        .expect("tollgate.usage")
        .get(0);
    assert_eq!(seen, 1);
    gateway.stop().await;
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop schema");
}
