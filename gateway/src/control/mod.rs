//! The control plane: the live catalog kept in a state store, and the REST API `/v1` that
//! changes it.
//!
//! ```text
//! REST /v1 ──write──▶ state store (SQLite or PostgreSQL) ◀──poll version── every gateway
//!                            │                                               │
//!   orders worker ◀── pending orders                     state + tollgate.toml ─▶ Catalog
//!        └── channel + login + ready event ──▶ store                         │
//!                                                  QueryService::apply ◀─────┘ (revokes logins)
//! ```
//!
//! | module | job |
//! | --- | --- |
//! | `sync.rs` | the catalog served: state + configuration, rebuilt when the store's version moves |
//! | `file_channels.rs` | provisioning a `file` channel: channel and login first, then its files, then ready |
//! | `file_versions.rs` | new versions of a `file` channel's datasets: by request, and on a schedule when changed |
//! | `push_channels.rs` | a push channel's broker user: NATS account and user `.creds`, or an MQTT client |
//! | `push_delivery.rs` | push channels' rows: every file on order, then each new one, exactly once, each read once for all channels |
//! | `push_entries.rs` | what a push channel lacks of a dataset: files, new replica rows by watermark, versions |
//! | `orders.rs` | provisioning orders: claim with a lease, check, create channel and login, emit the event |
//! | `delivery.rs` | events to webhooks (signed) and NATS JetStream (deduplicated), retried with backoff |
//! | `credentials.rs` | channel passwords, login names and connection details |
//! | `keys.rs` | API keys: parse, generate, compare hashes in constant time |
//! | `problem.rs` | `application/problem+json` errors with stable types |
//! | `api/` | the HTTP routes, callers and request bodies |

pub mod api;
mod credentials;
pub mod delivery;
mod file_channels;
mod file_versions;
pub mod keys;
mod orders;
mod problem;
mod push_channels;
mod push_delivery;
mod push_entries;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::store::ControlStore;
use tollgate_catalog::{ApiKeyOptions, ControlOptions, TollgateOptions};
use tollgate_planner::QueryService;
use tollgate_planner::metering::UsageLedger;

use crate::push::PushBrokers;
use crate::sharing::store::DeliveryStore;
pub use problem::Problem;
pub use sync::CatalogSync;

/// The addresses the gateway's listeners are bound to.
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    /// The Postgres wire protocol.
    pub pg: SocketAddr,
    /// Flight SQL, if it is on.
    pub flight: Option<SocketAddr>,
    /// The HTTP listener, if it is on, and whether it serves HTTPS.
    pub http: Option<(SocketAddr, bool)>,
}

/// Where tenants connect: what ready events tell them.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Host name or address given to tenants.
    pub host: String,
    /// The Postgres wire protocol port.
    pub pg_port: u16,
    /// The Flight SQL port, if Flight SQL is on.
    pub flight_port: Option<u16>,
    /// Whether Flight SQL uses TLS.
    pub flight_tls: bool,
    /// The base URL of the HTTP listener (`http://host:port`), if it is on.
    pub http_base: Option<String>,
    /// The database name.
    pub database: String,
}

impl Endpoints {
    /// The endpoints of the bound `listeners`.
    pub fn new(options: &TollgateOptions, control: &ControlOptions, listeners: &Listeners) -> Self {
        let pg = listeners.pg;
        let host = control.public_host.clone().unwrap_or_else(|| {
            if pg.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                pg.ip().to_string()
            }
        });
        let http_base = listeners.http.map(|(addr, tls)| {
            let scheme = if tls { "https" } else { "http" };
            format!("{scheme}://{host}:{}", addr.port())
        });
        Self {
            host,
            pg_port: pg.port(),
            flight_port: listeners.flight.map(|addr| addr.port()),
            flight_tls: options.flight.as_ref().is_some_and(|f| f.tls.is_some()),
            http_base,
            database: options.database.clone(),
        }
    }
}

/// The control plane of one gateway.
#[derive(Debug)]
pub struct ControlPlane {
    store: Arc<ControlStore>,
    sync: Arc<CatalogSync>,
    service: Arc<QueryService>,
    ledger: Arc<dyn UsageLedger>,
    endpoints: Endpoints,
    options: ControlOptions,
    /// Where `file` channels' files are written.
    delivery: Arc<DeliveryStore>,
    /// Wakes the orders worker when an order is placed here.
    orders: Notify,
    /// The brokers push channels publish to.
    brokers: PushBrokers,
    /// Wakes the push worker when a push channel is made or revoked here.
    push: Notify,
}

impl ControlPlane {
    /// A control plane over `store`, serving its catalog through `sync`; usage is read
    /// from `ledger`; `file` channels write to `delivery`, push channels publish to
    /// `brokers`.
    pub fn new(
        store: Arc<ControlStore>,
        sync: Arc<CatalogSync>,
        service: Arc<QueryService>,
        ledger: Arc<dyn UsageLedger>,
        endpoints: Endpoints,
        options: ControlOptions,
        (delivery, brokers): (Arc<DeliveryStore>, PushBrokers),
    ) -> Self {
        Self {
            store,
            sync,
            service,
            ledger,
            endpoints,
            options,
            delivery,
            orders: Notify::new(),
            brokers,
            push: Notify::new(),
        }
    }

    /// Starts the catalog poller, the orders and event delivery workers, the push worker
    /// when there is a broker and, unless its interval is zero, the scheduled refresh of
    /// file channels; all stop with `shutdown`.
    pub fn spawn(self: &Arc<Self>, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
        let poll = self.options.poll_interval.duration();
        let mut tasks = vec![
            tokio::spawn(Arc::clone(&self.sync).run(poll, shutdown.clone())),
            tokio::spawn(orders::run(Arc::clone(self), shutdown.clone())),
            tokio::spawn(delivery::run(Arc::clone(self), shutdown.clone())),
        ];
        if let Some(interval) = self.brokers.poll_interval() {
            tasks.push(tokio::spawn(push_delivery::run(
                Arc::clone(self),
                interval,
                shutdown.clone(),
            )));
        }
        let refresh = self.options.file_refresh_interval.duration();
        if !refresh.is_zero() {
            tasks.push(tokio::spawn(file_versions::run(
                Arc::clone(self),
                refresh,
                shutdown.clone(),
            )));
        }
        tasks
    }

    /// The API keys declared in the configuration.
    fn configured_keys(&self) -> &[ApiKeyOptions] {
        &self.options.api_keys
    }

    /// How long a replaced password keeps working.
    fn rotation_overlap(&self) -> Duration {
        self.options.rotation_overlap.duration()
    }
}
