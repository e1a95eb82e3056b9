//! B4: noisy neighbour — a light tenant's latency while a heavy tenant saturates its share.
//!
//! ```text
//!  light: one-day count on orders, 20/s open loop ─┐
//!                                                  ├──▶ tollgate serve ([engine] isolation)
//!  heavy: 4 loops of TPC-H Q1 → Q18 → Q21 ─────────┘
//!
//!  (i)   light alone                  isolation on   ┐
//!  (iii) light + heavy                isolation on   │ one gateway process
//!  (iv)  light + heavy's joins, each cancelled       │
//!        300 ms after it started      isolation on   ┘
//!  (ii)  light + heavy                isolation off    another process, second configuration
//! ```
//!
//! Phase (iv) shows what a cancelled query leaves behind: heavy starts a join whose filter
//! rejects every pair (minutes of work), cancels it, and starts the next; if cancelled work
//! kept running, heavy's threads would pile up with it and light would wait.
//!
//! Light's send times are fixed in advance and its latency is measured from the scheduled
//! time, on enough connections that a slow answer never holds back the next send: a stalled
//! gateway shows up in the histogram instead of silently slowing the generator (no
//! coordinated omission). Heavy's loops count their completed queries, so a reader sees that
//! heavy kept working and was not simply starved.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate};
use hdrhistogram::Histogram;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_util::sync::CancellationToken;
use tollgate_catalog::scram::{DEFAULT_ITERATIONS, Verifier};
use tollgate_catalog::{
    ByteSize, GrantOptions, HumanDuration, PrincipalOptions, ProfileOptions, TenantOptions,
    TollgateOptions,
};

use crate::gateway::{Fixture, Server};
use crate::placement::Placement;
use crate::report::{Measurement, Ratio, Report};

/// Light's queries per second, sent on schedule whatever the answers do.
const LIGHT_RATE: f64 = 20.0;
/// Light's connections; a query waits for an idle one (and that wait counts as latency).
const LIGHT_CONNECTIONS: usize = 16;
/// Heavy's client loops, each running one query at a time.
const HEAVY_LOOPS: usize = 4;
/// Heavy runs this long before light's schedule starts, so its queries are under way.
const SETTLE: Duration = Duration::from_secs(1);
/// How long each of heavy's cancelled joins runs before its CancelRequest.
const CANCEL_AFTER: Duration = Duration::from_millis(300);
/// A join whose filter rejects every pair: far more work than [`CANCEL_AFTER`].
const REJECTING_JOIN: &str = "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b \
                              WHERE a.l_quantity + b.l_quantity > 1000";
/// Largest latency the histogram tells apart (longer ones are recorded as this).
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// TPC-H Q1 (delta 90 days), Q18 (quantity 300) and Q21 (nation SAUDI ARABIA).
const HEAVY_QUERIES: [&str; 3] = [
    "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, \
       sum(l_extendedprice) AS sum_base_price, \
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, \
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, \
       avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, \
       avg(l_discount) AS avg_disc, count(*) AS count_order \
     FROM tpch.lineitem \
     WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL '90' DAY \
     GROUP BY l_returnflag, l_linestatus \
     ORDER BY l_returnflag, l_linestatus",
    "SELECT c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity) \
     FROM tpch.customer, tpch.orders, tpch.lineitem \
     WHERE o_orderkey IN ( \
         SELECT l_orderkey FROM tpch.lineitem GROUP BY l_orderkey HAVING sum(l_quantity) > 300) \
       AND c_custkey = o_custkey AND o_orderkey = l_orderkey \
     GROUP BY c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice \
     ORDER BY o_totalprice DESC, o_orderdate \
     LIMIT 100",
    "SELECT s_name, count(*) AS numwait \
     FROM tpch.supplier, tpch.lineitem l1, tpch.orders, tpch.nation \
     WHERE s_suppkey = l1.l_suppkey AND o_orderkey = l1.l_orderkey AND o_orderstatus = 'F' \
       AND l1.l_receiptdate > l1.l_commitdate \
       AND EXISTS (SELECT * FROM tpch.lineitem l2 \
                   WHERE l2.l_orderkey = l1.l_orderkey AND l2.l_suppkey <> l1.l_suppkey) \
       AND NOT EXISTS (SELECT * FROM tpch.lineitem l3 \
                       WHERE l3.l_orderkey = l1.l_orderkey AND l3.l_suppkey <> l1.l_suppkey \
                         AND l3.l_receiptdate > l3.l_commitdate) \
       AND s_nationkey = n_nationkey AND n_name = 'SAUDI ARABIA' \
     GROUP BY s_name \
     ORDER BY numwait DESC, s_name \
     LIMIT 100",
];

