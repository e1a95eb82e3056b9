//! No tenant can crash, stall or starve the gateway: statements too complex for the stack
//! are refused, and a stopped query stops doing work within a second, whatever its plan.

use std::time::{Duration, Instant};

use tokio_postgres::NoTls;
use tollgate_catalog::HumanDuration;
use tollgate_tests::cpu::idle_after;
use tollgate_tests::{TestGateway, message, sqlstate};

/// Asserts that acme's stopped query ended its work within a second of `stopped`: the
/// process is idle again, `tollgate.queries` lists nothing, and a small query answers fast.
async fn assert_stopped(gateway: &TestGateway, shape: &str, stopped: Instant) {
    let idle = idle_after(stopped).await;
    let acme = gateway.connect("acme").await;
    let listed: i64 = acme
        .query_one("SELECT count(*) FROM tollgate.queries", &[])
        .await
        .expect("tollgate.queries")
        .get(0);
    let asked = Instant::now();
    acme.simple_query("SELECT 1").await.expect("a small query");
    let answered = asked.elapsed();
    println!("{shape}: idle {idle:?} after the stop, SELECT 1 in {answered:?}");
    assert!(
        idle <= Duration::from_millis(1_200),
        "{shape}: busy for {idle:?}"
    );
    assert_eq!(listed, 0, "{shape}: still listed");
    assert!(
        answered < Duration::from_millis(500),
        "{shape}: {answered:?}"
    );
}

