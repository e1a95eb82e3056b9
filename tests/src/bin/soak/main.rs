//! The soak: mixed load for a bounded time against the real `tollgate` binary, checking that
//! no client sees an unexpected error, the gateway's memory and file descriptors stay flat
//! after warm-up, and the ledger accounts for every query. Not part of CI:
//! `scripts/soak [minutes]` builds and runs it.
//!
//! ```text
//! soak [--minutes N (30) | --seconds N] [--connections N (200)] [--tenants N (10)]
//!      [--think-ms N (10000)] [--seed N (1)] [--scale SF (0.01)] [--out DIR]
//! ```
//!
//! ```text
//! configuration ─▶ tollgate serve ─▶ clients over every tenant: 70 % pgwire, 15 % Flight SQL,
//!   15 % Web-API; queries of the mix, cancels, timeouts, clients leaving mid-query
//! ─▶ RSS and fds every 10 s ─▶ clients stop ─▶ idle sample ─▶ SIGTERM: drain, exit 0
//! ─▶ tollgate usage export ─▶ records against the clients' counts ─▶ summary; exit 1 on
//!   any unexpected error, growth, mismatch, or error line in the gateway's log
//! ```
//!
//! Traffic goes to loopback only. The gateway's log, configuration and ledger stay in
//! `--out` (default: `tollgate-soak` under the system temp directory).

mod client;
mod config;
mod flight;
mod gateway;
mod http;
mod ledger;
mod log;
mod pgwire;
mod report;
mod resources;
mod tally;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use client::Client;
use config::{Listeners, Tenant};
use gateway::Gateway;
use resources::{EVERY, IDLE_FDS, Sample};
use tally::{Protocol, Tally};
use workload::Mix;

/// How long clients may take to finish their last query once the load stops: past the
/// longest queue wait and timeout, and past [`tally::HUNG`], after which they give up.
const STOP_WAIT: Duration = Duration::from_secs(150);

/// How long the gateway may take to close the connections of clients that left.
const SETTLE: Duration = Duration::from_secs(3);

