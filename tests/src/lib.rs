//! Shared set-up for Tollgate's end-to-end tests: demo data, gateways on port 0, clients.
//!
//! Every test starts its own gateway in-process on a free port, over the demo tenants and
//! TPC-H data at a small scale. The data is generated once per machine (atomically, so
//! parallel test processes can share it) under the system temp directory.

pub mod answers;
pub mod api;
pub mod cpu;
pub mod fuzzing;
pub mod machine_pg;
pub mod marked;
pub mod moto;
pub mod mqtt;
pub mod nats;
pub mod pg_cluster;
pub mod process;
pub mod push;
pub mod pytest;
pub mod query_gen;
pub mod raw;
pub mod reference_pg;
pub mod scram;
pub mod sharing;
pub mod small_disk;

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio_postgres::{Client, NoTls};
use tollgate_catalog::TollgateOptions;
use tollgate_gateway::server::{self, RunningGateway};

/// TPC-H scale of the test data: small enough to generate in a second, large enough to
/// span several row groups of `lineitem`.
pub const TEST_SCALE: f64 = 0.01;

/// Where test data is kept.
pub fn data_dir() -> PathBuf {
    std::env::temp_dir().join("tollgate-test-data")
}

/// Where test data at `scale` is kept: [`data_dir`] for [`TEST_SCALE`], a folder of its own
/// for any other scale.
fn data_dir_at(scale: f64) -> PathBuf {
    if scale == TEST_SCALE {
        data_dir()
    } else {
        std::env::temp_dir().join(format!("tollgate-test-data-{scale}"))
    }
}

/// The demo configuration at [`TEST_SCALE`], generated on first use, with every listener
/// on a free port and the usage ledger in `ledger_dir`.
pub fn demo_options(ledger_dir: &std::path::Path) -> TollgateOptions {
    demo_options_at(TEST_SCALE, ledger_dir)
}

/// The demo configuration at TPC-H scale `scale`, as [`demo_options`].
pub fn demo_options_at(scale: f64, ledger_dir: &std::path::Path) -> TollgateOptions {
    let dir = data_dir_at(scale);
    std::fs::create_dir_all(&dir).expect("create the test data directory");
    let config = tollgate_gateway::demo::prepare(&dir, scale).expect("prepare demo data");
    let mut options = TollgateOptions::load(&config).expect("load the demo configuration");
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    options.pg.listen = any_port;
    if let Some(flight) = &mut options.flight {
        flight.listen = any_port;
    }
    if let Some(http) = &mut options.http {
        http.listen = any_port;
    }
    options.usage.path = ledger_dir.join("usage.db");
    if let Some(control) = &mut options.control {
        control.path = ledger_dir.join("control.db");
    }
    options
}

/// A gateway started for one test.
pub struct TestGateway {
    running: Option<RunningGateway>,
    addr: SocketAddr,
    flight_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    /// Holds this gateway's SQLite usage ledger for as long as the gateway runs.
    _ledger_dir: tempfile::TempDir,
}

impl TestGateway {
    /// Starts the demo gateway on a free port.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the demo gateway after `adjust` changed its options.
    pub async fn start_with(adjust: impl FnOnce(&mut TollgateOptions)) -> Self {
        Self::start_at_scale(TEST_SCALE, adjust).await
    }

    /// Starts the demo gateway over TPC-H data at `scale` after `adjust` changed its options.
    pub async fn start_at_scale(scale: f64, adjust: impl FnOnce(&mut TollgateOptions)) -> Self {
        install_crypto_provider();
        let ledger_dir = tempfile::tempdir().expect("create a ledger directory");
        let mut options = demo_options_at(scale, ledger_dir.path());
        adjust(&mut options);
        let running = server::start(&options).await.expect("start the gateway");
        let addr = running.pg_addr();
        let flight_addr = running.flight_addr();
        let http_addr = running.http_addr();
        Self {
            running: Some(running),
            addr,
            flight_addr,
            http_addr,
            _ledger_dir: ledger_dir,
        }
    }

