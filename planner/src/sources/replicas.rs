//! The replicas of a PostgreSQL source: a connection pool per replica, tried in order.
//!
//! A query takes a connection from the first replica not marked down. A replica whose pool
//! cannot connect, or whose connection breaks before the query's first row, is marked down
//! for [`DOWN_FOR`] and the next one is tried; when every replica fails, the query fails
//! with [`SourceFailure::ReplicasDown`]. A replica silent for longer than the source's read
//! timeout is taken as hung: its connection is dropped, not pooled, and it is marked down
//! too, whether the query moved to the next replica or failed.
//!
//! Connections and their I/O live on the network runtime: query executors have no I/O
//! driver. With `tls`, connections require TLS and verify the replica's certificate
//! (system roots plus the configured ones).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::runtime::Handle;
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tollgate_catalog::ReplicaTlsOptions;

use crate::sources::source_error::SourceFailure;

/// How long a failed replica is skipped before it is tried again.
const DOWN_FOR: Duration = Duration::from_secs(5);
/// Longest wait for a free connection of a replica whose pool is full.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// One source's replicas, in order of preference.
pub(crate) struct ReplicaSet {
    source: String,
    replicas: Vec<Replica>,
    read_timeout: Duration,
    io: Handle,
}

struct Replica {
    pool: Pool,
    down_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for ReplicaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaSet")
            .field("source", &self.source)
            .field("replicas", &self.replicas.len())
            .finish_non_exhaustive()
    }
}

impl ReplicaSet {
    /// Pools of at most `max_connections` to each replica, connecting within
    /// `connect_timeout`, reading with [`Self::read`] within `read_timeout`. Nothing
    /// connects yet.
    ///
    /// # Errors
    /// A message for a connection string that does not parse.
    pub fn new(
        source: &str,
        replicas: &[String],
        max_connections: usize,
        connect_timeout: Duration,
        read_timeout: Duration,
        tls: Option<&ReplicaTlsOptions>,
        io: Handle,
    ) -> Result<Self, String> {
        let tls = tls.map(tls_connector).transpose()?;
        let replicas = replicas
            .iter()
            .enumerate()
            .map(|(index, conninfo)| {
                let mut config: tokio_postgres::Config = conninfo
                    .parse()
                    .map_err(|e| format!("replica {index}: {e}"))?;
                config.connect_timeout(connect_timeout);
                if config.get_application_name().is_none() {
                    config.application_name("tollgate");
                }
                let recycling = ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                };
                let manager = match &tls {
                    Some(tls) => {
                        config.ssl_mode(SslMode::Require);
                        Manager::from_config(config, tls.clone(), recycling)
                    }
                    None => Manager::from_config(config, NoTls, recycling),
                };
                let pool = Pool::builder(manager)
                    .max_size(max_connections)
                    .runtime(Runtime::Tokio1)
                    .create_timeout(Some(connect_timeout))
                    .wait_timeout(Some(POOL_WAIT))
                    .build()
                    .map_err(|e| format!("replica {index}: {e}"))?;
                Ok(Replica {
                    pool,
                    down_until: Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            source: source.to_owned(),
            replicas,
            read_timeout,
            io,
        })
    }

    /// The runtime connections and their queries run on.
    pub fn io(&self) -> &Handle {
        &self.io
    }

    /// Waits for `answer` (a query's first row, the next row) from a replica for at most
    /// the read timeout.
    ///
    /// # Errors
    /// [`SourceFailure::Silent`] when the replica said nothing for that long. The caller
    /// drops the connection ([`Object::take`]): a hung one must not go back to the pool.
    pub async fn read<T>(&self, answer: impl Future<Output = T>) -> Result<T, SourceFailure> {
        tokio::time::timeout(self.read_timeout, answer)
            .await
            .map_err(|_| {
                SourceFailure::Silent(humantime::format_duration(self.read_timeout).to_string())
            })
    }

    /// Runs `work` with a connection of the first replica that answers. `work` returns
    /// `Err(true)` when the connection broke (or the replica went silent) before it produced
    /// anything, so the next replica may take over, or `Err(false)` for a failure retrying
    /// cannot mend.
    ///
    /// Must run on [`Self::io`].
    ///
    /// # Errors
    /// [`SourceFailure::ReplicasDown`] when every replica failed, or the failure `work`
    /// reported as final.
    pub async fn with_connection<T, W, F>(&self, mut work: W) -> Result<T, SourceFailure>
    where
        W: FnMut(Object) -> F,
        F: Future<Output = Result<T, (bool, SourceFailure)>>,
    {
        let now = Instant::now();
        // Replicas marked down go last rather than not at all: one may be back.
        let mut order: Vec<usize> = (0..self.replicas.len()).collect();
        order.sort_by_key(|&index| self.replicas[index].is_down(now));
        for index in order {
            let replica = &self.replicas[index];
            let connection = match replica.pool.get().await {
                Ok(connection) => connection,
                Err(error) => {
                    tracing::warn!(source = %self.source, replica = index, %error, "replica cannot be reached");
                    replica.mark_down();
                    continue;
                }
            };
            match work(connection).await {
                Ok(value) => {
                    replica.mark_up();
                    return Ok(value);
                }
                Err((true, failure)) => {
                    tracing::warn!(source = %self.source, replica = index, %failure, "replica connection broke or went silent; trying the next");
                    replica.mark_down();
                }
                Err((false, failure)) => {
                    if matches!(failure, SourceFailure::Silent(_)) {
                        tracing::warn!(source = %self.source, replica = index, "replica went silent in the middle of a query");
                        replica.mark_down();
                    }
                    return Err(failure);
                }
            }
        }
        Err(SourceFailure::ReplicasDown)
    }
}

/// TLS that verifies the replicas' certificates against the system's roots and the
/// configured ones.
fn tls_connector(options: &ReplicaTlsOptions) -> Result<MakeRustlsConnect, String> {
    let mut roots = RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as other clients do.
        let _ = roots.add(certificate);
    }
    if let Some(path) = &options.root_certificate {
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("root_certificate {}: {e}", path.display()))?;
        for certificate in certificates {
            let certificate =
                certificate.map_err(|e| format!("root_certificate {}: {e}", path.display()))?;
            roots
                .add(certificate)
                .map_err(|e| format!("root_certificate {}: {e}", path.display()))?;
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl Replica {
    fn is_down(&self, now: Instant) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|until| until > now)
    }

    fn mark_down(&self) {
        *self
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + DOWN_FOR);
    }

    fn mark_up(&self) {
        *self
            .down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}
