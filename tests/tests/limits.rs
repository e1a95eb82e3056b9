//! Every limit of a profile, over pgwire and Flight SQL: each triggers with its documented
//! code and a message naming the limit and the profile, and the gateway keeps serving.
//!
//! The demo puts `acme` on profile M and `globex` on profile S; each test tightens one
//! limit of S (or M) and leaves the other tenant as a witness that it is unaffected.

use std::time::{Duration, Instant};

use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tokio_postgres::Client;
use tollgate_catalog::{ByteSize, HumanDuration, ProfileOptions, TollgateOptions};
use tollgate_tests::{TestGateway, message, sqlstate};
use tonic::Code;
use tonic::transport::Channel;

/// A statement that runs for minutes unless stopped, yielding all the while.
const ENDLESS: &str = "SELECT count(*) FROM generate_series(1, 100000000000)";

/// A sort of 20 M values: more than 150 MB held at once unless it spills.
const BIG_SORT: &str = "SELECT max(r)::bigint FROM (SELECT row_number() OVER (ORDER BY value DESC) AS r FROM generate_series(1, 20000000))";

fn profile<'a>(options: &'a mut TollgateOptions, name: &str) -> &'a mut ProfileOptions {
    options.profiles.get_mut(name).expect("demo profile")
}

/// Asserts `error` has `code` and a message mentioning `limit`.
fn assert_refused(error: &tokio_postgres::Error, code: &str, limit: &str) {
    assert_eq!(sqlstate(error), code, "{}", message(error));
    assert!(message(error).contains(limit), "{}", message(error));
}

/// Asserts the gateway still answers `client`.
async fn assert_serving(client: &Client) {
    let regions = count(client, "SELECT count(*) FROM tpch.region").await;
    assert_eq!(regions.expect("still serving"), 5);
}

async fn count(client: &Client, sql: &str) -> Result<i64, tokio_postgres::Error> {
    client.query_one(sql, &[]).await.map(|row| row.get(0))
}

/// Starts `sql` on its own connection of `user` and returns once it holds a slot.
async fn start_running(
    gateway: &TestGateway,
    user: &str,
    sql: &'static str,
) -> tokio::task::JoinHandle<Result<i64, tokio_postgres::Error>> {
    let client = gateway.connect(user).await;
    let handle = tokio::spawn(async move { count(&client, sql).await });
    let watcher = gateway.connect(user).await;
    wait_for_state(&watcher, "running", 1).await;
    handle
}