/// What one phase measured: light's latencies (µs) and, with heavy, heavy's counts.
type Phase = (Histogram<u64>, Option<HeavyCount>);

/// What heavy's loops did in one phase.
#[derive(Debug, Default, Clone, Copy)]
struct HeavyCount {
    completed: u64,
    /// Refused (queue full, queue wait) or failed.
    failed: u64,
}

/// Runs the three phases in `placement`, each `phase` long, and records p50/p99/p99.9 of
/// light, heavy's counts, and the p99 ratios.
pub async fn measure(
    fixture: &Fixture,
    placement: Placement,
    phase: Duration,
    report: &mut Report,
) -> Result<(), String> {
    let isolated = fixture.write_config("b4-isolation-on", &config(fixture, true)?)?;
    let shared = fixture.write_config("b4-isolation-off", &config(fixture, false)?)?;

    let server = fixture.spawn_server_with(&isolated, placement)?;
    let alone = run_phase(&server, phase, None).await?;
    let on = run_phase(&server, phase, Some(Heavy::Queries)).await?;
    let cancelled = run_phase(&server, phase, Some(Heavy::CancelledJoins)).await?;
    drop(server);
    let server = fixture.spawn_server_with(&shared, placement)?;
    let off = run_phase(&server, phase, Some(Heavy::Queries)).await?;
    drop(server);

    for (label, (light, heavy)) in [
        ("alone", &alone),
        ("isolation off", &off),
        ("isolation on", &on),
        ("joins cancelled, isolation on", &cancelled),
    ] {
        let light_label = match heavy {
            Some(_) => format!("with heavy, {label}"),
            None => label.to_owned(),
        };
        let spread = (light.min() as f64, light.max() as f64);
        for (quantile, name) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")] {
            report.add(Measurement {
                id: "B4",
                placement: placement.name(),
                name: format!("light {light_label}: latency {name}"),
                value: light.value_at_quantile(quantile) as f64,
                spread,
                unit: "µs",
            });
        }
        if let Some(heavy) = heavy {
            for (name, count) in [
                ("completed", heavy.completed),
                ("refused or failed", heavy.failed),
            ] {
                report.add(Measurement {
                    id: "B4",
                    placement: placement.name(),
                    name: format!("heavy beside light, {label}: queries {name}"),
                    value: count as f64,
                    spread: (count as f64, count as f64),
                    unit: "queries",
                });
            }
        }
    }
    let p99 = |(light, _): &Phase| light.value_at_quantile(0.99) as f64;
    for (label, with_heavy, goal) in [
        ("with heavy, isolation on", &on, "≤ 1.5"),
        (
            "with heavy, isolation off",
            &off,
            "— (what isolation saves)",
        ),
        (
            "while heavy's joins are cancelled, isolation on",
            &cancelled,
            "≤ 1.5",
        ),
    ] {
        report.ratio(Ratio {
            id: "B4",
            placement: placement.name(),
            name: format!("light p99: {label} ÷ alone"),
            numerator: p99(with_heavy),
            denominator: p99(&alone),
            goal,
        });
    }
    Ok(())
}

