//! Tollgate's benchmarks: ratios measured in one run (see the shared BENCHMARKS notes).
//!
//! ```text
//! bench [--scale SF] [--runs N] [--connects N] [--only B2,B3,…] [--smoke] [--out DIR]
//! ```
//!
//! * B2 — streaming a `lineitem` projection: in-process (the planner's engine API), through
//!   Arrow IPC encode → decode in memory (the limit for Flight SQL), over Flight SQL with
//!   every endpoint fetched in parallel, over pgwire in binary and text, and PostgreSQL
//!   serving the same rows in binary and text.
//! * B3 — a PostgreSQL replica through the gateway's postgres source vs direct: point
//!   lookups (p50/p99 and the latency added) and 100,000-row range scans (rows/s).
//! * B4 — noisy neighbour: a light tenant's small queries at a fixed rate (open loop, p50/p99
//!   in an HDR histogram) alone, and while a heavy tenant runs TPC-H Q1/Q18/Q21 with
//!   `[engine] isolation` off and on; 30 s per phase (2 s with `--smoke`).
//! * B5 — metering's cost: B2's projection over pgwire (binary) and Flight SQL from two
//!   gateways, one with the SQLite usage ledger and one with `[usage] ledger = "none"`, their
//!   runs interleaved.
//! * B7 — connect time with SCRAM, and with TLS + SCRAM, against a private PostgreSQL cluster
//!   configured with the same authentication.
//! * B9 — the Web-API: B2's projection streamed as NDJSON and as Arrow IPC over HTTP vs
//!   Flight SQL, and a one-row resource `GET` vs the same lookup prepared over pgwire (p50).
//! * B10 — a `file` channel of B2's projection: the export, then the `delta-sharing`
//!   connector's `load_as_pandas` vs pyarrow reading the same Parquet files from disk.
//! * B11 — a `nats` channel: a 1 M-row snapshot from the order to its last row at a JetStream
//!   subscriber vs the same messages published straight to JetStream; the latency from a
//!   file landing to its rows at the subscriber (p50, p99).
//!
//! The gateway runs as a child process (`tollgate serve`), so it can be pinned to one core
//! while this process, the load generator, runs on the other. Every measurement is taken in
//! both placements: unpinned, and pinned. Results go to stdout as a Markdown table and, one
//! JSON object per line, to `<out>/bench.jsonl`.

mod connect;
mod flight;
mod gateway;
mod metering;
mod noisy;
mod placement;
mod postgres;
mod push;
mod replica;
mod report;
mod sharing;
mod throughput;
mod webapi;

use std::path::PathBuf;
use std::time::Duration;

use report::Report;
use tollgate_tests::pg_cluster::PrivateCluster;

/// Command-line options.
struct Options {
    scale: f64,
    runs: usize,
    connects: usize,
    /// Length of each of B4's three phases.
    noisy_phase: Duration,
    out: PathBuf,
    smoke: bool,
    /// Benchmarks to run (B2 covers B2's throughput); empty means all.
    only: Vec<String>,
}

impl Options {
    fn includes(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|only| only == id)
    }
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        scale: 1.0,
        runs: 5,
        connects: 200,
        // Three phases in each of two placements: B4 takes about 3½ minutes.
        noisy_phase: Duration::from_secs(30),
        out: PathBuf::from("bench-results"),
        smoke: false,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--scale" => {
                options.scale = value("--scale")?
                    .parse()
                    .map_err(|e| format!("--scale: {e}"))?
            }
            "--runs" => {
                options.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--connects" => {
                options.connects = value("--connects")?
                    .parse()
                    .map_err(|e| format!("--connects: {e}"))?
            }
            "--out" => options.out = PathBuf::from(value("--out")?),
            "--only" => {
                options.only = value("--only")?
                    .split(',')
                    .map(|id| id.trim().to_ascii_uppercase())
                    .collect()
            }
            "--smoke" => options.smoke = true,
            "--help" | "-h" => {
                println!(
                    "bench [--scale SF (1)] [--runs N (5)] [--connects N (200)] [--only B2,B3,B4,B5,B7,B9,B10,B11] [--smoke] [--out DIR (bench-results)]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.smoke {
        options.scale = 0.01;
        options.runs = 1;
        options.connects = 5;
        options.noisy_phase = Duration::from_secs(2);
    }
    Ok(options)
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("bench: {message}");
            std::process::exit(2);
        }
    };
    tollgate_tests::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start a runtime: {error}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(report) => {
            if let Err(error) = report.write(&options.out) {
                eprintln!("bench: cannot write results: {error}");
                std::process::exit(1);
            }
        }
        Err(error) => {
            eprintln!("bench: {error}");
            std::process::exit(1);
        }
    }
}

async fn run(options: &Options) -> Result<Report, String> {
    let mut report = Report::new(options.scale);
    let fixture = gateway::Fixture::prepare(options.scale, &options.out).await?;
    // The PostgreSQL copy of lineitem (B2, B5) and the private cluster (B7) only when used.
    let rows = if options.includes("B2") || options.includes("B5") || options.includes("B9") {
        let rows = postgres::load_lineitem(&fixture).await?;
        eprintln!("bench: {rows} lineitem rows at scale {}", options.scale);
        rows
    } else {
        0
    };
    let cluster = if options.includes("B7") {
        Some(PrivateCluster::start(&fixture.cert_pem, &fixture.key_pem)?)
    } else {
        None
    };
    for placement in placement::Placement::all(options.smoke) {
        let server = fixture.spawn_server(placement)?;
        placement.pin_load_generator()?;
        if options.includes("B2") {
            throughput::measure(&fixture, &server, placement, options.runs, &mut report).await?;
        }
        if let Some(cluster) = &cluster {
            connect::measure(
                &fixture,
                &server,
                cluster,
                placement,
                options.connects,
                &mut report,
            )
            .await?;
        }
        drop(server);
        let replica_plan = if options.smoke {
            replica::Plan {
                rows: 120_000,
                lookups: 20,
                scans: 1,
            }
        } else {
            replica::Plan {
                rows: 1_000_000,
                lookups: 2_000,
                scans: options.runs,
            }
        };
        if options.includes("B3") {
            replica::measure(&fixture, placement, &replica_plan, &mut report).await?;
        }
        if options.includes("B5") {
            metering::measure(&fixture, placement, rows, options.runs, &mut report).await?;
        }
        if options.includes("B4") {
            noisy::measure(&fixture, placement, options.noisy_phase, &mut report).await?;
        }
        if options.includes("B9") {
            let lookups = if options.smoke { 20 } else { 2_000 };
            webapi::measure(
                &fixture,
                placement,
                (rows, options.runs, lookups),
                &mut report,
            )
            .await?;
        }
        if options.includes("B10") {
            sharing::measure(&fixture, placement, options.runs, &mut report).await?;
        }
        if options.includes("B11") {
            let plan = if options.smoke {
                (20_000, 1, 3)
            } else {
                (1_000_000, options.runs, 50)
            };
            push::measure(&fixture, placement, plan, &mut report).await?;
        }
        placement::Placement::unpin_self()?;
    }
    Ok(report)
}
