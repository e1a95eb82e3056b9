//! CPU placement: unpinned, or gateway on core 0 and load generator on core 1 (`taskset`).

use std::process::Command;

/// Where the gateway and this process run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The scheduler decides.
    Unpinned,
    /// Gateway (and the in-process engine) on core 0, load generator on core 1.
    Pinned,
}

impl Placement {
    /// The placements to measure: both, unless the machine has a single core or this is a
    /// smoke run.
    pub fn all(smoke: bool) -> Vec<Self> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if smoke || cores < 2 || Command::new("taskset").arg("--version").output().is_err() {
            vec![Self::Unpinned]
        } else {
            vec![Self::Unpinned, Self::Pinned]
        }
    }

    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unpinned => "unpinned",
            Self::Pinned => "pinned",
        }
    }

    /// The command prefix that places the gateway process.
    pub fn server_prefix(self) -> Vec<String> {
        match self {
            Self::Unpinned => Vec::new(),
            Self::Pinned => vec!["taskset".to_owned(), "-c".to_owned(), "0".to_owned()],
        }
    }

    /// Moves this process to the load generator's core.
    pub fn pin_load_generator(self) -> Result<(), String> {
        match self {
            Self::Unpinned => Ok(()),
            Self::Pinned => pin_self("1"),
        }
    }

    /// Moves this process to the gateway's core (for the in-process baseline).
    pub fn pin_server_side(self) -> Result<(), String> {
        match self {
            Self::Unpinned => Ok(()),
            Self::Pinned => pin_self("0"),
        }
    }

    /// Lets this process run anywhere again.
    pub fn unpin_self() -> Result<(), String> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        if cores < 2 {
            return Ok(());
        }
        pin_self(&format!("0-{}", cores - 1))
    }
}

/// Sets the affinity of every thread of this process.
fn pin_self(cores: &str) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &std::process::id().to_string()])
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    if status.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset failed: {}",
            String::from_utf8_lossy(&status.stderr)
        ))
    }
}
