//! Tollgate's engine: from (principal, SQL) to a stream of Arrow batches.
//!
//! The crate owns everything between a front end and the data: each tenant's scoped
//! DataFusion session ([`tenant`]), the views its grants become ([`granted_view`]), the SQL
//! policy ([`policy`]), the sources datasets are read from ([`sources`]) and the one
//! protocol-neutral service front ends call ([`QueryService`]). It knows no wire protocol.
//!
//! ```text
//! QueryService::parse ─▶ front end answers SET/SHOW/BEGIN ─▶ QueryService::plan (policy,
//! tenant catalog) ─▶ QueryService::execute ─▶ QueryStream (cancel + statement timeout)
//!                                                 └─▶ usage record, durable before the end
//! ```
//!
//! Every execution, whatever its outcome, leaves one record in the usage ledger
//! ([`metering`]); tenants read their own in `tollgate.usage` ([`usage`]).

mod array_parameters;
mod athena;
mod catalog_lookups;
mod catalog_operators;
mod catalog_subqueries;
mod catalog_types;
pub mod complexity;
mod cooperative;
pub mod error;
mod executor;
mod expand_array;
mod format_function;
mod generate_subscripts;
pub mod granted_view;
pub mod information_schema;
mod leakproof;
mod like_escape;
mod listing_cache;
pub mod metering;
mod only_child;
mod output_names;
mod panics;
mod parameters;
mod partitions;
mod pg_catalog_overlay;
mod pg_functions;
pub mod policy;
pub mod pool;
mod postgres_table;
mod pushdown;
mod regclass_names;
mod regproc;
mod remote_scan;
mod replicas;
mod roles;
mod service;
pub mod session_parameters;
pub mod source_error;
mod source_scan;
mod sources;
mod sql_calls;
mod sql_endpoint;
mod sql_pushdown;
mod stoppable;
mod stores;
mod stream;
mod system;
pub mod tenant;
mod unnest_from;
mod usage;
mod value_size;
mod work_limits;

pub use error::{ErrorKind, Limit, PlannerError};
pub use service::{PlannedQuery, QueryContext, QueryService, ResultPart};
pub use stream::QueryStream;
pub use tenant::{TenantSession, TenantTable};

/// Re-exported so front ends name the same engine types.
pub use datafusion;
