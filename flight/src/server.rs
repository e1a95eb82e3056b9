//! The Flight SQL listener: bind (port 0 allowed), optional TLS, serve until shut down.

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{AuthOptions, FlightListenerOptions, LoginThrottle};
use tollgate_planner::QueryService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::error::FlightError;
use crate::service::{ListingFlightSql, TollgateFlightSql};
use crate::signing::Signer;

/// A bound Flight SQL listener, ready to serve.
pub struct FlightServer {
    listener: TcpListener,
    service: TollgateFlightSql,
    tls: Option<ServerTlsConfig>,
}

impl FlightServer {
    /// Binds the listener of `options` and prepares the service.
    ///
    /// # Errors
    /// A bad signing key, an address that cannot be bound, unreadable TLS files.
    pub async fn bind(
        options: &FlightListenerOptions,
        auth: &AuthOptions,
        service: Arc<QueryService>,
    ) -> Result<Self, FlightError> {
        let signer = Arc::new(Signer::new(options.signing_key.as_deref())?);
        let tls = options
            .tls
            .as_ref()
            .map(|tls| {
                let cert = std::fs::read(&tls.cert).map_err(|e| {
                    FlightError::Tls(format!("cannot read {}: {e}", tls.cert.display()))
                })?;
                let key = std::fs::read(&tls.key).map_err(|e| {
                    FlightError::Tls(format!("cannot read {}: {e}", tls.key.display()))
                })?;
                Ok::<_, FlightError>(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            })
            .transpose()?;
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| FlightError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let service = TollgateFlightSql::new(
            service,
            signer,
            LoginThrottle::new(auth),
            options.token_ttl.duration(),
            options.ticket_ttl.duration(),
        );
        Ok(Self {
            listener,
            service,
            tls,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// If the socket cannot report it.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` fires.
    ///
    /// # Errors
    /// If TLS cannot be configured or the server fails.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), FlightError> {
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder
                .tls_config(tls)
                .map_err(|e| FlightError::Tls(e.to_string()))?;
        }
        builder
            .add_service(FlightServiceServer::new(ListingFlightSql::new(
                self.service,
            )))
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await?;
        Ok(())
    }
}
