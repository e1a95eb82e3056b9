//! Differential results: the gateway's answers against PostgreSQL's for the same data.
//!
//! The demo's TPC-H data at scale 0.1 is loaded into the machine's PostgreSQL, each tenant's
//! grants as views there (`tollgate_tests::reference_pg`). Each query of
//! `differential/tpch/` then runs as each demo tenant over pgwire and against PostgreSQL as
//! that tenant's views, and the answers must agree (`tollgate_tests::answers`: names, exact
//! numbers at the gateway's scale, floats within a relative 1e-9, rows in order where the
//! query orders them, the same SQLSTATE where both refuse). Answers that differ only in a
//! known way (`answers::NUMERIC_DIVISION_TRUNCATES`) are listed in the output, not failed.
//!
//! The queries are TPC-H's, with its substitution parameters chosen so that both tenants'
//! grants leave rows to compare (acme sees only European customers, globex orders from 1995
//! on), and `ORDER BY` completed to a total order where the specification leaves ties.
//!
//! Random queries (`tollgate_tests::query_gen`: filters, joins on keys, aggregates, window
//! functions over the columns each tenant sees) are compared the same way at the tests' scale,
//! for a bounded time from a seed: `TOLLGATE_DIFFERENTIAL_SEED` (default 1) and
//! `TOLLGATE_DIFFERENTIAL_SECONDS` (default 40) choose them, `scripts/differential` runs longer
//! with new seeds. A query whose answers differ is reduced to the smallest that still differs
//! and written, with PostgreSQL's answer, as a sqllogictest file for `tests/slt/<tenant>/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tollgate_tests::answers::{Answer, Family, Mismatch, difference, orders_its_result};
use tollgate_tests::query_gen::{Generator, Query, tables_of};
use tollgate_tests::reference_pg::Reference;
use tollgate_tests::{TEST_SCALE, TestGateway, demo_options_at};

/// TPC-H scale of the compared data.
const SCALE: f64 = 0.1;

/// Indexes PostgreSQL needs to answer the correlated subqueries of Q2, Q17, Q20 and Q21 in
/// seconds rather than hours (the gateway decorrelates them into joins).
const REFERENCE_INDEXES: &str = "
    CREATE INDEX ON tpch.lineitem (l_partkey, l_suppkey);
    CREATE INDEX ON tpch.lineitem (l_orderkey);
    CREATE INDEX ON tpch.partsupp (ps_partkey, ps_suppkey);
    CREATE INDEX ON tpch.orders (o_custkey);
    CREATE INDEX ON tpch.orders (o_orderkey);
    ANALYZE;
";

/// The TPC-H queries, by file name, in order.
fn tpch_queries() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("differential/tpch");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read the TPC-H queries")
        .map(|entry| entry.expect("a query file").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let sql = std::fs::read_to_string(&path).expect("read a query");
            (name, sql)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tpch_answers_equal_postgresqls_for_each_tenant() {
    let ledger = tempfile::tempdir().expect("a ledger directory");
    let options = demo_options_at(SCALE, ledger.path());
    let reference = Reference::load("tollgate_differential", &options)
        .await
        .expect("load the reference");
    reference
        .connect()
        .await
        .batch_execute(REFERENCE_INDEXES)
        .await
        .expect("index the reference");
    let gateway = TestGateway::start_at_scale(SCALE, |_| {}).await;
    let queries = tpch_queries();
    assert_eq!(queries.len(), 22, "Q1 to Q22");

    let mut mismatches = Vec::new();
    let mut known = Vec::new();
    let mut compared_rows = 0;
    for tenant in ["acme", "globex"] {
        let ours = gateway.connect(tenant).await;
        ours.batch_execute("SET search_path = tpch")
            .await
            .expect("set the search_path");
        let theirs = reference.connect_as(tenant).await;
        for (name, sql) in &queries {
            let our_answer = Answer::of(&ours, sql).await;
            let their_answer = Answer::of(&theirs, sql).await;
            eprintln!("{tenant} {name}: {our_answer}; PostgreSQL: {their_answer}");
            compared_rows += their_answer.rows().map_or(0, <[_]>::len);
            match difference(&our_answer, &their_answer, orders_its_result(sql)) {
                Some(diff) if diff.known.is_some() => {
                    known.push(format!("{tenant} {name}: {diff}"))
                }
                Some(diff) => mismatches.push(format!("{tenant} {name}: {diff}")),
                None => {}
            }
        }
    }
    gateway.stop().await;
    eprintln!(
        "{} answers differ only in a known way:\n{}",
        known.len(),
        known.join("\n")
    );
    assert!(
        mismatches.is_empty(),
        "answers that differ from PostgreSQL's:\n{}",
        mismatches.join("\n")
    );
    assert!(compared_rows > 1_000, "the queries compared rows");
}

/// A number from the environment, else `default`.
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// How the gateway's answer to `sql` differs from PostgreSQL's, if it does. `None` too when
/// PostgreSQL gave up on it (its statement timeout): there is nothing to compare.
async fn mismatch(ours: &Client, theirs: &Client, sql: &str) -> Option<Mismatch> {
    let their_answer = Answer::of(theirs, sql).await;
    if matches!(&their_answer, Answer::Error { code, .. } if code == "57014") {
        return None;
    }
    let our_answer = Answer::of(ours, sql).await;
    difference(&our_answer, &their_answer, true)
}

/// The smallest reduction of `query` whose answers still differ, and how they differ.
async fn minimized(
    ours: &Client,
    theirs: &Client,
    query: Query,
    diff: Mismatch,
) -> (Query, Mismatch) {
    let (mut query, mut diff) = (query, diff);
    'reduce: loop {
        for smaller in query.reductions() {
            if let Some(smaller_diff) = mismatch(ours, theirs, &smaller.sql()).await
                && smaller_diff.known.is_none()
            {
                (query, diff) = (smaller, smaller_diff);
                continue 'reduce;
            }
        }
        return (query, diff);
    }
}

