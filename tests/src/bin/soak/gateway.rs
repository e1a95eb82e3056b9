//! The gateway under soak: `tollgate serve` as a child process (so its memory and file
//! descriptors are its own), stopped by SIGTERM as an orchestrator would, and its ledger
//! read back with `tollgate usage export`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::config::Listeners;

/// A running `tollgate serve`; killed if dropped before it exited.
pub struct Gateway {
    binary: PathBuf,
    config: PathBuf,
    child: Child,
}

impl Gateway {
    /// Starts `tollgate serve --config <config>` (output to `log`) and waits until every
    /// listener accepts connections.
    ///
    /// # Errors
    /// If the binary is missing, exits, or does not listen within two minutes.
    pub fn spawn(config: &Path, listeners: Listeners, log: &Path) -> Result<Self, String> {
        let binary = binary()?;
        let log = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let log_too = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&binary)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_too)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut gateway = Self {
            binary,
            config: config.to_owned(),
            child,
        };
        let started = Instant::now();
        for addr in [listeners.pg, listeners.flight, listeners.http] {
            while std::net::TcpStream::connect(addr).is_err() {
                if let Ok(Some(status)) = gateway.child.try_wait() {
                    return Err(format!("the gateway exited before listening: {status}"));
                }
                if started.elapsed() > Duration::from_secs(120) {
                    return Err(format!("the gateway does not listen on {addr}"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(gateway)
    }

    /// The process id, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process exited (it never should under load).
    ///
    /// # Errors
    /// Its exit status, when it exited.
    pub fn running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("the gateway exited under load: {status}")),
            Err(error) => Err(format!("the gateway's status: {error}")),
        }
    }

    /// Sends SIGTERM (the gateway drains, then exits) and waits up to `within` for the exit.
    ///
    /// # Errors
    /// If `kill` fails or the gateway still runs after `within`.
    pub async fn terminate(&mut self, within: Duration) -> Result<ExitStatus, String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        if !status.success() {
            return Err(format!("kill -TERM: {status}"));
        }
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("the gateway still runs {within:?} after SIGTERM"))
    }

    /// Every usage record of the ledger, as `tollgate usage export --format jsonl` writes
    /// them.
    ///
    /// # Errors
    /// If the export fails or writes something else than JSON lines.
    pub fn usage_export(&self) -> Result<Vec<serde_json::Value>, String> {
        let output = Command::new(&self.binary)
            .args(["usage", "export", "--format", "jsonl", "--config"])
            .arg(&self.config)
            .output()
            .map_err(|e| format!("tollgate usage export: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "tollgate usage export: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).map_err(|e| format!("a record: {e}: {line}")))
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `tollgate` binary: `TOLLGATE_BIN`, or beside this executable (same profile).
fn binary() -> Result<PathBuf, String> {
    let binary = match std::env::var_os("TOLLGATE_BIN") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("tollgate"),
    };
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build -p tollgate-gateway --bin tollgate` or set TOLLGATE_BIN",
            binary.display()
        ))
    }
}
