//! The Postgres wire protocol front end (pgwire).
//!
//! ```text
//! TcpListener ── accept (TCP_NODELAY, connection limit) ── process_socket (TLS negotiation)
//!    └─ per connection: frames checked for the phase (framing) ─▶ TollgateStartupHandler
//!       (SCRAM) ─▶ TollgateQueryHandler (simple and extended protocol) ─▶ QueryService
//!       ─▶ rows encoded from Arrow as the client reads
//! ```
//!
//! The per-connection loop is ours ([`message_loop`]), not pgwire's `process_socket`: it
//! checks every frame's type and length before pgwire decodes it, and closes right after a
//! FATAL.
//!
//! Built on `pgwire` 0.42, whose authentication keeps per-connection state per connection.
//! `datafusion-postgres` and its `arrow-pg` encoder pin pgwire 0.41 (two copies do not
//! interoperate), so Arrow→wire encoding is this crate's own ([`encode`]) and only the
//! catalog tables of `datafusion-pg-catalog` are used, in the planner.

mod auth;
mod connection;
mod copy;
mod cursors;
pub mod encode;
pub mod errors;
mod framing;
mod handler;
mod message_fields;
mod message_loop;
mod params;
mod peer;
mod prepare;
mod session_statements;
mod settings;
mod transaction_block;

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use pgwire::api::auth::StartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ClientInfo, ErrorHandler, PgWireServerHandlers};
use pgwire::error::PgWireError;
use pgwire::messages::cancel::CancelRequest;
use pgwire::tokio::TlsAcceptor;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{ByteSize, Principal, TollgateOptions};
use tollgate_planner::QueryService;

use crate::error::GatewayError;
use crate::tls::{CertificateFiles, ListenerCertificate};
use auth::TollgateStartupHandler;
use connection::{CancelRegistry, ConnectionState};
use handler::TollgateQueryHandler;
use tollgate_catalog::LoginThrottle;

/// What every connection of a listener shares.
pub struct PgShared {
    /// The database name clients must ask for.
    database: String,
    service: Arc<QueryService>,
    throttle: LoginThrottle,
    /// Replaced with the certificate (channel binding hashes it).
    scram: RwLock<Arc<ScramAuth<Arc<Principal>>>>,
    require_tls: bool,
    max_query_size: ByteSize,
    cancels: Arc<CancelRegistry>,
}

/// A bound Postgres wire protocol listener.
pub struct PgServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<PgShared>,
    slots: Arc<Semaphore>,
}

impl PgServer {
    /// Binds the listener configured in `options`, presenting `certificate` to clients that
    /// ask for TLS (`pg.tls`).
    ///
    /// # Errors
    /// [`GatewayError::Bind`] if the address is taken, [`GatewayError::Tls`] if the
    /// certificate cannot serve for channel binding.
    pub async fn bind(
        options: &TollgateOptions,
        service: Arc<QueryService>,
        certificate: Option<&Arc<ListenerCertificate>>,
    ) -> Result<Self, GatewayError> {
        let pg = &options.pg;
        let tls = certificate
            .map(|certificate| certificate.acceptor(&[]))
            .transpose()?;
        let pem = certificate.map(|certificate| certificate.current());
        let scram = auth::scram_mechanism(Arc::clone(&service), pem.as_ref().map(|c| c.pem()))
            .map_err(GatewayError::Tls)?;
        let listener = TcpListener::bind(pg.listen)
            .await
            .map_err(|source| GatewayError::Bind {
                address: pg.listen,
                source,
            })?;
        let shared = PgShared {
            database: options.database.clone(),
            service,
            throttle: LoginThrottle::new(&options.auth),
            scram: RwLock::new(scram),
            require_tls: pg.tls.as_ref().is_some_and(|t| t.require),
            max_query_size: pg.max_query_size,
            cancels: Arc::new(CancelRegistry::default()),
        };
        Ok(Self {
            listener,
            tls,
            shared: Arc::new(shared),
            slots: Arc::new(Semaphore::new(pg.max_connections)),
        })
    }