    /// The HTTP listener's address (`/metrics`).
    ///
    /// # Panics
    /// If the test turned the HTTP listener off.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
            .expect("the demo configuration starts the HTTP listener")
    }

    /// The Postgres wire protocol address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Arrow Flight SQL address (plain gRPC).
    ///
    /// # Panics
    /// If the test turned Flight SQL off.
    pub fn flight_addr(&self) -> SocketAddr {
        self.flight_addr
            .expect("the demo configuration starts Flight SQL")
    }

    /// A libpq connection string for `user` (whose demo password is its name).
    pub fn conninfo(&self, user: &str) -> String {
        format!(
            "host={} port={} dbname=tollgate user={user} password={user}",
            self.addr.ip(),
            self.addr.port()
        )
    }

    /// Connects as a demo tenant without TLS.
    pub async fn connect(&self, user: &str) -> Client {
        self.try_connect(&self.conninfo(user))
            .await
            .expect("connect")
    }

    /// Connects with a full connection string.
    pub async fn try_connect(&self, conninfo: &str) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The gateway's engine API, for tests that plan without a front end.
    ///
    /// # Panics
    /// After [`TestGateway::stop`].
    pub fn service(&self) -> &std::sync::Arc<tollgate_planner::QueryService> {
        self.running
            .as_ref()
            .expect("the gateway is running")
            .service()
    }

    /// Asserts that the gateway still logs a tenant in and answers a query.
    ///
    /// # Panics
    /// If it does not.
    pub async fn assert_serving(&self) {
        self.connect("acme")
            .await
            .simple_query("SELECT 1")
            .await
            .expect("the server keeps serving");
    }

    /// Stops the gateway.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

/// A self-signed certificate for `localhost`, written to a temporary directory.
pub struct TestCertificate {
    certified: rcgen::CertifiedKey<rcgen::KeyPair>,
    cert_path: PathBuf,
    key_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCertificate {
    /// Generates the certificate and its key, and installs the crypto provider.
    pub fn generate() -> Self {
        install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let cert_path = dir.path().join("server.crt");
        let key_path = dir.path().join("server.key");
        std::fs::write(&cert_path, certified.cert.pem()).expect("write cert");
        std::fs::write(&key_path, certified.signing_key.serialize_pem()).expect("write key");
        Self {
            certified,
            cert_path,
            key_path,
            _dir: dir,
        }
    }

    /// A listener's TLS options with this certificate.
    pub fn tls_options(&self, require: bool) -> tollgate_catalog::TlsOptions {
        tollgate_catalog::TlsOptions {
            cert: self.cert_path.clone(),
            key: self.key_path.clone(),
            require,
        }
    }

    /// The certificate in PEM, for clients to trust.
    pub fn cert_pem(&self) -> String {
        self.certified.cert.pem()
    }

    /// The private key in PEM, for servers of the tests' own (a private PostgreSQL cluster).
    pub fn key_pem(&self) -> String {
        self.certified.signing_key.serialize_pem()
    }

    /// Where the certificate's PEM file is.
    pub fn cert_path(&self) -> &std::path::Path {
        &self.cert_path
    }

    /// The certificate in DER, for rustls clients to trust.
    pub fn cert_der(&self) -> rustls::pki_types::CertificateDer<'static> {
        self.certified.cert.der().clone()
    }
}

/// Column `column` (an integer) of the caller's usage record of the query whose SQL text
/// contains `marker`, waiting up to 10 s for the record (the gateway runs with
/// `usage.record_sql_text`).
///
/// # Panics
/// If no such record appears.
pub async fn usage_of(client: &Client, column: &str, marker: &str) -> i64 {
    let started = std::time::Instant::now();
    let sql = format!(
        "SELECT {column} FROM tollgate.usage_records \
         WHERE strpos(sql_text, $1) > 0 AND strpos(sql_text, 'tollgate.usage') = 0"
    );
    loop {
        let rows = client.query(&sql, &[&marker]).await.expect("read usage");
        if let Some(row) = rows.first() {
            return row.get(0);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no usage record of {marker}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Asserts that `error` says a dataset's source failed: SQLSTATE 58000, a message naming
/// `dataset` and saying `what`, and none of `hidden` (where the source is).
///
/// # Panics
/// If it does not.
pub fn assert_dataset_unavailable(
    error: &tokio_postgres::Error,
    dataset: &str,
    what: &str,
    hidden: &[&str],
) {
    let text = message(error);
    assert_eq!(sqlstate(error), "58000", "{text}");
    assert!(text.contains(dataset) && text.contains(what), "{text}");
    for location in hidden {
        assert!(!text.contains(location), "{location} in: {text}");
    }
}

/// Installs rustls' ring provider once per process (tests build TLS configs directly).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The SQLSTATE of a failed statement, or a panic with the error if it has none.
pub fn sqlstate(error: &tokio_postgres::Error) -> String {
    match error.code() {
        Some(code) => code.code().to_owned(),
        None => panic!("error without SQLSTATE: {error:?}"),
    }
}

/// The server's message of a failed statement (tokio-postgres prints only "db error").
pub fn message(error: &tokio_postgres::Error) -> String {
    error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| error.to_string())
}