/// Plans that keep a tenant's cores busy far longer than the tests wait, each of a shape
/// where work happens in a different place.
const SHAPES: [(&str, &str); 6] = [
    (
        "nested-loop join whose filter rejects every pair",
        "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b \
         WHERE a.l_quantity + b.l_quantity > 1000",
    ),
    (
        "hash join whose filter rejects every match",
        "SELECT count(*) FROM tpch.lineitem a JOIN tpch.lineitem b \
         ON a.l_quantity = b.l_quantity WHERE a.l_extendedprice + b.l_extendedprice < 0",
    ),
    (
        "cross join under an aggregate",
        "SELECT count(*) FROM tpch.lineitem a CROSS JOIN tpch.lineitem b",
    ),
    (
        "aggregate over generate_series",
        "SELECT sum(x) FROM generate_series(1, 1000000000000) t(x)",
    ),
    (
        "sort of a generated series",
        "SELECT x FROM generate_series(1, 1000000000000) t(x) ORDER BY x DESC LIMIT 1",
    ),
    (
        "window function over a generated series",
        "SELECT max(s) FROM (SELECT sum(x) OVER (ORDER BY x ROWS BETWEEN 100 PRECEDING \
         AND CURRENT ROW) AS s FROM generate_series(1, 1000000000000) t(x)) w",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plan_shape_stops_within_a_second_of_its_cancel() {
    let gateway = TestGateway::start().await;
    for (shape, sql) in SHAPES {
        let (client, connection) = tokio_postgres::connect(&gateway.conninfo("acme"), NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let cancel = client.cancel_token();
        let running = tokio::spawn(async move { client.simple_query(sql).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!running.is_finished(), "{shape}: ended before its cancel");
        let stopped = Instant::now();
        cancel.cancel_query(NoTls).await.expect("CancelRequest");
        let error = running.await.expect("task").expect_err("cancelled");
        assert_eq!(sqlstate(&error), "57014", "{shape}: {}", message(&error));
        assert_stopped(&gateway, shape, stopped).await;
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plan_shape_stops_within_a_second_of_its_statement_timeout() {
    let timeout = Duration::from_secs(1);
    let gateway = TestGateway::start_with(|options| {
        let m = options.profiles.get_mut("M").expect("profile M");
        m.statement_timeout = HumanDuration(timeout);
    })
    .await;
    let acme = gateway.connect("acme").await;
    for (shape, sql) in SHAPES {
        let sent = Instant::now();
        let error = acme.simple_query(sql).await.expect_err("timed out");
        assert_eq!(sqlstate(&error), "57014", "{shape}: {}", message(&error));
        assert!(message(&error).contains("statement timeout"), "{shape}");
        assert_stopped(&gateway, shape, sent + timeout).await;
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plan_shape_stops_within_a_second_of_its_client_leaving() {
    let gateway = TestGateway::start().await;
    for (shape, sql) in SHAPES {
        let (client, connection) = tokio_postgres::connect(&gateway.conninfo("acme"), NoTls)
            .await
            .expect("connect");
        let connection = tokio::spawn(connection);
        let running = tokio::spawn(async move { client.simple_query(sql).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stopped = Instant::now();
        // The socket closes with the connection's task.
        connection.abort();
        running.abort();
        assert_stopped(&gateway, shape, stopped).await;
    }
    gateway.stop().await;
}

/// Statements whose trees are thousands of levels deep: refused as too complex (54001) or
/// answered, never a crash, while the other tenant keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_too_deep_for_the_stack_are_refused_and_the_process_stays_up() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let globex = gateway.connect("globex").await;
    let chained_ctes = {
        let ctes: Vec<String> = (1..5_000)
            .map(|i| format!("c{i} AS (SELECT x + 1 AS x FROM c{})", i - 1))
            .collect();
        format!(
            "WITH c0 AS (SELECT 1 AS x), {} SELECT x FROM c4999",
            ctes.join(", ")
        )
    };
    let inputs = [
        ("2,000 terms", format!("SELECT 1{}", "+1".repeat(1_999))),
        (
            "2,000 ANDed predicates",
            format!("SELECT 1 WHERE true{}", " AND 1 = 1".repeat(2_000)),
        ),
        (
            "1,500 UNION ALL branches",
            format!(
                "SELECT count(*) FROM (SELECT 1 AS x{}) u",
                " UNION ALL SELECT 1".repeat(1_499)
            ),
        ),
        ("5,000 chained CTEs", chained_ctes),
        ("200,000 terms", format!("SELECT 1{}", "+1".repeat(199_999))),
    ];
    for (what, sql) in &inputs {
        let sent = Instant::now();
        let error = acme.simple_query(sql).await.expect_err(what);
        assert_eq!(sqlstate(&error), "54001", "{what}: {}", message(&error));
        assert!(message(&error).contains("too complex"), "{what}");
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{what}: {:?}",
            sent.elapsed()
        );
        globex
            .simple_query("SELECT count(*) FROM tpch.orders")
            .await
            .expect("the other tenant keeps answering");
    }
    // Within the bounds, deep statements are answered, over both protocols.
    let sum = format!("SELECT 1{}", "+1".repeat(899));
    let row = acme.query_one(&sum, &[]).await.expect("900 terms");
    assert_eq!(row.get::<_, i64>(0), 900);
    let unions = format!(
        "SELECT count(*) FROM (SELECT 1 AS x{}) u",
        " UNION ALL SELECT 1".repeat(499)
    );
    let row = acme.query_one(&unions, &[]).await.expect("500 branches");
    assert_eq!(row.get::<_, i64>(0), 500);
    gateway.stop().await;
}

/// The profile's bounds on work refuse a statement at once (54000 naming the limit), not
/// after the statement timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_beyond_the_profile_is_refused_before_or_while_it_is_built() {
    let gateway = TestGateway::start_with(|options| {
        let m = options.profiles.get_mut("M").expect("profile M");
        m.max_join_pairs = 1_000_000;
        m.max_recursive_rows = 1_000;
        m.max_value_size = tollgate_catalog::ByteSize(16 << 20);
        m.max_generated_rows = 1_000_000;
    })
    .await;
    let acme = gateway.connect("acme").await;
    let refused = [
        (
            "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b \
             WHERE a.l_quantity + b.l_quantity > 1000",
            "max_join_pairs",
        ),
        (
            "SELECT count(*) FROM tpch.lineitem a CROSS JOIN tpch.lineitem b",
            "max_join_pairs",
        ),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
             SELECT count(*) FROM r",
            "max_recursive_rows",
        ),
        ("SELECT repeat('x', 1000000000)", "max_value_size"),
        ("SELECT length(repeat('x', 2000000000))", "max_value_size"),
        (
            "SELECT length(repeat(r_name, 100000000)) FROM tpch.region",
            "max_value_size",
        ),
        ("SELECT lpad('x', 2000000000)", "max_value_size"),
        ("SELECT cardinality(range(1, 1000000000))", "max_value_size"),
        (
            "SELECT count(*) FROM (SELECT unnest(range(1, 1000000000000)))",
            "max_value_size",
        ),
        ("SELECT array_repeat('x', 1000000000)", "max_value_size"),
        (
            "SELECT count(*) FROM generate_series(1, 1000000000000)",
            "max_generated_rows",
        ),
        (
            "SELECT x FROM generate_series(1000000000000, 1, -1) t(x) ORDER BY x LIMIT 1",
            "max_generated_rows",
        ),
        // Timestamps: no count before it runs; stopped when it gets there.
        (
            "SELECT count(*) FROM generate_series(TIMESTAMP '2000-01-01', \
             TIMESTAMP '2100-01-01', INTERVAL '1 second')",
            "max_generated_rows",
        ),
    ];
    for (sql, limit) in refused {
        let sent = Instant::now();
        let error = acme.simple_query(sql).await.expect_err(sql);
        let text = message(&error);
        assert_eq!(sqlstate(&error), "54000", "{sql}: {text}");
        assert!(
            text.contains(limit) && text.contains("profile M"),
            "{sql}: {text}"
        );
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{sql}: {:?}",
            sent.elapsed()
        );
    }
    // Within the bounds, the same functions and shapes answer.
    for (sql, expected) in [
        ("SELECT repeat('ab', 3)", "ababab"),
        ("SELECT length(lpad('x', 1000))", "1000"),
        ("SELECT cardinality(range(1, 1001))", "1000"),
        (
            "SELECT count(*) FROM generate_series(1, 1000000)",
            "1000000",
        ),
        ("SELECT count(*) FROM range(0, 1000000, 7)", "142858"),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 500) \
             SELECT count(*) FROM r",
            "500",
        ),
        (
            "SELECT count(*) FROM tpch.region a CROSS JOIN tpch.nation b",
            "125",
        ),
    ] {
        let rows = acme.simple_query(sql).await.expect(sql);
        let value = rows.iter().find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(value.as_deref(), Some(expected), "{sql}");
    }
    gateway.stop().await;
}
