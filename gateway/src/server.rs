//! Start-up wiring: configuration ─▶ catalog ─▶ engine ─▶ listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::store::ControlStore;
use tollgate_catalog::{Catalog, TollgateOptions};
use tollgate_planner::QueryService;

use crate::audit;
use crate::console;
use crate::control::api;
use crate::control::{CatalogSync, ControlPlane, Endpoints, Listeners};
use crate::error::GatewayError;
use crate::http::{self, HttpServer};
use crate::ledger::{self, Ledger};
use crate::metrics::UsageMetrics;
use tollgate_flight::FlightServer;

use crate::pgwire::PgServer;
use crate::push::PushBrokers;
use crate::reload::{Certificates, ConfigFile, Reloaded, Reloader};
use crate::sharing::store::DeliveryStore;
use crate::sharing::{self, SharingApi};
use crate::tls::ListenerCertificates;
use crate::webapi::{self, WebApi};

/// A started gateway: its bound addresses and a handle to stop it.
pub struct RunningGateway {
    pg_addr: SocketAddr,
    flight_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    service: Arc<QueryService>,
    ledger: Arc<Ledger>,
    drain_grace: Duration,
    reloader: Reloader,
}

/// How long statements stopped at the end of a drain may take to end and be recorded.
const STOPPED_QUERIES_WAIT: Duration = Duration::from_secs(10);

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

    /// The engine API the listeners share.
    pub fn service(&self) -> &Arc<QueryService> {
        &self.service
    }

    /// Runs until Ctrl-C or SIGTERM, then drains ([`RunningGateway::drain`]) and stops. On
    /// SIGHUP it reads `config` again and serves it ([`RunningGateway::reload`]).
    ///
    /// # Errors
    /// If signal handlers cannot be installed.
    pub async fn run_until_signal(self, config: ConfigFile) -> Result<(), GatewayError> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                result = tokio::signal::ctrl_c() => {
                    result?;
                    break;
                }
                _ = terminate.recv() => break,
                _ = hangup.recv() => self.reload_file(&config).await,
            }
        }
        self.drain().await;
        self.stop().await;
        Ok(())
    }

    /// Reads `config` again and serves it, logging what changed or why nothing did.
    async fn reload_file(&self, config: &ConfigFile) {
        let path = config.path().display().to_string();
        let reloaded = match config.read() {
            Ok(options) => self.reload(options).await,
            Err(error) => Err(error),
        };
        match reloaded {
            Ok(reloaded) => {
                for (session, error) in &reloaded.not_served {
                    tracing::warn!(%session, %error, "not served: its session does not build");
                }
                if !reloaded.need_restart.is_empty() {
                    tracing::warn!(
                        sections = ?reloaded.need_restart,
                        "these sections changed but are read only at start-up: their old values stay until a restart"
                    );
                }
                tracing::info!(
                    %path,
                    certificates = ?reloaded.certificates,
                    "configuration reloaded"
                );
            }
            Err(error) => tracing::error!(
                %path,
                %error,
                "configuration not reloaded: the one in use is kept"
            ),
        }
    }

    /// Serves `options` from now on, once all of it checks out: certificates read again,
    /// the catalog applied to the live sessions (their connections stay open).
    ///
    /// # Errors
    /// As [`Reloader::reload`]; nothing changed then.
    pub async fn reload(&self, options: TollgateOptions) -> Result<Reloaded, GatewayError> {
        self.reloader.reload(options).await
    }

    /// Shuts down gracefully: new logins are refused (57P03) and new statements too
    /// (57P01) while running statements go on for up to `engine.drain_grace`; those still
    /// running then are stopped (57P01, recorded as cancelled); then every usage record is
    /// written.
    pub async fn drain(&self) {
        self.service.begin_drain();
        let running = self.service.running_queries();
        tracing::info!(running, grace = ?self.drain_grace, "shutting down: draining");
        if !self.until_idle(self.drain_grace).await {
            let running = self.service.running_queries();
            tracing::warn!(
                running,
                "the drain's grace period ended: stopping what still runs"
            );
            self.service.stop_running();
            self.until_idle(STOPPED_QUERIES_WAIT).await;
        }
        if !self.ledger.settle(STOPPED_QUERIES_WAIT).await {
            tracing::error!("usage records still unwritten at shutdown");
        }
        tracing::info!("drained");
    }

    /// Waits until no statement runs, for at most `within`; whether none does.
    async fn until_idle(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.service.running_queries() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
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
    // With a control plane, the catalog is the configuration with the state store's.
    let control = match &options.control {
        Some(control) if options.http.is_none() => {
            let _ = control;
            return Err(GatewayError::ControlWithoutHttp);
        }
        Some(control) => {
            let store = Arc::new(ControlStore::open(control).await?);
            let (catalog, state, version) = CatalogSync::current_catalog(&store, options).await?;
            Some((control, store, catalog?, state, version))
        }
        None => None,
    };
    let catalog = Arc::new(match &control {
        Some((_, _, catalog, _, _)) => catalog.clone(),
        None => Catalog::from_options(options)?,
    });
    let certificates = ListenerCertificates::read(options)?;
    if let Some(path) = &options.usage.audit_log {
        audit::direct_to(path)?;
    }
    let metrics = Arc::new(UsageMetrics::new());
    let store = ledger::open_store(&options.usage).await?;
    let ledger = Arc::new(Ledger::start(store, Arc::clone(&metrics)));
    let record_keeper = Arc::clone(&ledger);
    let service = Arc::new(QueryService::new(catalog, Arc::clone(&ledger) as _).await?);
    let flight = match &options.flight {
        Some(flight) => {
            let tls = certificates
                .flight
                .as_ref()
                .map(|certificate| certificate.acceptor(&[b"h2"]))
                .transpose()?;
            Some(FlightServer::bind(flight, &options.auth, Arc::clone(&service), tls).await?)
        }
        None => None,
    };
    let pg = PgServer::bind(options, Arc::clone(&service), certificates.pg.as_ref()).await?;
    let pg_certificate = pg.certificate(certificates.pg.as_ref());
    let pg_addr = pg.local_addr()?;
    let flight_addr = flight.as_ref().map(FlightServer::local_addr).transpose()?;
    let shutdown = CancellationToken::new();
    let mut tasks = vec![tokio::spawn(pg.serve(shutdown.clone()))];
    tracing::info!(%pg_addr, "Postgres wire protocol listening");
    if let Some(flight) = flight {
        tasks.push(spawn_listener("Flight SQL", flight.serve(shutdown.clone())));
        tracing::info!(flight_addr = ?flight_addr, "Arrow Flight SQL listening");
    }
    let http = match &options.http {
        Some(http) => {
            let tls = certificates
                .http
                .as_ref()
                .map(|certificate| certificate.acceptor(&[b"http/1.1"]))
                .transpose()?;
            let server =
                HttpServer::bind(http.listen, tls)
                    .await
                    .map_err(|source| GatewayError::Bind {
                        address: http.listen,
                        source,
                    })?;
            let addr = server.local_addr()?;
            Some((server, addr))
        }
        None => None,
    };
    let http_tls = http.as_ref().is_some_and(|(server, _)| server.is_tls());
    let mut routes = http::router(metrics);
    if let Some(http) = &options.http {
        routes = routes.merge(webapi::router(WebApi::new(
            Arc::clone(&service),
            &options.auth,
            http_tls,
            http.statement_idle.duration(),
        )));
    }
    let mut sync = None;
    if let Some((control, store, _, state, version)) = control {
        let catalog_sync = Arc::new(CatalogSync::new(
            Arc::clone(&store),
            options.clone(),
            Arc::clone(&service),
            &state,
            version,
        ));
        sync = Some(Arc::clone(&catalog_sync));
        let listeners = Listeners {
            pg: pg_addr,
            flight: flight_addr,
            http: http.as_ref().map(|(server, addr)| (*addr, server.is_tls())),
        };
        let endpoints = Endpoints::new(options, control, &listeners);
        let delivery = Arc::new(DeliveryStore::new(control)?);
        let brokers = PushBrokers::new(control)?;
        routes = routes.merge(sharing::router(SharingApi::new(
            Arc::clone(&service),
            Arc::clone(&store),
            Arc::clone(&delivery),
            Arc::clone(&ledger) as _,
            &options.auth,
            control,
            http_tls,
        )?));
        let plane = Arc::new(ControlPlane::new(
            store,
            catalog_sync,
            Arc::clone(&service),
            ledger,
            endpoints,
            control.clone(),
            (delivery, brokers),
        ));
        tasks.extend(plane.spawn(&shutdown));
        routes = routes
            .merge(api::router(plane, &options.auth))
            .merge(console::router());
    }
    let http_addr = http.map(|(server, addr)| {
        tasks.push(spawn_listener(
            "HTTP",
            server.serve(routes, shutdown.clone()),
        ));
        tracing::info!(http_addr = %addr, "HTTP listening (/metrics, /v1)");
        addr
    });
    let reloader = Reloader::new(
        options.clone(),
        Arc::clone(&service),
        sync,
        Certificates {
            pg: pg_certificate,
            flight: certificates.flight,
            http: certificates.http,
        },
    );
    Ok(RunningGateway {
        pg_addr,
        flight_addr,
        http_addr,
        shutdown,
        tasks,
        service,
        ledger: record_keeper,
        drain_grace: options.engine.drain_grace.duration(),
        reloader,
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
