//! Tollgate's engine: from (principal, SQL) to a stream of Arrow batches.
//!
//! The crate owns everything between a front end and the data, in folders that import only
//! the folders below them:
//!
//! ```text
//! service/    the engine API front ends call: QueryService, QueryContext, QueryStream
//!   ─▶ session/    a tenant's scoped session, the SQL policy, its `tollgate` schema
//!   ─▶ metering/   one usage record per execution, the ledger contract
//!   ─▶ grants/     grants as views with a security barrier, pushdown over them
//!   ─▶ sources/    object stores, replicas, Athena: where datasets' rows come from
//!   ─▶ resources/  pools, executors, bounds on work, stopping work
//!   ─▶ pg_compat/  PostgreSQL's dialect, functions and catalogs
//! ```
//!
//! A query: `QueryService::parse` ─▶ the front end answers SET/SHOW/BEGIN ─▶
//! `QueryService::plan` (policy, tenant catalog) ─▶ `QueryService::execute` ─▶
//! [`QueryStream`] (cancel + statement timeout) ─▶ usage record, durable before the end.
//! It knows no wire protocol.
//!
//! Public modules: [`error`], [`metering`], and re-exported from their folders
//! [`granted_view`], [`information_schema`], [`complexity`], [`pool`], [`policy`],
//! [`session_parameters`], [`tenant`], [`source_error`].

pub mod error;
mod grants;
pub mod metering;
mod pg_compat;
mod resources;
mod service;
mod session;
mod sources;

pub use grants::{granted_view, provided_rows};
pub use pg_compat::{dataset_keys, information_schema};
pub use resources::{complexity, pool};
pub use session::{policy, session_parameters, tenant};
pub use sources::{dataset_stats, shared_rows, source_error, source_slice};

pub use error::{ErrorKind, Limit, PlannerError};
pub use pg_compat::functions::pg_functions::SERVER_VERSION;
pub use service::stream::QueryStream;
pub use service::{PlannedQuery, QueryContext, QueryService, ResultPart};
pub use tenant::{TenantSession, TenantTable};

/// Re-exported so front ends name the same engine types.
pub use datafusion;
