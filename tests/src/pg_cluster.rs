//! A throw-away PostgreSQL cluster of the machine's server binaries, with SCRAM-SHA-256
//! and TLS on loopback: for tests and benchmarks that need authentication and TLS like a
//! managed database's (the machine's own server trusts local connections).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A throw-away PostgreSQL cluster with SCRAM-SHA-256 and TLS on loopback.
pub struct PrivateCluster {
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
    /// The cluster's directory (data, socket, log), removed with the cluster.
    dir: tempfile::TempDir,
}

/// The superuser password of the private cluster.
pub const CLUSTER_PASSWORD: &str = "bench";

impl PrivateCluster {
    /// Initializes and starts the cluster with a certificate and key (PEM) for `localhost`.
    pub fn start(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let bin = postgres_bin_dir()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, CLUSTER_PASSWORD).map_err(|e| e.to_string())?;
        // initdb refuses to run as root: run the cluster as the postgres user then.
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path()))?;
        }
        run(command(&bin, "initdb", as_postgres)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--pwfile",
            ])
            .arg(&password_file))?;
        std::fs::write(data.join("server.crt"), cert_pem).map_err(|e| e.to_string())?;
        std::fs::write(data.join("server.key"), key_pem).map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let settings = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = on\npassword_encryption = 'scram-sha-256'\n",
            dir.path().display()
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| e.to_string())?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path()))?;
        }
        run(Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key")))?;
        run(command(&bin, "pg_ctl", as_postgres)
            .arg("-D")
            .arg(&data)
            .args(["-w", "-l"])
            .arg(dir.path().join("log"))
            .arg("start"))?;
        let cluster = Self {
            data,
            bin,
            as_postgres,
            port,
            dir,
        };
        wait_for_port(port)?;
        Ok(cluster)
    }

    /// Stops the server (a fast shutdown: sessions are ended), keeping its data and port.
    ///
    /// # Errors
    /// If `pg_ctl` fails.
    pub fn stop(&self) -> Result<(), String> {
        run(command(&self.bin, "pg_ctl", self.as_postgres)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]))
    }

    /// Kills the server as a crash would (`pg_ctl stop -m immediate`: every process quits at
    /// once, connections are cut without a goodbye), keeping its data and port.
    ///
    /// # Errors
    /// If `pg_ctl` fails.
    pub fn kill(&self) -> Result<(), String> {
        run(command(&self.bin, "pg_ctl", self.as_postgres)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]))
    }

    /// Starts the server again after [`PrivateCluster::stop`], on the same port.
    ///
    /// # Errors
    /// If `pg_ctl` fails or the server does not listen within a minute.
    pub fn restart(&self) -> Result<(), String> {
        run(command(&self.bin, "pg_ctl", self.as_postgres)
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-l"])
            .arg(self.dir.path().join("log"))
            .arg("start"))?;
        wait_for_port(self.port)
    }

    /// Freezes the server as a hung host would (SIGSTOP to the postmaster, then to its
    /// children): connections stay open and nothing answers until [`PrivateCluster::resume`].
    ///
    /// # Errors
    /// If the postmaster's pid cannot be read or a signal cannot be sent.
    pub fn pause(&self) -> Result<(), String> {
        let pid = self.postmaster_pid()?;
        run(Command::new("kill").args(["-STOP", &pid]))?;
        // pkill exits 1 when the postmaster has no children; that is not a failure.
        let _ = Command::new("pkill").args(["-STOP", "-P", &pid]).output();
        Ok(())
    }

    /// Lets a server frozen by [`PrivateCluster::pause`] go on.
    ///
    /// # Errors
    /// If the postmaster's pid cannot be read or a signal cannot be sent.
    pub fn resume(&self) -> Result<(), String> {
        let pid = self.postmaster_pid()?;
        let _ = Command::new("pkill").args(["-CONT", "-P", &pid]).output();
        run(Command::new("kill").args(["-CONT", &pid]))
    }

    /// The first line of `postmaster.pid`.
    fn postmaster_pid(&self) -> Result<String, String> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .map_err(|e| format!("postmaster.pid: {e}"))?;
        text.lines()
            .next()
            .map(str::to_owned)
            .ok_or_else(|| "an empty postmaster.pid".to_owned())
    }

    /// A connection string with SCRAM, and TLS if asked.
    pub fn conninfo(&self, tls: bool) -> String {
        let host = if tls { "localhost" } else { "127.0.0.1" };
        let sslmode = if tls { "require" } else { "disable" };
        format!(
            "host={host} port={} user=postgres password={CLUSTER_PASSWORD} dbname=postgres sslmode={sslmode}",
            self.port
        )
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // A paused server would not hear the stop.
        let _ = self.resume();
        let _ = command(&self.bin, "pg_ctl", self.as_postgres)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Waits up to a minute for the cluster to listen on `port`.
fn wait_for_port(port: u16) -> Result<(), String> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the private PostgreSQL cluster did not start".to_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn postgres_bin_dir() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| {
            format!(
                "PostgreSQL server binaries not found under {}: {e}",
                root.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
