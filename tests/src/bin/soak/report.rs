//! What the soak prints: a line per sample while it runs (the gateway's RSS, descriptors
//! and CPU beside the outcomes so far), then the outcomes per protocol beside the ledger's
//! records, memory and descriptors before, under and after the load, latencies, and what
//! went wrong.

use std::time::Duration;

use crate::ledger::{OUTCOMES, Recorded};
use crate::log::LogFindings;
use crate::resources::{Flatness, Sample};
use crate::tally::{Counts, Outcome, Protocol, Snapshot};
use crate::workload::Shape;

/// The header of the lines [`progress`] prints.
pub const PROGRESS_HEADER: &str = "      t   RSS MiB    fds   CPU %   queries  completed  cancelled  timed out  refused  abandoned  unexpected";

/// One line while the soak runs: the sample (CPU since `previous`) and the outcomes so far.
pub fn progress(sample: &Sample, previous: &Sample, clients: &Snapshot) -> String {
    let all = clients.all();
    format!(
        "{:>6}s {:>9.1} {:>6} {:>7.0} {:>9} {:>10} {:>10} {:>10} {:>8} {:>10} {:>11}",
        sample.at.as_secs(),
        sample.rss_mib(),
        sample.fds,
        sample.cpu_since(previous),
        all.total(),
        all.get(Outcome::Completed),
        all.get(Outcome::Cancelled),
        all.get(Outcome::TimedOut),
        all.get(Outcome::Refused),
        all.get(Outcome::Abandoned),
        clients.unexpected_total(),
    )
}

/// What the summary is made of.
pub struct Summary<'a> {
    /// How long the load ran.
    pub load: Duration,
    /// Clients by protocol.
    pub clients: [(Protocol, usize); 3],
    /// The gateway before the load, idle.
    pub before: Sample,
    /// This process, the load generator, as the load started and as it stopped.
    pub generator: (Sample, Sample),
    /// The samples under load.
    pub samples: &'a [Sample],
    /// The gateway after the load, idle again.
    pub after: Sample,
    /// The flatness judgement.
    pub flatness: &'a Flatness,
    /// The clients' counts.
    pub counted: &'a Snapshot,
    /// The ledger's records.
    pub recorded: &'a Recorded,
    /// The gateway's warnings and errors.
    pub logged: &'a LogFindings,
}

impl Summary<'_> {
    /// The summary as text.
    pub fn render(&self) -> String {
        let mut lines = vec![
            format!(
                "soak: {} s of load; clients: {}",
                self.load.as_secs(),
                self.clients
                    .iter()
                    .map(|(protocol, count)| format!("{count} {}", protocol.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            String::new(),
            format!(
                "| protocol | queries | {} | records | {} |",
                Outcome::ALL.map(Outcome::name).join(" | "),
                OUTCOMES.map(|outcome| format!("\"{outcome}\"")).join(" | ")
            ),
            format!(
                "| --- |{}",
                " ---: |".repeat(2 + Outcome::ALL.len() + OUTCOMES.len())
            ),
        ];
        for protocol in Protocol::ALL {
            let counts = self.counted.protocol(protocol);
            lines.push(self.row(protocol.as_str(), &counts, Some(protocol)));
        }
        lines.push(self.row("all", &self.counted.all(), None));
        lines.push(String::new());
        lines.push(format!(
            "connections opened: {}; logins refused (max_connections, retried): {}",
            self.counted
                .connections
                .iter()
                .map(|(protocol, count)| format!("{count} {}", protocol.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            self.counted.login_refusals
        ));
        let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
        let window = |name: &str, window: Option<(u64, u64)>| match window {
            Some((rss, fds)) => format!("{name} median {:.1} MiB, {fds} fds", mib(rss)),
            None => format!("{name}: no samples (run too short to judge)"),
        };
        lines.push(format!(
            "gateway idle before: {:.1} MiB, {} fds; {}; {}; idle after: {:.1} MiB, {} fds",
            self.before.rss_mib(),
            self.before.fds,
            window("baseline (20–50 %)", self.flatness.baseline),
            window("final (75–100 %)", self.flatness.last),
            self.after.rss_mib(),
            self.after.fds,
        ));
        if let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) {
            lines.push(format!(
                "under load: first sample {:.1} MiB, {} fds; last {:.1} MiB, {} fds; peak {:.1} MiB; the gateway used {:.0} % of a core, the load generator {:.0} %",
                first.rss_mib(),
                first.fds,
                last.rss_mib(),
                last.fds,
                self.samples
                    .iter()
                    .map(Sample::rss_mib)
                    .fold(0.0, f64::max),
                last.cpu_since(&self.before),
                self.generator.1.cpu_since(&self.generator.0),
            ));
        }
        for shape in Shape::ALL {
            if let Some([p50, p99, max]) = self.counted.latency(shape) {
                lines.push(format!(
                    "completed {shape:?} queries took p50 {p50:.2?}, p99 {p99:.2?}, max {max:.2?}"
                ));
            }
        }
        for protocol in Protocol::ALL {
            if let Some([p50, p99, max]) = self.counted.cancel_latency(protocol) {
                lines.push(format!(
                    "cancel to 57014 over {}: p50 {p50:.2?}, p99 {p99:.2?}, max {max:.2?}",
                    protocol.as_str()
                ));
            }
        }
        for (title, found) in [
            ("unexpected errors:", &self.counted.unexpected),
            ("the gateway's log, warnings:", &self.logged.warnings),
            ("the gateway's log, errors and panics:", &self.logged.errors),
        ] {
            if !found.is_empty() {
                lines.push(String::new());
                lines.push(title.to_owned());
                for (what, count) in found {
                    lines.push(format!("  {count:>6} × {what}"));
                }
            }
        }
        lines.join("\n")
    }

    /// A row of the table: the clients' outcomes over `protocol` (every protocol for
    /// `None`) beside the ledger's records.
    fn row(&self, name: &str, counts: &Counts, protocol: Option<Protocol>) -> String {
        let outcomes: Vec<String> = Outcome::ALL
            .iter()
            .map(|outcome| counts.get(*outcome).to_string())
            .collect();
        let records: Vec<u64> = OUTCOMES
            .iter()
            .map(|outcome| self.recorded.outcome(protocol, outcome))
            .collect();
        format!(
            "| {name} | {} | {} | {} | {} |",
            counts.total(),
            outcomes.join(" | "),
            records.iter().sum::<u64>(),
            records
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" | ")
        )
    }
}
