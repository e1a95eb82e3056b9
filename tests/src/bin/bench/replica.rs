//! B3: the gateway in front of a PostgreSQL replica vs the replica direct. A table of the
//! machine's PostgreSQL is served as dataset `bench.rows` through a postgres source, and
//! the same SQL runs against both:
//!
//! * point lookups by primary key (a prepared statement, sequential): p50 and p99 latency,
//!   and the latency the gateway adds;
//! * 100,000-row range scans (binary results): rows/s.
//!
//! The two targets alternate run by run, so drift on the shared machine hits both alike.

use std::time::{Duration, Instant};

use futures::{StreamExt, pin_mut};
use hdrhistogram::Histogram;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use tollgate_catalog::{DatasetOptions, GrantOptions, HumanDuration, SourceOptions};

use crate::gateway::Fixture;
use crate::placement::Placement;
use crate::postgres::MACHINE_POSTGRES;
use crate::report::{Measurement, Ratio, Report, summarize};

/// The table on the replica.
const TABLE: &str = "tollgate_bench.b3_rows";
/// Rows of each range scan.
const RANGE: i64 = 100_000;

/// How much to measure.
pub struct Plan {
    /// Rows of the table.
    pub rows: i64,
    /// Point lookups per target.
    pub lookups: usize,
    /// Timed range scans per target (after one warm-up each).
    pub scans: usize,
}

