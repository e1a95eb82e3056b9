//! The gateway under test: demo data and configuration, and `tollgate serve` as a child.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{Catalog, TlsOptions, TollgateOptions};
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::metering::{ClientInfo, NoLedger, Protocol};
use tollgate_planner::{QueryContext, QueryService, QueryStream};

use crate::placement::Placement;

/// The projection every throughput measurement streams: 7 of lineitem's 16 columns.
pub const PROJECTION: &str =
    "l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_shipdate";

/// Data, configuration, certificates and an in-process engine over the same catalog.
pub struct Fixture {
    pub scale: f64,
    pub config: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
    /// What `config` holds, for variants of it (B4 adds tenants and switches isolation).
    pub options: TollgateOptions,
    pub service: Arc<QueryService>,
    /// Where each started gateway's output goes, one file per configuration.
    logs: PathBuf,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Generates (or reuses) the data and writes the server's configuration with TLS;
    /// started gateways write their output under `logs`.
    pub async fn prepare(scale: f64, logs: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(logs).map_err(|e| format!("{}: {e}", logs.display()))?;
        let data = std::env::var_os("TOLLGATE_BENCH_DATA").map_or_else(
            || std::env::temp_dir().join("tollgate-bench-data"),
            PathBuf::from,
        );
        std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
        let demo_config =
            tokio::task::spawn_blocking(move || tollgate_gateway::demo::prepare(&data, scale))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        let mut options = TollgateOptions::load(&demo_config).map_err(|e| e.to_string())?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| e.to_string())?;
        let (cert_pem, key_pem) = (certified.cert.pem(), certified.signing_key.serialize_pem());
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        std::fs::write(&cert, &cert_pem).map_err(|e| e.to_string())?;
        std::fs::write(&key, &key_pem).map_err(|e| e.to_string())?;
        options.pg.tls = Some(TlsOptions {
            cert,
            key,
            require: false,
        });
        // The benchmark's connect loop must not trip the login throttle or the connection limit.
        options.pg.max_connections = 10_000;
        options.usage.path = dir.path().join("usage.db");
        // Gateways run side by side (B5): each picks a free port for `/metrics`.
        if let Some(http) = &mut options.http {
            http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        }
        let config = dir.path().join("tollgate.toml");
        let text = toml::to_string(&options).map_err(|e| e.to_string())?;
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let catalog = Arc::new(Catalog::from_options(&options).map_err(|e| e.to_string())?);
        let service = Arc::new(
            // In-process runs are the baseline: no ledger behind them.
            QueryService::new(catalog, Arc::new(NoLedger))
                .await
                .map_err(|e| e.to_string())?,
        );
        Ok(Self {
            scale,
            config,
            cert_pem,
            key_pem,
            options,
            service,
            logs: logs.to_owned(),
            dir,
        })
    }

    /// Starts `SELECT <PROJECTION> FROM tpch.lineitem` in-process as acme.
    pub async fn lineitem_in_process(&self) -> Result<QueryStream, String> {
        let principal = self.service.principal("acme").ok_or("no principal acme")?;
        let session = self
            .service
            .session(&principal)
            .ok_or("no session for acme")?;
        let ctx = QueryContext::new(
            session,
            principal,
            CancellationToken::new(),
            Arc::new(ClientInfo::new(Protocol::Pgwire)),
        );
        let mut statements = self
            .service
            .parse(&ctx, &format!("SELECT {PROJECTION} FROM tpch.lineitem"))
            .map_err(|e| e.to_string())?;
        let planned = self
            .service
            .plan(&ctx, statements.remove(0))
            .await
            .map_err(|e| e.to_string())?;
        self.service
            .execute(&ctx, &planned, Vec::new())
            .await
            .map_err(|e| e.to_string())
    }

    /// Streams the in-process query to its end, handing each batch to `each`; returns the
    /// row count.
    pub async fn scan_in_process(&self, mut each: impl FnMut(&RecordBatch)) -> Result<u64, String> {
        let mut stream = self.lineitem_in_process().await?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| e.to_string())?;
            rows += batch.num_rows() as u64;
            each(&batch);
        }
        Ok(rows)
    }

    /// Writes `options` as `<name>.toml` beside the fixture's configuration; returns its path.
    pub fn write_config(&self, name: &str, options: &TollgateOptions) -> Result<PathBuf, String> {
        let path = self.dir.path().join(format!("{name}.toml"));
        let text = toml::to_string(options).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }

    /// Starts `tollgate serve` with this fixture's configuration, placed as asked.
    pub fn spawn_server(&self, placement: Placement) -> Result<Server, String> {
        self.spawn_server_with(&self.config, placement)
    }

    /// Starts `tollgate serve` with the configuration at `config`, placed as asked.
    pub fn spawn_server_with(&self, config: &Path, placement: Placement) -> Result<Server, String> {
        let binary = std::env::var_os("TOLLGATE_BIN").map_or_else(
            || std::env::current_exe().map(|exe| exe.with_file_name("tollgate")),
            |path| Ok(PathBuf::from(path)),
        );
        let binary = binary.map_err(|e| e.to_string())?;
        if !binary.exists() {
            return Err(format!(
                "{} not found: build it with `cargo build -p tollgate-gateway` (same profile) or set TOLLGATE_BIN",
                binary.display()
            ));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let flight_port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let flight_addr = SocketAddr::from(([127, 0, 0, 1], flight_port));
        let mut command = match placement.server_prefix().split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        let name = config.file_stem().map_or_else(
            || "tollgate".into(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        let log_path = self.logs.join(format!("gateway-{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log_too = log.try_clone().map_err(|e| e.to_string())?;
        let child = command
            .args(["serve", "--config"])
            .arg(config)
            .args(["--pg-listen", &addr.to_string()])
            .args(["--flight-listen", &flight_addr.to_string()])
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_too))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut server = Server {
            child,
            addr,
            flight_addr,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(addr).is_err()
            || std::net::TcpStream::connect(flight_addr).is_err()
        {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "the gateway ({}) exited before listening: {status}",
                    config.display()
                ));
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err("the gateway did not start listening".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }
}

/// A running `tollgate serve`, stopped when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub flight_addr: SocketAddr,
}

impl Server {
    /// A libpq connection string for demo user `user`.
    pub fn conninfo(&self, user: &str, tls: bool) -> String {
        let host = if tls { "localhost" } else { "127.0.0.1" };
        let sslmode = if tls { "require" } else { "disable" };
        format!(
            "host={host} port={} dbname=tollgate user={user} password={user} sslmode={sslmode}",
            self.addr.port()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
