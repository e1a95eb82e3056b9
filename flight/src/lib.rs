//! Tollgate's Arrow Flight SQL front end: Arrow batches straight to Spark, ADBC and pandas.
//!
//! The crate translates Flight SQL to the planner's engine API and adds nothing to what a
//! tenant may see: the same principals log in (HTTP Basic checked against their SCRAM
//! verifiers), the same scoped sessions plan every statement, the same error kinds map to
//! gRPC codes ([`error::grpc_code`]).
//!
//! ```text
//! Handshake(Basic) ─▶ bearer token (signed, expiring)
//! GetFlightInfo(sql) ─▶ schema + N endpoints (independent partitions ≤ profile parallelism)
//!                       each with a signed ticket {principal, sql, parameters, k of N}
//! DoGet(ticket) ─▶ caller must be the ticket's principal ─▶ plan ─▶ stream partition k
//! CancelFlightInfo / CancelQuery ─▶ stop every running endpoint of the query
//! ```
//!
//! Nothing lives only in one process: tokens, tickets and prepared-statement handles are
//! signed with `flight.signing_key`, so gateways sharing a configuration serve each other's
//! clients.
//!
//! Modules: `server` binds the listener; `service` (a folder, one file per job: prepared
//! statements, metadata commands, actions, refusals) implements Flight SQL over `auth`,
//! `queries`, `prepared`, `running` and `metadata`; [`error`] is public for its table from
//! planner error kinds to gRPC codes, [`portable`] for the Arrow types push channels send
//! too, [`tls_accept`] for TLS handshakes that the gateway's HTTPS listener runs the same way.

mod auth;
mod claims;
pub mod error;
mod keys;
mod metadata;
pub mod portable;
mod prepared;
mod queries;
mod running;
mod server;
mod service;
pub mod signing;
pub mod tls_accept;

pub use error::FlightError;
pub use server::FlightServer;
pub use service::TollgateFlightSql;