    /// What replaces the certificate while the listener serves, if it has TLS.
    pub fn certificate(
        &self,
        certificate: Option<&Arc<ListenerCertificate>>,
    ) -> Option<PgCertificate> {
        certificate.map(|certificate| PgCertificate {
            certificate: Arc::clone(certificate),
            shared: Arc::clone(&self.shared),
        })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// If the socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown` fires; then every session gets FATAL 57P01, and
    /// the listener ends once they closed (within [`CLOSE_WAIT`]).
    pub async fn serve(self, shutdown: CancellationToken) {
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (socket, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            };
            let permit = Arc::clone(&self.slots).try_acquire_owned().ok();
            let connection = Arc::new(ConnectionState::new(
                Arc::clone(&self.shared.cancels),
                permit,
            ));
            let handlers =
                ConnectionHandlers::new(Arc::clone(&self.shared), Arc::clone(&connection));
            let tls = self.tls.clone();
            let max_sql = usize::try_from(self.shared.max_query_size.bytes()).unwrap_or(usize::MAX);
            let closing = shutdown.clone();
            connections.spawn(async move {
                if !plausible_first_packet(&socket).await {
                    tracing::debug!(%peer, "invalid length of startup packet; connection closed");
                    return;
                }
                let served = message_loop::process_socket(
                    socket, tls, handlers, connection, max_sql, closing,
                );
                if let Err(error) = served.await {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
            });
        }
        drop(self.listener);
        let closed = tokio::time::timeout(CLOSE_WAIT, async {
            while connections.join_next().await.is_some() {}
        });
        if closed.await.is_err() {
            tracing::warn!(
                open = connections.len(),
                "connections still open at shutdown are dropped"
            );
        }
    }
}

/// Whether the first packet can be a startup, SSL or cancel request: PostgreSQL closes at
/// once on a length below 8 or above 10,000 bytes, where pgwire would wait for the rest until
/// its start-up timeout. A TLS ClientHello (direct TLS negotiation) passes through.
async fn plausible_first_packet(socket: &TcpStream) -> bool {
    const TLS_HANDSHAKE: u8 = 0x16;
    let mut header = [0u8; 4];
    let peeked = tokio::time::timeout(FIRST_PACKET_WAIT, async {
        loop {
            match socket.peek(&mut header).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n >= header.len() || header[0] == TLS_HANDSHAKE => return true,
                // Peeking shows the same few bytes after the client closed: its end of file
                // is seen in the socket's readiness.
                Ok(_)
                    if socket
                        .ready(Interest::READABLE)
                        .await
                        .is_ok_and(|ready| ready.is_read_closed()) =>
                {
                    return false;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await;
    match peeked {
        Ok(true) if header[0] == TLS_HANDSHAKE => true,
        Ok(true) => (8..=10_000).contains(&i32::from_be_bytes(header)),
        _ => false,
    }
}

/// The Postgres listener's certificate: what clients' handshakes get and what SCRAM
/// channel binding (`SCRAM-SHA-256-PLUS`) hashes.
pub struct PgCertificate {
    certificate: Arc<ListenerCertificate>,
    shared: Arc<PgShared>,
}

impl PgCertificate {
    /// Checks that `files` can serve, and returns what installs them.
    ///
    /// # Errors
    /// [`GatewayError::Tls`] if channel binding cannot use the certificate.
    pub fn prepare(&self, files: CertificateFiles) -> Result<PgCertificateSwap, GatewayError> {
        let scram = auth::scram_mechanism(Arc::clone(&self.shared.service), Some(files.pem()))
            .map_err(GatewayError::Tls)?;
        Ok(PgCertificateSwap {
            certificate: Arc::clone(&self.certificate),
            shared: Arc::clone(&self.shared),
            files,
            scram,
        })
    }
}

/// A checked certificate of the Postgres listener, ready to be presented.
pub struct PgCertificateSwap {
    certificate: Arc<ListenerCertificate>,
    shared: Arc<PgShared>,
    files: CertificateFiles,
    scram: Arc<ScramAuth<Arc<Principal>>>,
}

impl PgCertificateSwap {
    /// Presents the certificate from the next handshake and login on.
    pub fn install(self) {
        *self
            .shared
            .scram
            .write()
            .unwrap_or_else(PoisonError::into_inner) = self.scram;
        self.certificate.replace(self.files);
    }
}

/// How long a client may take to send the first four bytes.
const FIRST_PACKET_WAIT: Duration = Duration::from_secs(60);

/// How long sessions have to take their FATAL and close when the gateway shuts down.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The handlers of one connection; pgwire asks for them once per connection.
struct ConnectionHandlers {
    startup: Arc<TollgateStartupHandler>,
    query: Arc<TollgateQueryHandler>,
    cancel: Arc<RegistryCancelHandler>,
}

impl ConnectionHandlers {
    fn new(shared: Arc<PgShared>, connection: Arc<ConnectionState>) -> Self {
        Self {
            startup: Arc::new(TollgateStartupHandler::new(
                Arc::clone(&shared),
                Arc::clone(&connection),
            )),
            query: Arc::new(TollgateQueryHandler::new(Arc::clone(&shared), connection)),
            cancel: Arc::new(RegistryCancelHandler {
                cancels: Arc::clone(&shared.cancels),
            }),
        }
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(PostgresErrorCodes)
    }

    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.query)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.query)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// Rewrites pgwire's own errors where PostgreSQL uses another SQLSTATE.
struct PostgresErrorCodes;

impl ErrorHandler for PostgresErrorCodes {
    fn on_error<C: ClientInfo>(&self, _client: &C, error: &mut PgWireError) {
        if let PgWireError::PortalNotFound(name) = error {
            *error = errors::user_error("34000", format!("portal \"{name}\" does not exist"));
        }
    }
}

/// Routes CancelRequests to the connection they name.
struct RegistryCancelHandler {
    cancels: Arc<CancelRegistry>,
}

#[async_trait]
impl CancelHandler for RegistryCancelHandler {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.cancels
            .cancel(&(request.pid, request.secret_key.to_bytes().to_vec()));
    }
}
