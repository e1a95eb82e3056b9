//! B5: metering on vs off — B2's `lineitem` projection over pgwire (binary) and over Flight
//! SQL, from two gateway processes started from the same binary: one keeping each query's
//! usage record in its SQLite ledger, and one with `[usage] ledger = "none"`, where the meter
//! still counts but nothing is stored.
//!
//! ```text
//!  warm-up   SQLite, none
//!  run 1     SQLite, none
//!  run 2     none, SQLite
//!  run 3     SQLite, none   …
//! ```
//!
//! Both gateways run side by side in the same placement, and their runs alternate in ABBA
//! order, so drift on the shared machine hits numerator and denominator alike.

use std::time::Instant;

use tollgate_catalog::LedgerKind;

use crate::flight;
use crate::gateway::{Fixture, PROJECTION};
use crate::placement::Placement;
use crate::report::{Measurement, Ratio, Report, summarize};
use crate::throughput::{Read, stream_rows};

/// The two ledgers compared, numerator first, with the names used in reports.
const LEDGERS: [(LedgerKind, &str); 2] = [
    (LedgerKind::Sqlite, "SQLite ledger"),
    (LedgerKind::None, "no-op ledger"),
];

/// Measures both paths against both gateways and records rows/s and the ratios
/// SQLite ledger ÷ no-op ledger; `rows` is the projection's row count.
pub async fn measure(
    fixture: &Fixture,
    placement: Placement,
    rows: u64,
    runs: usize,
    report: &mut Report,
) -> Result<(), String> {
    let mut servers = Vec::with_capacity(LEDGERS.len());
    for (ledger, _) in LEDGERS {
        let mut options = fixture.options.clone();
        options.usage.ledger = ledger;
        let config =
            fixture.write_config(&format!("b5-ledger-{ledger:?}").to_lowercase(), &options)?;
        servers.push(fixture.spawn_server_with(&config, placement)?);
    }
    let sql = format!("SELECT {PROJECTION} FROM tpch.lineitem");
    let conninfo: Vec<String> = servers.iter().map(|s| s.conninfo("acme", false)).collect();
    let pgwire = interleave(runs, |i| {
        stream_rows(&conninfo[i], &sql, Read::Binary, rows)
    })
    .await?;
    let flight_sql = interleave(runs, |i| flight::fetch_parallel(&servers[i], rows)).await?;

    for (path, seconds) in [("pgwire binary", pgwire), ("Flight SQL", flight_sql)] {
        let mut rates = [0.0; 2];
        for ((rate, samples), (_, ledger)) in rates.iter_mut().zip(&seconds).zip(LEDGERS) {
            let (median, spread) = summarize(samples);
            *rate = rows as f64 / median;
            report.add(Measurement {
                id: "B5",
                placement: placement.name(),
                name: format!("{path}, {ledger}: rows/s"),
                value: *rate,
                spread: (rows as f64 / spread.1, rows as f64 / spread.0),
                unit: "rows/s",
            });
        }
        report.ratio(Ratio {
            id: "B5",
            placement: placement.name(),
            name: format!("{path}: {} ÷ {} (rows/s)", LEDGERS[0].1, LEDGERS[1].1),
            numerator: rates[0],
            denominator: rates[1],
            goal: "≥ 0.98",
        });
    }
    Ok(())
}

/// One warm-up against each gateway, then `runs` timed runs against each, alternating which
/// goes first; `work(i)` runs once against gateway `i` of [`LEDGERS`]. Seconds per run, per
/// gateway.
async fn interleave<F, Fut>(runs: usize, mut work: F) -> Result<[Vec<f64>; 2], String>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<u64, String>>,
{
    for i in 0..LEDGERS.len() {
        work(i).await?;
    }
    let mut seconds = [Vec::with_capacity(runs), Vec::with_capacity(runs)];
    for run in 0..runs.max(1) {
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let started = Instant::now();
            work(i).await?;
            seconds[i].push(started.elapsed().as_secs_f64());
        }
    }
    Ok(seconds)
}
