//! The HTTP listener: `GET /metrics` in Prometheus' text format.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::UsageMetrics;

/// A bound HTTP listener.
pub struct HttpServer {
    listener: TcpListener,
    metrics: Arc<UsageMetrics>,
}

impl HttpServer {
    /// Binds `listen`.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn bind(listen: SocketAddr, metrics: Arc<UsageMetrics>) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(listen).await?,
            metrics,
        })
    }

    /// The bound address.
    ///
    /// # Errors
    /// If the socket has none.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` fires.
    ///
    /// # Errors
    /// If accepting connections fails.
    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let router = Router::new()
            .route("/metrics", get(metrics))
            .with_state(self.metrics);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}

async fn metrics(State(metrics): State<Arc<UsageMetrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}
