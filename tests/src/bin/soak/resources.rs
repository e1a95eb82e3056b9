//! The gateway's resident memory and open file descriptors, read from `/proc`, and whether
//! they stayed flat once warmed up.
//!
//! The criterion, over samples taken every [`EVERY`] under load:
//!
//! ```text
//! 0 ── warm-up ── 20 % ── baseline ── 50 % ─────── 75 % ── final ── 100 %
//! RSS:  median(final) ≤ 1.2 × median(baseline)
//! fds:  median(final) ≤ median(baseline) + max(16, 10 %)
//! ```
//!
//! Medians, so that one sample taken while a burst of long queries held memory does not
//! decide; the baseline is taken after warm-up so that caches, the allocator's arenas and
//! every tenant's executor threads exist in both. Separately, once the load stopped and
//! every client disconnected, the descriptors must be back within [`IDLE_FDS`] of the count
//! before the load: a leak of sockets or files shows there even when it is slow.

use std::time::Duration;

/// How often the gateway is sampled under load.
pub const EVERY: Duration = Duration::from_secs(10);

/// Descriptors the idle gateway may hold after the load beyond those it held before it.
pub const IDLE_FDS: u64 = 8;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux ABI).
const CLOCK_TICKS: u64 = 100;

/// One reading of the gateway's process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Time since the load started.
    pub at: Duration,
    /// Resident set size (`VmRSS`), in bytes.
    pub rss: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// CPU time used since the process started (user and system).
    pub cpu: Duration,
}

impl Sample {
    /// Reads process `pid` now; `at` is the time since the load started.
    ///
    /// # Errors
    /// If `/proc` cannot be read (the process is gone).
    pub fn read(pid: u32, at: Duration) -> Result<Self, String> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
            .count() as u64;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let ticks: u64 = stat
            .rsplit_once(')')
            .map(|(_, fields)| fields.split_whitespace().skip(11).take(2))
            .into_iter()
            .flatten()
            .filter_map(|field| field.parse::<u64>().ok())
            .sum();
        Ok(Self {
            at,
            rss: kib * 1024,
            fds,
            cpu: Duration::from_millis(ticks * 1000 / CLOCK_TICKS),
        })
    }

    /// The share of one core the process used between `earlier` and this sample, in percent.
    pub fn cpu_since(&self, earlier: &Sample) -> f64 {
        let wall = self.at.saturating_sub(earlier.at).as_secs_f64();
        if wall == 0.0 {
            return 0.0;
        }
        self.cpu.saturating_sub(earlier.cpu).as_secs_f64() / wall * 100.0
    }

    /// Resident memory in MiB, for tables.
    pub fn rss_mib(&self) -> f64 {
        self.rss as f64 / f64::from(1 << 20)
    }
}

/// The flatness judgement of a run's samples.
#[derive(Debug)]
pub struct Flatness {
    /// Median RSS and fds of the baseline window, if it had samples.
    pub baseline: Option<(u64, u64)>,
    /// Median RSS and fds of the final window, if it had samples.
    pub last: Option<(u64, u64)>,
    /// What was not flat.
    pub failures: Vec<String>,
}

/// Judges `samples` of a load that lasted `run`.
pub fn judge(samples: &[Sample], run: Duration) -> Flatness {
    let window = |from: f64, to: f64| -> Option<(u64, u64)> {
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= run.mul_f64(from) && s.at < run.mul_f64(to))
            .collect();
        let rss = median(inside.iter().map(|s| s.rss).collect())?;
        let fds = median(inside.iter().map(|s| s.fds).collect())?;
        Some((rss, fds))
    };
    let baseline = window(0.2, 0.5);
    // Up to and including the end: the last sample is taken as the load stops.
    let last = window(0.75, 1.01);
    let mut failures = Vec::new();
    if let (Some((rss_b, fds_b)), Some((rss_l, fds_l))) = (baseline, last) {
        if rss_l as f64 > rss_b as f64 * 1.2 {
            failures.push(format!(
                "RSS grew from {:.1} MiB to {:.1} MiB (more than 20 %)",
                rss_b as f64 / f64::from(1 << 20),
                rss_l as f64 / f64::from(1 << 20)
            ));
        }
        let slack = (fds_b / 10).max(16);
        if fds_l > fds_b + slack {
            failures.push(format!(
                "open file descriptors grew from {fds_b} to {fds_l} (more than {slack})"
            ));
        }
    }
    Flatness {
        baseline,
        last,
        failures,
    }
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: &[u64]) -> Vec<Sample> {
        rss.iter()
            .enumerate()
            .map(|(i, rss)| Sample {
                at: EVERY * (i as u32 + 1),
                rss: rss << 20,
                fds: 200,
                cpu: Duration::ZERO,
            })
            .collect()
    }

    #[test]
    fn growth_past_a_fifth_fails_and_noise_passes() {
        let run = EVERY * 10;
        let flat = judge(
            &samples(&[50, 90, 100, 104, 98, 101, 103, 99, 102, 105]),
            run,
        );
        assert!(flat.failures.is_empty(), "{flat:?}");
        let growing = judge(
            &samples(&[50, 90, 100, 105, 110, 115, 120, 125, 130, 135]),
            run,
        );
        assert_eq!(growing.failures.len(), 1, "{growing:?}");
    }
}
