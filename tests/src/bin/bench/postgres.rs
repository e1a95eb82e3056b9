//! PostgreSQL on this machine as the reference: the same `lineitem` rows in the machine's
//! server (for throughput), and a private cluster with SCRAM and TLS (for connect time; the
//! machine's server trusts local connections, which would not be the same authentication).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio_postgres::NoTls;
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::gateway::{Fixture, PROJECTION};

/// The machine's PostgreSQL (trust authentication on loopback).
pub const MACHINE_POSTGRES: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// The table holding the projection at `scale`.
pub fn lineitem_table(scale: f64) -> String {
    format!(
        "tollgate_bench.lineitem_sf{}",
        scale.to_string().replace('.', "_")
    )
}

/// Loads the projection into the machine's PostgreSQL unless it is there already; returns
/// the row count.
pub async fn load_lineitem(fixture: &Fixture) -> Result<u64, String> {
    let (client, connection) = tokio_postgres::connect(MACHINE_POSTGRES, NoTls)
        .await
        .map_err(|e| format!("PostgreSQL at 127.0.0.1:5432: {e}"))?;
    tokio::spawn(connection);
    let expected = fixture.scan_in_process(|_| {}).await?;
    let table = lineitem_table(fixture.scale);
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS tollgate_bench")
        .await
        .map_err(|e| e.to_string())?;
    let present: i64 = match client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
    {
        Ok(row) => row.get(0),
        Err(_) => -1,
    };
    if u64::try_from(present).is_ok_and(|n| n == expected) {
        return Ok(expected);
    }
    eprintln!("bench: loading {expected} rows into PostgreSQL table {table}");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (l_orderkey bigint, l_partkey bigint, l_suppkey bigint, \
             l_linenumber integer, l_quantity numeric(15,2), l_extendedprice numeric(15,2), l_shipdate date)"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let sink = client
        .copy_in::<_, Bytes>(&format!("COPY {table} ({PROJECTION}) FROM STDIN"))
        .await
        .map_err(|e| e.to_string())?;
    let mut sink = Box::pin(sink);
    // Batch by batch from the engine to PostgreSQL, never the whole table in memory.
    let mut batches = fixture.lineitem_in_process().await?;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| e.to_string())?;
        sink.send(copy_text(&batch)?)
            .await
            .map_err(|e| e.to_string())?;
    }
    sink.as_mut().finish().await.map_err(|e| e.to_string())?;
    client
        .batch_execute(&format!("ANALYZE {table}"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(expected)
}

/// A batch in COPY text format (no value of the projection needs escaping).
fn copy_text(batch: &RecordBatch) -> Result<Bytes, String> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut text = String::with_capacity(batch.num_rows() * 64);
    for row in 0..batch.num_rows() {
        for (i, formatter) in formatters.iter().enumerate() {
            if i > 0 {
                text.push('\t');
            }
            text.push_str(&formatter.value(row).to_string());
        }
        text.push('\n');
    }
    Ok(Bytes::from(text))
}

/// A throw-away PostgreSQL cluster with SCRAM-SHA-256 and TLS on loopback.
pub struct PrivateCluster {
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// The superuser password of the private cluster.
pub const CLUSTER_PASSWORD: &str = "bench";

impl PrivateCluster {
    /// Initializes and starts the cluster with the fixture's certificate.
    pub async fn start(fixture: &Fixture) -> Result<Self, String> {
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
        std::fs::write(data.join("server.crt"), &fixture.cert_pem).map_err(|e| e.to_string())?;
        std::fs::write(data.join("server.key"), &fixture.key_pem).map_err(|e| e.to_string())?;
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
            _dir: dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err("the private PostgreSQL cluster did not start".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(cluster)
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
        let _ = command(&self.bin, "pg_ctl", self.as_postgres)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
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