/// The fixture's configuration plus tenants `light` and `heavy` (user = password = tenant)
/// on profiles of their own, with isolation on or off.
///
/// Both profiles have parallelism 1. On the 2-core machine that caps heavy at one core's
/// worth of executor threads, however many queries it runs, so with isolation light's own
/// executor thread gets the other core. (Pinned to one core, the gateway's threads share it
/// and the operating system's scheduler gives light's thread its turn.) Without isolation
/// both tenants' queries are tasks on one executor with a thread per core, and light's wait
/// behind heavy's. Heavy runs 2 queries at once; its other loops wait in the queue (long
/// enough never to be refused) rather than fail. Memory and timeouts are generous so that
/// only CPU is contended.
fn config(fixture: &Fixture, isolation: bool) -> Result<TollgateOptions, String> {
    let mut options = fixture.options.clone();
    options.engine.isolation = isolation;
    let ten_minutes = HumanDuration(Duration::from_secs(600));
    options.profiles.insert(
        "light".to_owned(),
        ProfileOptions {
            memory_limit: ByteSize(1 << 30),
            statement_timeout: ten_minutes,
            parallelism: 1,
            // Never queued: one query per connection at most.
            max_concurrent_queries: LIGHT_CONNECTIONS,
            max_queue_wait: ten_minutes,
            ..ProfileOptions::default()
        },
    );
    options.profiles.insert(
        "heavy".to_owned(),
        ProfileOptions {
            memory_limit: ByteSize(4 << 30),
            statement_timeout: ten_minutes,
            parallelism: 1,
            max_concurrent_queries: 2,
            queue_length: 4 * HEAVY_LOOPS,
            max_queue_wait: ten_minutes,
            // Its cancelled joins must start, not be refused for their size.
            max_join_pairs: u64::MAX,
            ..ProfileOptions::default()
        },
    );
    let grants: [(&str, &[&str]); 2] = [
        ("light", &["orders"]),
        (
            "heavy",
            &["lineitem", "orders", "customer", "supplier", "nation"],
        ),
    ];
    for (tenant, tables) in grants {
        options.tenants.push(TenantOptions {
            id: tenant.to_owned(),
            profile: tenant.to_owned(),
            attributes: Default::default(),
            allowed_origins: Vec::new(),
        });
        options.principals.push(PrincipalOptions {
            user: tenant.to_owned(),
            tenant: tenant.to_owned(),
            scram_verifier: Verifier::derive(tenant, DEFAULT_ITERATIONS)
                .map_err(|e| e.to_string())?
                .to_string(),
            channel: None,
        });
        for table in tables {
            options.grants.push(GrantOptions {
                tenant: tenant.to_owned(),
                dataset: format!("tpch.{table}"),
                columns: None,
                row_filter: None,
                source: None,
            });
        }
    }
    Ok(options)
}

/// What heavy does beside light.
#[derive(Debug, Clone, Copy)]
enum Heavy {
    /// TPC-H queries, back to back.
    Queries,
    /// Joins that reject every pair, each cancelled [`CANCEL_AFTER`] after it started.
    CancelledJoins,
}

/// One phase: light's open loop for `phase`, with heavy's loops running throughout if
/// `heavy` says what they run.
async fn run_phase(
    server: &Server,
    phase: Duration,
    heavy_work: Option<Heavy>,
) -> Result<Phase, String> {
    let with_heavy = heavy_work.is_some();
    let mut light = Vec::with_capacity(LIGHT_CONNECTIONS);
    for i in 0..LIGHT_CONNECTIONS {
        let client = connect(server, "light").await?;
        // Warm-up: every connection has planned and run the query once.
        light_query(&client, i).await?;
        light.push(client);
    }
    let stop = CancellationToken::new();
    let mut heavy = JoinSet::new();
    if with_heavy {
        for first in 0..HEAVY_LOOPS {
            let client = connect(server, "heavy").await?;
            match heavy_work {
                Some(Heavy::CancelledJoins) => {
                    heavy.spawn(cancel_loop(client, stop.clone()));
                }
                _ => {
                    heavy.spawn(heavy_loop(client, first, stop.clone()));
                }
            }
        }
        tokio::time::sleep(SETTLE).await;
    }
    let latencies = open_loop(light, phase).await;
    stop.cancel();
    let mut count = HeavyCount::default();
    while let Some(done) = heavy.join_next().await {
        let done = done.map_err(|e| e.to_string())?;
        count.completed += done.completed;
        count.failed += done.failed;
    }
    let latencies = latencies?;
    eprintln!(
        "bench: B4 {} light queries{}",
        latencies.len(),
        if with_heavy {
            format!(
                ", heavy {} completed and {} refused or failed",
                count.completed, count.failed
            )
        } else {
            String::new()
        }
    );
    Ok((latencies, with_heavy.then_some(count)))
}

