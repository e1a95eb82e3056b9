//! The `tollgate` binary as a separate process, for tests that must kill it or run its
//! other commands (`usage export`).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tollgate_catalog::TollgateOptions;

/// The `tollgate` binary of this build: next to the test executable's directory, or
/// `TOLLGATE_BIN`.
///
/// # Panics
/// If it is not there (build it with `cargo build -p tollgate-gateway`).
pub fn binary() -> PathBuf {
    let binary = std::env::var_os("TOLLGATE_BIN").map_or_else(
        || {
            let exe = std::env::current_exe().expect("the test executable");
            // target/<profile>/deps/<test> ─▶ target/<profile>/tollgate
            exe.parent()
                .and_then(Path::parent)
                .map(|dir| dir.join("tollgate"))
                .expect("the target directory")
        },
        PathBuf::from,
    );
    assert!(
        binary.exists(),
        "{} not found: build it with `cargo build -p tollgate-gateway` or set TOLLGATE_BIN",
        binary.display()
    );
    binary
}

/// Runs `tollgate <args>` to its end.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .output()
        .expect("run tollgate")
}

/// Every record `tollgate usage export --config <config> <extra>` writes as JSON lines.
///
/// # Panics
/// If the export fails.
pub fn usage_export(config: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let config = config.to_str().expect("utf-8 path");
    let mut args = vec!["usage", "export", "--config", config, "--format", "jsonl"];
    args.extend_from_slice(extra);
    let output = run(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect()
}

/// Writes `options` as a configuration file in `dir`.
pub fn write_config(dir: &Path, options: &TollgateOptions) -> PathBuf {
    let path = dir.join("tollgate.toml");
    std::fs::write(
        &path,
        toml::to_string(options).expect("encode the configuration"),
    )
    .expect("write the configuration");
    path
}

/// Starts `program -c <config>` (a server of the machine's), its log in `log`, and waits
/// until it accepts connections on `addr`.
///
/// # Panics
/// If it cannot be started or does not listen within 20 seconds.
pub fn start_server(program: &str, config: &Path, log: &Path, addr: SocketAddr) -> Child {
    let log = std::fs::File::create(log).expect("the server's log");
    let child = Command::new(program)
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{program} did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A loopback address whose port was free a moment ago.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// A running `tollgate serve`; killed (SIGKILL) when dropped.
pub struct GatewayProcess {
    child: Child,
    pg_addr: SocketAddr,
    flight_addr: SocketAddr,
}

impl GatewayProcess {
    /// Starts `tollgate serve --config <config>` on free ports and waits until both
    /// listeners accept connections. Its log goes to `log`.
    ///
    /// # Panics
    /// If it exits or does not listen within a minute.
    pub fn spawn(config: &Path, log: &Path) -> Self {
        let (pg_addr, flight_addr) = (free_port(), free_port());
        let log = std::fs::File::create(log).expect("create the gateway's log");
        let child = Command::new(binary())
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--pg-listen")
            .arg(pg_addr.to_string())
            .arg("--flight-listen")
            .arg(flight_addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tollgate serve");
        let mut process = Self {
            child,
            pg_addr,
            flight_addr,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(pg_addr).is_err()
            || std::net::TcpStream::connect(flight_addr).is_err()
        {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("tollgate serve exited before listening: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "tollgate serve did not listen within a minute"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        process
    }

    /// The Postgres wire protocol address.
    pub fn pg_addr(&self) -> SocketAddr {
        self.pg_addr
    }

    /// The Flight SQL address.
    pub fn flight_addr(&self) -> SocketAddr {
        self.flight_addr
    }

    /// A libpq connection string for demo user `user` (password = user name).
    pub fn conninfo(&self, user: &str) -> String {
        format!(
            "host={} port={} dbname=tollgate user={user} password={user}",
            self.pg_addr.ip(),
            self.pg_addr.port()
        )
    }

    /// The most memory the process has held so far (its peak resident set, `VmHWM`).
    ///
    /// # Panics
    /// If `/proc` does not tell.
    pub fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kib * 1024
    }

    /// Sends SIGTERM, as an orchestrator stopping it would.
    ///
    /// # Panics
    /// If `kill` cannot be run.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM: {status}");
    }

    /// Sends SIGHUP: the gateway reads its configuration file and certificates again.
    ///
    /// # Panics
    /// If `kill` cannot be run.
    pub fn reload(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP: {status}");
    }

    /// Waits up to `within` for the process to exit; its status, or `None` if it still
    /// runs.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
