//! Start-up wiring: configuration ─▶ catalog ─▶ engine ─▶ listeners.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{Catalog, TollgateOptions};
use tollgate_planner::QueryService;

use crate::error::GatewayError;
use crate::pgwire::PgServer;

/// A started gateway: its bound addresses and a handle to stop it.
pub struct RunningGateway {
    pg_addr: SocketAddr,
    shutdown: CancellationToken,
    pg_task: JoinHandle<()>,
}

impl RunningGateway {
    /// Where the Postgres wire protocol listens.
    pub fn pg_addr(&self) -> SocketAddr {
        self.pg_addr
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
        let _ = self.pg_task.await;
    }
}

/// Validates `options`, opens every dataset, builds every tenant's session and binds the
/// listeners.
///
/// # Errors
/// Any configuration, source, grant, bind or TLS error, naming what is at fault.
pub async fn start(options: &TollgateOptions) -> Result<RunningGateway, GatewayError> {
    let catalog = Arc::new(Catalog::from_options(options)?);
    let service = Arc::new(QueryService::new(Arc::clone(&catalog)).await?);
    let pg = PgServer::bind(options, catalog, service).await?;
    let pg_addr = pg.local_addr()?;
    let shutdown = CancellationToken::new();
    let pg_task = tokio::spawn(pg.serve(shutdown.clone()));
    tracing::info!(%pg_addr, "Postgres wire protocol listening");
    Ok(RunningGateway {
        pg_addr,
        shutdown,
        pg_task,
    })
}