/// Sends light's queries at [`LIGHT_RATE`] for `phase`, each on the first idle connection;
/// latency runs from the scheduled send time to the end of the answer.
async fn open_loop(clients: Vec<Client>, phase: Duration) -> Result<Histogram<u64>, String> {
    let count = ((phase.as_secs_f64() * LIGHT_RATE).round() as usize).max(1);
    let interval = Duration::from_secs_f64(1.0 / LIGHT_RATE);
    let (idle_tx, idle_rx) = mpsc::unbounded_channel();
    for client in clients {
        let _ = idle_tx.send(client);
    }
    // Queries waiting for a connection take turns in order (tokio's mutex is fair).
    let idle_rx = Arc::new(Mutex::new(idle_rx));
    // Every send is scheduled before the first one is due.
    let start = Instant::now() + Duration::from_millis(100);
    let mut requests = JoinSet::new();
    for i in 0..count {
        let scheduled = start + interval.mul_f64(i as f64);
        let (idle_tx, idle_rx) = (idle_tx.clone(), Arc::clone(&idle_rx));
        requests.spawn(async move {
            tokio::time::sleep_until(scheduled).await;
            let client = idle_rx
                .lock()
                .await
                .recv()
                .await
                .ok_or("light's connections are gone")?;
            let outcome = light_query(&client, i).await;
            let micros = scheduled.elapsed().as_micros();
            let _ = idle_tx.send(client);
            outcome.map(|()| micros)
        });
    }
    let mut histogram =
        Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).map_err(|e| format!("histogram: {e}"))?;
    while let Some(done) = requests.join_next().await {
        let micros = done.map_err(|e| e.to_string())??;
        histogram.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
    }
    Ok(histogram)
}

/// Light's query number `i`: the count of one day's orders, a different day each time.
async fn light_query(client: &Client, i: usize) -> Result<(), String> {
    // Orders span 1992-01-01 to 1998-08-02; a step of 97 days visits them all in turn.
    let offset = (i as u64 * 97) % 2_400;
    let day = NaiveDate::from_ymd_opt(1992, 1, 1)
        .and_then(|first| first.checked_add_days(Days::new(offset)))
        .ok_or("light's day is out of range")?;
    let sql = format!("SELECT count(*) FROM tpch.orders WHERE o_orderdate = DATE '{day}'");
    let messages = client
        .simple_query(&sql)
        .await
        .map_err(|e| format!("light: {sql}: {e}"))?;
    let rows = messages
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
        .count();
    if rows == 1 {
        Ok(())
    } else {
        Err(format!("light: {sql}: {rows} rows, expected 1"))
    }
}

/// Cycles through [`HEAVY_QUERIES`] from query `first` until `stop`; errors (e.g. a
/// refusal by the queue) are counted and the loop goes on.
async fn heavy_loop(client: Client, first: usize, stop: CancellationToken) -> HeavyCount {
    let mut count = HeavyCount::default();
    for sql in HEAVY_QUERIES.iter().cycle().skip(first) {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            outcome = client.simple_query(sql) => match outcome {
                Ok(_) => count.completed += 1,
                Err(error) => {
                    if count.failed == 0 {
                        eprintln!("bench: B4 heavy: {error}");
                    }
                    count.failed += 1;
                    if client.is_closed() {
                        break;
                    }
                }
            },
        }
    }
    count
}

/// Starts [`REJECTING_JOIN`], cancels it after [`CANCEL_AFTER`], and again, until `stop`;
/// a join cancelled as asked counts as completed.
async fn cancel_loop(client: Client, stop: CancellationToken) -> HeavyCount {
    let client = Arc::new(client);
    let mut count = HeavyCount::default();
    while !stop.is_cancelled() {
        let running = {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.simple_query(REJECTING_JOIN).await })
        };
        tokio::time::sleep(CANCEL_AFTER).await;
        let cancelled = client.cancel_token().cancel_query(NoTls).await.is_ok();
        let outcome = running.await;
        let stopped_as_asked = matches!(
            &outcome,
            Ok(Err(error)) if error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
        );
        if cancelled && stopped_as_asked {
            count.completed += 1;
        } else {
            if count.failed == 0 {
                eprintln!("bench: B4 cancelled join: {outcome:?}");
            }
            count.failed += 1;
        }
    }
    count
}

/// A connection as demo-style user `user` (password = user name), without TLS.
async fn connect(server: &Server, user: &str) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(&server.conninfo(user, false), NoTls)
        .await
        .map_err(|e| format!("connect as {user}: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}
