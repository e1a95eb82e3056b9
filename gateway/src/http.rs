//! The HTTP listener: `GET /metrics` in Prometheus' text format, and the control API's
//! routes when the control plane is on.

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
    routes: Router,
}

impl HttpServer {
    /// Binds `listen` to serve `routes`.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn bind(listen: SocketAddr, routes: Router) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(listen).await?,
            routes,
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
        axum::serve(self.listener, self.routes)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
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