/// `sql` and PostgreSQL's answer to it as a sqllogictest record.
fn slt_record(sql: &str, answer: &Answer) -> String {
    match answer {
        Answer::Error { code, .. } => format!("statement error {code}\n{sql}\n"),
        Answer::Rows { columns, rows } => {
            let types: String = columns
                .iter()
                .map(|(_, family)| match family {
                    Family::Exact => 'I',
                    Family::Float => 'R',
                    Family::Text => 'T',
                })
                .collect();
            let mut record = format!("query {types}\n{sql}\n----\n");
            for row in rows {
                let values: Vec<&str> = row
                    .iter()
                    .map(|value| match value.as_deref() {
                        None => "NULL",
                        Some("") => "(empty)",
                        Some(value) => value,
                    })
                    .collect();
                let _ = writeln!(record, "{}", values.join(" "));
            }
            record
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_queries_answer_as_postgresql_does() {
    let seed = setting("TOLLGATE_DIFFERENTIAL_SEED", 1);
    let budget = Duration::from_secs(setting("TOLLGATE_DIFFERENTIAL_SECONDS", 40));
    let ledger = tempfile::tempdir().expect("a ledger directory");
    let options = demo_options_at(TEST_SCALE, ledger.path());
    let reference = Reference::load("tollgate_differential_random", &options)
        .await
        .expect("load the reference");
    let gateway = TestGateway::start().await;
    let found_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential");

    let mut failures = Vec::new();
    let mut known = 0;
    let mut compared = 0;
    for (index, tenant) in ["acme", "globex"].into_iter().enumerate() {
        let ours = gateway.connect(tenant).await;
        ours.batch_execute("SET search_path = tpch")
            .await
            .expect("set the search_path");
        let theirs = reference.connect_as(tenant).await;
        theirs
            .batch_execute("SET statement_timeout = '20s'")
            .await
            .expect("bound PostgreSQL's time per query");
        let tables = tables_of(&theirs, tenant).await;
        assert!(!tables.is_empty(), "{tenant} sees tables");
        let mut generator = Generator::new(seed.wrapping_add(index as u64), tables);
        let deadline = Instant::now() + budget / 2;
        while Instant::now() < deadline {
            let query = generator.next_query();
            compared += 1;
            let Some(diff) = mismatch(&ours, &theirs, &query.sql()).await else {
                continue;
            };
            if diff.known.is_some() {
                known += 1;
                continue;
            }
            let (query, diff) = minimized(&ours, &theirs, query, diff).await;
            let sql = query.sql();
            let dir = found_dir.join(tenant);
            std::fs::create_dir_all(&dir).expect("a directory for found queries");
            let path = dir.join(format!("seed-{seed}-{compared}.slt"));
            let record = slt_record(&sql, &Answer::of(&theirs, &sql).await);
            std::fs::write(
                &path,
                format!(
                    "# Found by the differential query generator (seed {seed}); PostgreSQL's answer.\n\n\
                     statement ok\nSET search_path = tpch\n\n{record}"
                ),
            )
            .expect("write the found query");
            failures.push(format!(
                "{tenant}: {sql}\n  {diff}\n  kept as {}",
                path.display()
            ));
        }
    }
    gateway.stop().await;
    eprintln!(
        "compared {compared} random queries (seed {seed}); {known} differ only in a known way"
    );
    assert!(
        failures.is_empty(),
        "random queries whose answers differ from PostgreSQL's:\n{}",
        failures.join("\n")
    );
    assert!(
        compared >= 20,
        "the budget compared enough queries: {compared}"
    );
}
