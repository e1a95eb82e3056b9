//! Errors of starting and running the gateway.

use std::net::SocketAddr;

use tollgate_catalog::CatalogError;
use tollgate_planner::PlannerError;
use tollgate_planner::metering::LedgerError;

/// Why the gateway could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] CatalogError),
    /// The engine could not be built (a source or a grant failed).
    #[error(transparent)]
    Engine(#[from] PlannerError),
    /// The Flight SQL front end could not start.
    #[error(transparent)]
    Flight(#[from] tollgate_flight::FlightError),
    /// A listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TLS files are missing or unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The control plane's state store could not be opened or read.
    #[error(transparent)]
    Store(#[from] tollgate_catalog::store::StoreError),
    /// The control plane is configured without the HTTP listener its API needs.
    #[error("[control] needs the HTTP listener ([http] listen = …) to serve its API")]
    ControlWithoutHttp,
    /// The usage ledger could not be opened or read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// `tollgate usage export` could not write its output.
    #[error("usage export: {0}")]
    Export(String),
    /// The delivery store of `file` channels cannot be used.
    #[error("delivery store: {0}")]
    Delivery(String),
    /// The NATS settings of push channels are not usable.
    #[error("control.nats_push: {0}")]
    Push(#[from] crate::push::nats_jwt::JwtError),
    /// The bundled demo could not be prepared.
    #[error("demo: {0}")]
    Demo(String),
    /// `tollgate audit verify` found the chain of an audit log broken.
    #[error("{path}: {source}")]
    AuditChain {
        /// The audit log.
        path: String,
        /// Where and how it breaks.
        source: crate::audit_chain::ChainBreak,
    },
    /// A configuration read again (SIGHUP) changes what only a restart can.
    #[error("reload: {0}")]
    Reload(String),
    /// `tollgate passwd` got no usable password.
    #[error("passwd: {0}")]
    Passwd(String),
    /// Another I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
