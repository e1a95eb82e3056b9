//! The Flight SQL listener: bind (port 0 allowed), optional TLS (the gateway's acceptor,
//! whose certificate it may swap while serving), serve until shut down.

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{AuthOptions, FlightListenerOptions, LoginThrottle};
use tollgate_planner::QueryService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::error::FlightError;
use crate::service::{ListingFlightSql, TollgateFlightSql};
use crate::signing::Signer;
use crate::tls_accept;

/// A bound Flight SQL listener, ready to serve.
pub struct FlightServer {
    listener: TcpListener,
    service: TollgateFlightSql,
    tls: Option<TlsAcceptor>,
}

impl FlightServer {
    /// Binds the listener of `options` and prepares the service; with `tls` (an acceptor
    /// for `flight.tls` offering `h2`), it serves gRPC over TLS only.
    ///
    /// # Errors
    /// A bad signing key, an address that cannot be bound.
    pub async fn bind(
        options: &FlightListenerOptions,
        auth: &AuthOptions,
        service: Arc<QueryService>,
        tls: Option<TlsAcceptor>,
    ) -> Result<Self, FlightError> {
        let signer = Arc::new(Signer::new(options.signing_key.as_deref())?);
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
    /// If the server fails.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), FlightError> {
        let service = FlightServiceServer::new(ListingFlightSql::new(self.service));
        let router = Server::builder().add_service(service);
        match self.tls {
            None => {
                let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await?;
            }
            Some(acceptor) => {
                let ready =
                    tls_accept::handshakes(self.listener, acceptor, shutdown.clone(), "Flight SQL");
                let incoming = ReceiverStream::new(ready)
                    .map(|(stream, _peer)| Ok::<_, std::io::Error>(stream));
                router
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await?;
            }
        }
        Ok(())
    }
}