/// Waits until `tollgate.queries` lists `n` queries in `state`.
async fn wait_for_state(client: &Client, state: &str, n: i64) {
    let started = Instant::now();
    loop {
        let listed: i64 = client
            .query_one(
                "SELECT count(*) FROM tollgate.queries WHERE state = $1",
                &[&state],
            )
            .await
            .expect("tollgate.queries")
            .get(0);
        if listed == n {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{n} {state} queries"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn flight_login(gateway: &TestGateway, user: &str) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", gateway.flight_addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake(user, user).await.expect("handshake");
    client
}

/// Runs `sql` over Flight SQL and reads every endpoint.
async fn flight_rows(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<usize, FlightError> {
    let info = client.execute(sql.to_owned(), None).await?;
    let mut rows = 0;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let batches: Vec<_> = client.do_get(ticket).await?.try_collect().await?;
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    Ok(rows)
}

fn status(error: &FlightError) -> (Code, String) {
    match error {
        FlightError::Tonic(status) => (status.code(), status.message().to_owned()),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_refuses_bursts_with_53400_and_resource_exhausted() {
    let gateway = TestGateway::start_with(|options| {
        let s = profile(options, "S");
        s.rate_limit = Some(0.5);
        s.rate_burst = Some(2);
    })
    .await;
    let globex = gateway.connect("globex").await;
    let sql = "SELECT count(*) FROM tpch.orders";
    count(&globex, sql).await.expect("first of the burst");
    count(&globex, sql).await.expect("second of the burst");
    let error = count(&globex, sql).await.expect_err("over the rate");
    assert_eq!(sqlstate(&error), "53400");
    let text = message(&error);
    assert!(
        text.contains("profile S") && text.contains("0.5 queries per second"),
        "{text}"
    );

    let mut flight = flight_login(&gateway, "globex").await;
    let error = flight_rows(&mut flight, sql)
        .await
        .expect_err("over the rate");
    let (code, text) = status(&error);
    assert_eq!(code, Code::ResourceExhausted);
    assert!(text.contains("profile S"), "{text}");

    // acme (profile M, no rate limit) is unaffected.
    let acme = gateway.connect("acme").await;
    for _ in 0..5 {
        count(&acme, sql).await.expect("acme has no rate limit");
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_with_53300_and_a_long_wait_gives_up() {
    let gateway = TestGateway::start_with(|options| {
        let s = profile(options, "S");
        s.max_concurrent_queries = 1;
        s.queue_length = 1;
        s.max_queue_wait = HumanDuration(Duration::from_millis(1500));
    })
    .await;
    let running = start_running(&gateway, "globex", ENDLESS).await;

    // One may wait; it gives up after max_queue_wait.
    let waiting = gateway.connect("globex").await;
    let queued = tokio::spawn(async move { count(&waiting, "SELECT 1::bigint").await });
    let globex = gateway.connect("globex").await;
    wait_for_state(&globex, "queued", 1).await;
    // The queue holds one: the next is refused at once.
    let started = Instant::now();
    let error = count(&globex, "SELECT 2::bigint")
        .await
        .expect_err("queue full");
    // At once: well within the 1.5 s the queued query may wait.
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert_refused(&error, "53300", "queue_length");

    let error = queued.await.expect("task").expect_err("waited too long");
    assert_refused(&error, "53300", "max_queue_wait");

    // The tenant sees its running query and cancels it itself; then it can query again.
    let id: i64 = globex
        .query_one(
            "SELECT query_id FROM tollgate.queries WHERE state = 'running'",
            &[],
        )
        .await
        .expect("listed")
        .get(0);
    let cancelled: bool = globex
        .query_one(&format!("SELECT tollgate.cancel({id})"), &[])
        .await
        .expect("cancel")
        .get(0);
    assert!(cancelled);
    let error = running.await.expect("task").expect_err("cancelled");
    assert_eq!(sqlstate(&error), "57014");
    assert_eq!(
        count(&globex, "SELECT 3::bigint").await.expect("serving"),
        3
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_and_cancel_only_their_own_queries() {
    let gateway = TestGateway::start_with(|options| {
        let s = profile(options, "S");
        s.max_concurrent_queries = 1;
        s.queue_length = 4;
        s.max_queue_wait = HumanDuration(Duration::from_secs(60));
    })
    .await;
    let running = start_running(&gateway, "globex", ENDLESS).await;
    let waiting = gateway.connect("globex").await;
    let queued = tokio::spawn(async move { count(&waiting, "SELECT 7::bigint").await });
    let globex = gateway.connect("globex").await;
    wait_for_state(&globex, "queued", 1).await;

    let rows = globex
        .query(
            "SELECT query_id, principal, state, sql FROM tollgate.queries ORDER BY query_id",
            &[],
        )
        .await
        .expect("listing");
    assert_eq!(rows.len(), 2);
    let states: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
    assert_eq!(states, ["running", "queued"]);
    assert!(rows.iter().all(|r| r.get::<_, String>(1) == "globex"));
    let running_id: i64 = rows[0].get(0);
    let queued_id: i64 = rows[1].get(0);
    assert!(rows[0].get::<_, String>(3).contains("generate_series"));

    // acme sees none of them and cannot cancel them.
    let acme = gateway.connect("acme").await;
    let listed: i64 = count(&acme, "SELECT count(*) FROM tollgate.queries")
        .await
        .expect("acme's listing");
    assert_eq!(listed, 0);
    let cancelled: bool = acme
        .query_one(&format!("SELECT tollgate.cancel({running_id})"), &[])
        .await
        .expect("cancel")
        .get(0);
    assert!(!cancelled, "another tenant's query");

    // Cancelling the queued query removes it from the queue.
    let cancelled: bool = globex
        .query_one(&format!("SELECT tollgate.cancel({queued_id})"), &[])
        .await
        .expect("cancel")
        .get(0);
    assert!(cancelled);
    let error = queued
        .await
        .expect("task")
        .expect_err("cancelled while queued");
    assert_eq!(sqlstate(&error), "57014");
    wait_for_state(&globex, "queued", 0).await;
    wait_for_state(&globex, "running", 1).await;

    globex
        .query_one(&format!("SELECT tollgate.cancel({running_id})"), &[])
        .await
        .expect("cancel");
    let error = running.await.expect("task").expect_err("cancelled");
    assert_eq!(sqlstate(&error), "57014");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_caps_stop_the_stream_with_54000() {
    let gateway = TestGateway::start_with(|options| {
        let s = profile(options, "S");
        s.max_result_rows = Some(1000);
        let m = profile(options, "M");
        m.max_result_bytes = Some(ByteSize(64 * 1024));
    })
    .await;
    let globex = gateway.connect("globex").await;
    let rows = globex
        .query("SELECT o_orderkey FROM tpch.orders LIMIT 1000", &[])
        .await
        .expect("at the cap");
    assert_eq!(rows.len(), 1000);
    let error = globex
        .query("SELECT o_orderkey FROM tpch.orders", &[])
        .await
        .expect_err("over the cap");
    assert_eq!(sqlstate(&error), "54000");
    let text = message(&error);
    assert!(
        text.contains("max_result_rows") && text.contains("profile S"),
        "{text}"
    );
    let mut flight = flight_login(&gateway, "globex").await;
    let error = flight_rows(&mut flight, "SELECT o_orderkey FROM tpch.orders")
        .await
        .expect_err("over the cap");
    assert_eq!(status(&error).0, Code::ResourceExhausted);

    let acme = gateway.connect("acme").await;
    let error = acme
        .query("SELECT * FROM tpch.lineitem", &[])
        .await
        .expect_err("over the byte cap");
    assert_refused(&error, "54000", "max_result_bytes");
    assert_serving(&acme).await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_by_one_tenant_locks_only_itself_out() {
    let gateway = TestGateway::start_with(|options| {
        profile(options, "S").max_connections = 3;
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(gateway.connect("globex").await);
    }
    let error = gateway
        .try_connect(&gateway.conninfo("globex"))
        .await
        .expect_err("over max_connections");
    assert_refused(&error, "53300", "max_connections");
    let acme = gateway.connect("acme").await;
    assert_serving(&acme).await;
    drop(open.pop());
    // The slot frees when the server sees the connection close.
    let started = Instant::now();
    loop {
        match gateway.try_connect(&gateway.conninfo("globex")).await {
            Ok(_) => break,
            Err(error) => {
                assert_eq!(sqlstate(&error), "53300");
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the slot is freed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    gateway.stop().await;
}

/// Peak resident memory of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hungry_queries_fail_cleanly_or_spill_within_their_quota() {
    let gateway = TestGateway::start_with(|options| {
        let s = profile(options, "S");
        s.memory_limit = ByteSize(32 << 20);
        s.spill = false;
        let m = profile(options, "M");
        m.memory_limit = ByteSize(16 << 20);
        m.spill = true;
        m.spill_quota = ByteSize(1 << 30);
        m.statement_timeout = HumanDuration(Duration::from_secs(120));
    })
    .await;
    let before = peak_rss();
    let globex = gateway.connect("globex").await;
    let error = globex
        .query(BIG_SORT, &[])
        .await
        .expect_err("over the memory limit");
    assert_eq!(sqlstate(&error), "53200");
    let text = message(&error);
    assert!(
        text.contains("memory_limit") && text.contains("profile S"),
        "{text}"
    );
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 200 << 20,
        "the gateway's peak RSS grew by {} MiB",
        grown >> 20
    );
    assert_eq!(
        count(
            &globex,
            "SELECT count(*) FROM tpch.orders WHERE o_orderkey < 100"
        )
        .await
        .expect("still serving"),
        count(
            &globex,
            "SELECT count(*) FROM tpch.orders WHERE o_orderkey < 100"
        )
        .await
        .expect("still serving")
    );

    // Profile M may spill: a sort of 3 M values (24 MB of data alone) in 16 MiB completes.
    let acme = gateway.connect("acme").await;
    let rows = count(
        &acme,
        "SELECT max(r)::bigint FROM (SELECT row_number() OVER (ORDER BY value DESC) AS r FROM generate_series(1, 3000000))",
    )
    .await
    .expect("the sort spills");
    assert_eq!(rows, 3_000_000);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spill_quota_bounds_the_disk_a_tenant_uses() {
    let gateway = TestGateway::start_with(|options| {
        let m = profile(options, "M");
        m.memory_limit = ByteSize(8 << 20);
        m.spill = true;
        m.spill_quota = ByteSize(256 << 10);
    })
    .await;
    let acme = gateway.connect("acme").await;
    let error = acme
        .query(
            "SELECT l_orderkey, l_comment FROM tpch.lineitem ORDER BY l_comment, l_orderkey",
            &[],
        )
        .await
        .expect_err("over the spill quota");
    assert_refused(&error, "53200", "spill_quota");
    assert_serving(&acme).await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_gets_the_same_limits_as_resource_exhausted_or_deadline_exceeded() {
    let gateway = TestGateway::start_with(|options| {
        let s = profile(options, "S");
        s.max_concurrent_queries = 1;
        s.queue_length = 0;
        s.memory_limit = ByteSize(32 << 20);
        let m = profile(options, "M");
        m.statement_timeout = HumanDuration(Duration::from_millis(300));
    })
    .await;
    // globex's one slot is taken over pgwire; Flight SQL shares the same pool.
    let running = start_running(&gateway, "globex", ENDLESS).await;
    let mut globex = flight_login(&gateway, "globex").await;
    let error = flight_rows(&mut globex, "SELECT count(*) FROM tpch.orders")
        .await
        .expect_err("no free slot and no queue");
    let (code, text) = status(&error);
    assert_eq!(code, Code::ResourceExhausted);
    assert!(
        text.contains("queue_length") && text.contains("profile S"),
        "{text}"
    );
    let pg = gateway.connect("globex").await;
    pg.query_one(
        "SELECT tollgate.cancel(query_id) FROM tollgate.queries WHERE state = 'running'",
        &[],
    )
    .await
    .expect("cancel the running query");
    let error = running.await.expect("task").expect_err("cancelled");
    assert_eq!(sqlstate(&error), "57014");

    let mut acme = flight_login(&gateway, "acme").await;
    let error = flight_rows(&mut acme, ENDLESS).await.expect_err("timeout");
    let (code, text) = status(&error);
    assert_eq!(code, Code::DeadlineExceeded);
    assert!(
        text.contains("statement timeout") && text.contains("profile M"),
        "{text}"
    );

    // globex's slot is free again, and its memory limit applies.
    let error = flight_rows(&mut globex, BIG_SORT)
        .await
        .expect_err("over the memory limit");
    let (code, text) = status(&error);
    assert_eq!(code, Code::ResourceExhausted);
    assert!(text.contains("memory_limit"), "{text}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_join_frees_the_tenants_threads_at_once() {
    let gateway = TestGateway::start().await;
    // globex's profile S runs on one executor thread; a cross join emits a batch per row of
    // its build side without reading its input, so only a yielding join lets go of it.
    let joining = gateway.connect("globex").await;
    let cancel = joining.cancel_token();
    let running = tokio::spawn(async move {
        count(
            &joining,
            "SELECT count(*) FROM tpch.lineitem a CROSS JOIN tpch.lineitem b",
        )
        .await
    });
    let globex = gateway.connect("globex").await;
    wait_for_state(&globex, "running", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel request");
    let error = running.await.expect("task").expect_err("cancelled");
    assert_eq!(sqlstate(&error), "57014");
    let started = Instant::now();
    assert_eq!(
        count(
            &globex,
            "SELECT count(*) FROM tpch.orders WHERE o_orderkey < 0"
        )
        .await
        .expect("next query"),
        0
    );
    // Before joins yielded, the cancelled join held the thread for seconds.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the next query waited {:?}",
        started.elapsed()
    );
}