/// Command-line options.
struct Options {
    load: Duration,
    connections: usize,
    tenants: usize,
    think: Duration,
    seed: u64,
    scale: f64,
    out: PathBuf,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        load: Duration::from_secs(30 * 60),
        connections: 200,
        tenants: 10,
        think: Duration::from_millis(10_000),
        seed: 1,
        scale: 0.01,
        out: std::env::temp_dir().join("tollgate-soak"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, text: String| {
            text.parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
                .and_then(|n| {
                    (n > 0)
                        .then_some(n)
                        .ok_or(format!("{name} must be positive"))
                })
        };
        match arg.as_str() {
            "--minutes" => options.load = Duration::from_secs(60 * number(&arg, value(&arg)?)?),
            "--seconds" => options.load = Duration::from_secs(number(&arg, value(&arg)?)?),
            "--connections" => options.connections = number(&arg, value(&arg)?)? as usize,
            "--tenants" => options.tenants = number(&arg, value(&arg)?)? as usize,
            "--think-ms" => options.think = Duration::from_millis(number(&arg, value(&arg)?)?),
            "--seed" => options.seed = number(&arg, value(&arg)?)?,
            "--scale" => {
                options.scale = value(&arg)?.parse().map_err(|e| format!("--scale: {e}"))?
            }
            "--out" => options.out = PathBuf::from(value(&arg)?),
            "--help" | "-h" => {
                println!(
                    "soak [--minutes N (30) | --seconds N] [--connections N (200)] [--tenants N (10)] [--think-ms N (10000)] [--seed N (1)] [--scale SF (0.01)] [--out DIR]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("soak: {message}");
            return ExitCode::from(2);
        }
    };
    tollgate_tests::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("soak: cannot start a runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(failures) if failures.is_empty() => {
            println!("\nsoak: passed");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            println!("\nsoak: FAILED");
            for failure in failures {
                println!("  - {failure}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("soak: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the soak; what failed (empty when it passed).
async fn run(options: &Options) -> Result<Vec<String>, String> {
    let out = &options.out;
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let tenants = config::tenants(options.tenants);
    let listeners = Listeners::free()?;
    let config = config::write(out, options.scale, &tenants, listeners)?;
    let log = out.join("gateway.log");
    let mut gateway = Gateway::spawn(&config, listeners, &log)?;
    let pid = gateway.pid();
    println!(
        "soak: gateway pid {pid} (log, configuration and ledger in {}); {} clients over {} tenants for {} s, seed {}",
        out.display(),
        options.connections,
        tenants.len(),
        options.load.as_secs(),
        options.seed
    );
    tokio::time::sleep(SETTLE).await;
    let before = Sample::read(pid, Duration::ZERO)?;

    let tally = Arc::new(Tally::default());
    let stop = CancellationToken::new();
    let (clients, per_protocol) = start_clients(options, &tenants, listeners, &tally, &stop);
    let started = Instant::now();
    let generator_before = Sample::read(std::process::id(), Duration::ZERO)?;
    println!("{}", report::PROGRESS_HEADER);
    let mut samples = Vec::new();
    let mut next = started + EVERY;
    while next <= started + options.load {
        tokio::time::sleep_until(next).await;
        gateway
            .running()
            .map_err(|e| format!("{e}; its log is {}", log.display()))?;
        let sample = Sample::read(pid, started.elapsed())?;
        let previous = samples.last().unwrap_or(&before);
        println!("{}", report::progress(&sample, previous, &tally.snapshot()));
        samples.push(sample);
        next += EVERY;
    }
    tokio::time::sleep_until(started + options.load).await;
    stop.cancel();
    let generator_after = Sample::read(std::process::id(), started.elapsed())?;

    let mut failures = Vec::new();
    let aborts: Vec<_> = clients.iter().map(|client| client.abort_handle()).collect();
    match tokio::time::timeout(STOP_WAIT, futures::future::join_all(clients)).await {
        Ok(ended) => {
            let panicked = ended.iter().filter(|client| client.is_err()).count();
            if panicked > 0 {
                failures.push(format!("{panicked} clients panicked (see above)"));
            }
        }
        Err(_) => {
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
            failures.push(format!(
                "clients still waited for answers {STOP_WAIT:?} after the load stopped"
            ));
        }
    }
    tokio::time::sleep(SETTLE).await;
    let after = Sample::read(pid, started.elapsed())?;
    let flatness = resources::judge(&samples, options.load);
    failures.extend(flatness.failures.iter().cloned());
    if after.fds > before.fds + IDLE_FDS {
        failures.push(format!(
            "idle again, the gateway holds {} file descriptors; {} before the load",
            after.fds, before.fds
        ));
    }
    match gateway.terminate(Duration::from_secs(60)).await {
        Ok(status) if status.success() => {}
        Ok(status) => failures.push(format!("the gateway exited with {status} after SIGTERM")),
        Err(error) => failures.push(error),
    }
    let logged = log::LogFindings::read(&log)?;
    let records = gateway.usage_export()?;
    let recorded = ledger::Recorded::count(&records);
    let counted = tally.snapshot();
    let mismatches = ledger::reconcile(&recorded, &counted);
    let summary = report::Summary {
        load: options.load,
        clients: per_protocol,
        before,
        generator: (generator_before, generator_after),
        samples: &samples,
        after,
        flatness: &flatness,
        counted: &counted,
        recorded: &recorded,
        logged: &logged,
    };
    println!("\n{}", summary.render());
    if counted.unexpected_total() > 0 {
        failures.push(format!(
            "{} unexpected errors (listed above)",
            counted.unexpected_total()
        ));
    }
    let logged_errors: u64 = logged.errors.values().sum();
    if logged_errors > 0 {
        failures.push(format!(
            "{logged_errors} errors or panics in the gateway's log (listed above)"
        ));
    }
    failures.extend(mismatches.into_iter().map(|m| format!("ledger: {m}")));
    Ok(failures)
}

/// Starts the clients, spread over the tenants and, within each tenant, 14 of every 20 on
/// pgwire, 3 on Flight SQL and 3 on the Web-API; each starts within two seconds.
fn start_clients(
    options: &Options,
    tenants: &[Tenant],
    listeners: Listeners,
    tally: &Arc<Tally>,
    stop: &CancellationToken,
) -> (Vec<tokio::task::JoinHandle<()>>, [(Protocol, usize); 3]) {
    let mut per_protocol = Protocol::ALL.map(|protocol| (protocol, 0));
    let mut handles = Vec::new();
    for i in 0..options.connections {
        let protocol = match (i / tenants.len()) % 20 {
            0..14 => Protocol::Pgwire,
            14..17 => Protocol::FlightSql,
            _ => Protocol::Http,
        };
        if let Some((_, count)) = per_protocol.iter_mut().find(|(p, _)| *p == protocol) {
            *count += 1;
        }
        let mut mix = Mix::new(
            options.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
            options.think,
        );
        let delay = mix.up_to(Duration::from_secs(2));
        let client = Client {
            tenant: tenants[i % tenants.len()].clone(),
            mix,
            tally: Arc::clone(tally),
            stop: stop.clone(),
        };
        handles.push(tokio::spawn(async move {
            if !client.pause(delay).await {
                return;
            }
            match protocol {
                Protocol::Pgwire => pgwire::run(listeners.pg, client).await,
                Protocol::FlightSql => flight::run(listeners.flight, client).await,
                Protocol::Http => http::run(format!("http://{}", listeners.http), client).await,
            }
        }));
    }
    (handles, per_protocol)
}
