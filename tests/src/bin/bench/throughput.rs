//! B2: streaming the `lineitem` projection in-process, through Arrow IPC in memory, over
//! Flight SQL (endpoints in parallel), over pgwire (binary and text), and from PostgreSQL
//! (binary and text).

use std::time::Instant;

use futures::{StreamExt, pin_mut};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::flight;
use crate::gateway::{Fixture, PROJECTION, Server};
use crate::placement::Placement;
use crate::postgres::{MACHINE_POSTGRES, lineitem_table};
use crate::report::{Measurement, Ratio, Report, summarize};

/// How a result is read.
#[derive(Clone, Copy)]
pub enum Read {
    /// Extended protocol, binary result format.
    Binary,
    /// Simple query protocol, text result format.
    Text,
}

/// Measures every path and records rows/s, MB/s and their ratios.
pub async fn measure(
    fixture: &Fixture,
    server: &Server,
    placement: Placement,
    runs: usize,
    report: &mut Report,
) -> Result<(), String> {
    // In-process: the engine API alone, on the gateway's side of the placement.
    placement.pin_server_side()?;
    let mut arrow_bytes = 0u64;
    let rows = fixture
        .scan_in_process(|batch| arrow_bytes += batch.get_array_memory_size() as u64)
        .await?;
    let in_process = time_runs(runs, || async { fixture.scan_in_process(|_| {}).await }).await?;
    let ipc = time_runs(runs, || flight::ipc_round_trip(fixture)).await?;
    placement.pin_load_generator()?;
    let flight_sql = time_runs(runs, || flight::fetch_parallel(server, rows)).await?;

    let gateway_sql = format!("SELECT {PROJECTION} FROM tpch.lineitem");
    let postgres_sql = format!("SELECT {PROJECTION} FROM {}", lineitem_table(fixture.scale));
    let gateway = server.conninfo("acme", false);
    let paths = [
        ("in-process", None),
        ("Arrow IPC in memory", None),
        ("Flight SQL", None),
        (
            "pgwire binary",
            Some((gateway.as_str(), gateway_sql.as_str(), Read::Binary)),
        ),
        (
            "pgwire text",
            Some((gateway.as_str(), gateway_sql.as_str(), Read::Text)),
        ),
        (
            "PostgreSQL binary",
            Some((MACHINE_POSTGRES, postgres_sql.as_str(), Read::Binary)),
        ),
        (
            "PostgreSQL text",
            Some((MACHINE_POSTGRES, postgres_sql.as_str(), Read::Text)),
        ),
    ];
    let mut rates = Vec::new();
    for (name, path) in paths {
        let seconds = match (name, path) {
            ("Arrow IPC in memory", None) => ipc.clone(),
            ("Flight SQL", None) => flight_sql.clone(),
            (_, None) => in_process.clone(),
            (_, Some((conninfo, sql, read))) => {
                time_runs(runs, || stream_rows(conninfo, sql, read, rows)).await?
            }
        };
        let (median, spread) = summarize(&seconds);
        let rows_per_second = rows as f64 / median;
        let megabytes_per_second = arrow_bytes as f64 / 1e6 / median;
        report.add(Measurement {
            id: "B2",
            placement: placement.name(),
            name: format!("{name}: rows/s"),
            value: rows_per_second,
            spread: (rows as f64 / spread.1, rows as f64 / spread.0),
            unit: "rows/s",
        });
        report.add(Measurement {
            id: "B2",
            placement: placement.name(),
            name: format!("{name}: MB/s (Arrow bytes of the result)"),
            value: megabytes_per_second,
            spread: (
                arrow_bytes as f64 / 1e6 / spread.1,
                arrow_bytes as f64 / 1e6 / spread.0,
            ),
            unit: "MB/s",
        });
        rates.push((name, rows_per_second));
    }
    let rate = |wanted: &str| {
        rates
            .iter()
            .find(|(name, _)| *name == wanted)
            .map_or(0.0, |(_, r)| *r)
    };
    for (numerator, denominator, goal) in [
        ("Flight SQL", "Arrow IPC in memory", "≥ 0.5"),
        ("Flight SQL", "pgwire binary", "—"),
        ("Flight SQL", "PostgreSQL binary", "—"),
        ("pgwire binary", "in-process", "≥ 0.90 (B1-style)"),
        ("pgwire text", "in-process", "≥ 0.90 (B1-style)"),
        ("pgwire binary", "PostgreSQL binary", "≥ 1.0"),
        ("pgwire text", "PostgreSQL text", "≥ 1.0"),
    ] {
        report.ratio(Ratio {
            id: "B2",
            placement: placement.name(),
            name: format!("{numerator} ÷ {denominator} (rows/s)"),
            numerator: rate(numerator),
            denominator: rate(denominator),
            goal,
        });
    }
    Ok(())
}

/// One warm-up, then `runs` timed runs of `work`; seconds per run.
pub async fn time_runs<F, Fut>(runs: usize, mut work: F) -> Result<Vec<f64>, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, String>>,
{
    work().await?;
    let mut seconds = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        work().await?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(seconds)
}

/// Streams `sql` through a fresh connection and checks the row count.
pub async fn stream_rows(
    conninfo: &str,
    sql: &str,
    read: Read,
    expected: u64,
) -> Result<u64, String> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .map_err(|e| format!("{conninfo}: {e}"))?;
    tokio::spawn(connection);
    let mut rows = 0u64;
    match read {
        Read::Binary => {
            let stream = client
                .query_raw(sql, std::iter::empty::<&dyn ToSql>())
                .await
                .map_err(|e| e.to_string())?;
            pin_mut!(stream);
            while let Some(row) = stream.next().await {
                row.map_err(|e| e.to_string())?;
                rows += 1;
            }
        }
        Read::Text => {
            let stream = client
                .simple_query_raw(sql)
                .await
                .map_err(|e| e.to_string())?;
            pin_mut!(stream);
            while let Some(message) = stream.next().await {
                if let SimpleQueryMessage::Row(_) = message.map_err(|e| e.to_string())? {
                    rows += 1;
                }
            }
        }
    }
    if rows == expected {
        Ok(rows)
    } else {
        Err(format!("{sql}: {rows} rows, expected {expected}"))
    }
}
