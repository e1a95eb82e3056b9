//! Start-up wiring: configuration ─▶ catalog ─▶ engine ─▶ listeners.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{Catalog, TollgateOptions};
use tollgate_planner::QueryService;

use crate::audit;
use crate::error::GatewayError;
use crate::http::HttpServer;
use crate::ledger::{self, Ledger};
use crate::metrics::UsageMetrics;
use tollgate_flight::FlightServer;

use crate::pgwire::PgServer;

/// A started gateway: its bound addresses and a handle to stop it.
pub struct RunningGateway {
    pg_addr: SocketAddr,
    flight_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningGateway {
    /// Where the Postgres wire protocol listens.
    pub fn pg_addr(&self) -> SocketAddr {
        self.pg_addr
    }

    /// Where Arrow Flight SQL listens, if it is configured.
    pub fn flight_addr(&self) -> Option<SocketAddr> {
        self.flight_addr
    }

    /// Where the HTTP listener (`/metrics`) listens, if it is configured.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Runs until Ctrl-C or SIGTERM.
    ///
    /// # Errors
    /// If signal handlers cannot be installed.
    pub async fn run_until_signal(self) -> Result<(), GatewayError> {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
        self.stop().await;
        Ok(())
    }

    /// Stops accepting connections and waits for the listeners to close.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Validates `options`, opens every dataset, builds every tenant's session and binds the
/// listeners.
///
/// # Errors
/// Any configuration, source, grant, bind or TLS error, naming what is at fault.
pub async fn start(options: &TollgateOptions) -> Result<RunningGateway, GatewayError> {
    let catalog = Arc::new(Catalog::from_options(options)?);
    if let Some(path) = &options.usage.audit_log {
        audit::direct_to(path)?;
    }
    let metrics = Arc::new(UsageMetrics::new());
    let store = ledger::open_store(&options.usage).await?;
    let ledger = Arc::new(Ledger::start(store, Arc::clone(&metrics)));
    let service = Arc::new(QueryService::new(Arc::clone(&catalog), ledger).await?);
    let http = match &options.http {
        Some(http) => Some(
            HttpServer::bind(http.listen, metrics)
                .await
                .map_err(|source| GatewayError::Bind {
                    address: http.listen,
                    source,
                })?,
        ),
        None => None,
    };
    let flight = match &options.flight {
        Some(flight) => Some(
            FlightServer::bind(
                flight,
                &options.auth,
                Arc::clone(&catalog),
                Arc::clone(&service),
            )
            .await?,
        ),
        None => None,
    };
    let pg = PgServer::bind(options, catalog, service).await?;
    let pg_addr = pg.local_addr()?;
    let shutdown = CancellationToken::new();
    let mut tasks = vec![tokio::spawn(pg.serve(shutdown.clone()))];
    tracing::info!(%pg_addr, "Postgres wire protocol listening");
    let flight_addr = match flight {
        Some(flight) => {
            let addr = flight.local_addr()?;
            tasks.push(spawn_listener("Flight SQL", flight.serve(shutdown.clone())));
            tracing::info!(flight_addr = %addr, "Arrow Flight SQL listening");
            Some(addr)
        }
        None => None,
    };
    let http_addr = match http {
        Some(http) => {
            let addr = http.local_addr()?;
            tasks.push(spawn_listener("HTTP", http.serve(shutdown.clone())));
            tracing::info!(http_addr = %addr, "HTTP listening (/metrics)");
            Some(addr)
        }
        None => None,
    };
    Ok(RunningGateway {
        pg_addr,
        flight_addr,
        http_addr,
        shutdown,
        tasks,
    })
}

/// Runs a listener until it stops, logging why if it failed.
fn spawn_listener<E: std::fmt::Display>(
    name: &'static str,
    serve: impl Future<Output = Result<(), E>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = serve.await {
            tracing::error!(%error, "{name} listener failed");
        }
    })
}
