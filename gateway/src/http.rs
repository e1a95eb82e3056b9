//! The HTTP listener: `GET /metrics` in Prometheus' text format, and the control API's
//! routes when the control plane is on; HTTPS when the listener has a certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tollgate_flight::tls_accept::{self, Handshaken};

use crate::metrics::UsageMetrics;

/// A bound HTTP listener.
pub struct HttpServer {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl HttpServer {
    /// Binds `listen`, to serve over TLS with `tls`.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn bind(listen: SocketAddr, tls: Option<TlsAcceptor>) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(listen).await?,
            tls,
        })
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The bound address.
    ///
    /// # Errors
    /// If the socket has none.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `routes` until `shutdown` fires.
    ///
    /// # Errors
    /// If accepting connections fails.
    pub async fn serve(self, routes: Router, shutdown: CancellationToken) -> std::io::Result<()> {
        let routes = routes.into_make_service_with_connect_info::<SocketAddr>();
        match self.tls {
            None => {
                axum::serve(self.listener, routes)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await
            }
            Some(acceptor) => {
                // Tapped, so the client's address reaches handlers as with plain TCP.
                let listener =
                    TlsListener::start(self.listener, acceptor, shutdown.clone())?.tap_io(|_| {});
                axum::serve(listener, routes)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await
            }
        }
    }
}

/// Connections whose TLS handshake is done ([`tls_accept::handshakes`]).
struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<Handshaken>,
}

impl TlsListener {
    fn start(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let ready = tls_accept::handshakes(listener, acceptor, shutdown, "HTTPS");
        Ok(Self { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The acceptor stopped (shutdown): no connection comes any more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The metrics route.
pub fn router(metrics: Arc<UsageMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .with_state(metrics)
}

async fn metrics_text(State(metrics): State<Arc<UsageMetrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn metrics_are_served_as_openmetrics_text() {
        let metrics = Arc::new(UsageMetrics::new());
        metrics.committed(3);
        let response = router(metrics)
            .oneshot(
                Request::get("/metrics")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(
            text.contains("tollgate_ledger_records_per_commit_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[tokio::test]
    async fn other_paths_are_not_found() {
        let response = router(Arc::new(UsageMetrics::new()))
            .oneshot(Request::get("/").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