/// Creates the table unless it holds `rows` rows already.
async fn load(client: &Client, rows: i64) -> Result<(), String> {
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS tollgate_bench")
        .await
        .map_err(|e| e.to_string())?;
    let present: i64 = match client
        .query_one(&format!("SELECT count(*) FROM {TABLE}"), &[])
        .await
    {
        Ok(row) => row.get(0),
        Err(_) => -1,
    };
    if present == rows {
        return Ok(());
    }
    eprintln!("bench: loading {rows} rows into PostgreSQL table {TABLE}");
    for statement in [
        format!("DROP TABLE IF EXISTS {TABLE}"),
        format!(
            "CREATE TABLE {TABLE} (id bigint PRIMARY KEY, quantity numeric(15,2), \
             price double precision, shipped date, label text)"
        ),
        format!(
            "INSERT INTO {TABLE} SELECT i, (i % 50) + 0.25, i * 1.5, \
             DATE '2020-01-01' + (i % 1000), 'row ' || i FROM generate_series(0, {}) AS i",
            rows - 1
        ),
        format!("ANALYZE {TABLE}"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn connect(conninfo: &str) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .map_err(|e| format!("{conninfo}: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Measures both paths in `placement` and records latencies, rows/s and their ratios.
pub async fn measure(
    fixture: &Fixture,
    placement: Placement,
    plan: &Plan,
    report: &mut Report,
) -> Result<(), String> {
    let direct = connect(MACHINE_POSTGRES).await?;
    load(&direct, plan.rows).await?;

    let mut options = fixture.options.clone();
    options.sources.insert(
        "replica".to_owned(),
        SourceOptions::Postgres {
            replicas: vec![MACHINE_POSTGRES.to_owned()],
            max_connections: 4,
            connect_timeout: HumanDuration(Duration::from_secs(3)),
            read_timeout: HumanDuration(Duration::from_secs(30)),
            tls: None,
        },
    );
    let dataset: DatasetOptions = toml::from_str(&format!(
        "id = \"bench.rows\"\nsource = \"replica\"\npath = \"{TABLE}\""
    ))
    .map_err(|e| e.to_string())?;
    options.datasets.push(dataset);
    let grant: GrantOptions =
        toml::from_str("tenant = \"acme\"\ndataset = \"bench.rows\"").map_err(|e| e.to_string())?;
    options.grants.push(grant);
    let config = fixture.write_config("b3-replica", &options)?;
    let server = fixture.spawn_server_with(&config, placement)?;
    let gateway = connect(&server.conninfo("acme", false)).await?;

    // Point lookups: the same ids against both, alternating.
    let targets = [
        ("gateway", &gateway, "bench.rows"),
        ("PostgreSQL", &direct, TABLE),
    ];
    let mut statements = Vec::new();
    for (name, client, table) in targets {
        let sql = format!("SELECT id, quantity, price, shipped, label FROM {table} WHERE id = $1");
        let statement = client
            .prepare(&sql)
            .await
            .map_err(|e| format!("{name}: prepare: {e}"))?;
        statements.push(statement);
    }
    let mut histograms = [new_histogram()?, new_histogram()?];
    let mut id: i64 = 12_345;
    for round in 0..plan.lookups + 10 {
        id = (id * 1_103_515_245 + 12_345).rem_euclid(plan.rows);
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (name, client, _) = targets[i];
            let started = Instant::now();
            let rows = client
                .query(&statements[i], &[&id])
                .await
                .map_err(|e| format!("{name}: lookup: {e}"))?;
            let micros = started.elapsed().as_micros() as u64;
            if rows.len() != 1 {
                return Err(format!("{name}: id {id} returned {} rows", rows.len()));
            }
            // The first rounds warm both up.
            if round >= 10 {
                histograms[i]
                    .record(micros.max(1))
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    for (i, (name, _, _)) in targets.iter().enumerate() {
        for (quantile, label) in [(0.5, "p50"), (0.99, "p99")] {
            report.add(Measurement {
                id: "B3",
                placement: placement.name(),
                name: format!("{name}: point lookup {label}"),
                value: histograms[i].value_at_quantile(quantile) as f64,
                spread: (histograms[i].min() as f64, histograms[i].max() as f64),
                unit: "µs",
            });
        }
    }
    for (quantile, label) in [(0.5, "p50"), (0.99, "p99")] {
        let added = histograms[0].value_at_quantile(quantile) as f64
            - histograms[1].value_at_quantile(quantile) as f64;
        report.add(Measurement {
            id: "B3",
            placement: placement.name(),
            name: format!("point lookup {label}: latency the gateway adds"),
            value: added,
            spread: (added, added),
            unit: "µs",
        });
    }
    report.ratio(Ratio {
        id: "B3",
        placement: placement.name(),
        name: "point lookup p50: gateway ÷ PostgreSQL (µs)".to_owned(),
        numerator: histograms[0].value_at_quantile(0.5) as f64,
        denominator: histograms[1].value_at_quantile(0.5) as f64,
        goal: "≤ +150 µs p50",
    });

    // Range scans of 100,000 rows, binary results.
    let mut seconds = [Vec::new(), Vec::new()];
    let mut start: i64 = 0;
    for run in 0..=plan.scans {
        start = (start + 7 * RANGE + 1) % (plan.rows - RANGE).max(1);
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (name, client, table) = targets[i];
            let sql = format!(
                "SELECT id, quantity, price, shipped, label FROM {table} \
                 WHERE id >= {start} AND id < {}",
                start + RANGE
            );
            let started = Instant::now();
            let rows = stream(client, &sql)
                .await
                .map_err(|e| format!("{name}: range: {e}"))?;
            if rows != RANGE as u64 {
                return Err(format!("{name}: a range returned {rows} rows"));
            }
            if run > 0 {
                seconds[i].push(started.elapsed().as_secs_f64());
            }
        }
    }
    let mut rates = [0.0; 2];
    for (i, (name, _, _)) in targets.iter().enumerate() {
        let (median, spread) = summarize(&seconds[i]);
        rates[i] = RANGE as f64 / median;
        report.add(Measurement {
            id: "B3",
            placement: placement.name(),
            name: format!("{name}: 100k-row range scan"),
            value: rates[i],
            spread: (RANGE as f64 / spread.1, RANGE as f64 / spread.0),
            unit: "rows/s",
        });
    }
    report.ratio(Ratio {
        id: "B3",
        placement: placement.name(),
        name: "100k-row range scan: gateway ÷ PostgreSQL (rows/s)".to_owned(),
        numerator: rates[0],
        denominator: rates[1],
        goal: "(none set)",
    });
    drop(server);
    Ok(())
}

fn new_histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())
}

/// Runs `sql` with binary results and counts the rows without keeping them.
async fn stream(client: &Client, sql: &str) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare(sql).await?;
    let rows = client
        .query_raw(&statement, std::iter::empty::<&(dyn ToSql + Sync)>())
        .await?;
    pin_mut!(rows);
    let mut count = 0;
    while let Some(row) = rows.next().await {
        row?;
        count += 1;
    }
    Ok(count)
}
