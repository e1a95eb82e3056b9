//! The `tollgate` binary's library: CLI, start-up wiring, the Postgres wire protocol front
//! end and the bundled demo.
//!
//! | module | job |
//! | --- | --- |
//! | [`cli`] | command line: `serve`, `demo`, `passwd` |
//! | [`server`] | configuration ─▶ catalog ─▶ engine ─▶ listeners |
//! | [`reload`] | SIGHUP: the configuration file checked whole, then certificates and catalog swapped |
//! | [`pgwire`] | the Postgres wire protocol front end |
//! | [`webapi`] | the Web-API: datasets as PostgREST-style resources and paged SQL statements |
//! | [`sharing`] | `file` channels: Parquet files of a channel's output, served by Delta Sharing |
//! | [`push`] | `nats` and `mqtt` channels: tenants' broker users, rows pushed as messages |
//! | [`control`] | the control plane: live catalog from the state store, REST API `/v1`, orders |
//! | [`console`] | the web console at `/console`: one page on the `/v1` API, signed in by cookie |
//! | [`ledger`] | the usage ledger (SQLite or PostgreSQL, group commit) and its export |
//! | [`metrics`] | Prometheus metrics of usage |
//! | [`http`] | the HTTP listener: `/metrics` |
//! | [`audit`] | the audit log: JSON lines for logins and refused statements |
//! | [`demo`] | TPC-H demo data, tenants and configuration |
//! | [`tls`] | rustls server configuration, certificates swapped while serving |
//! | [`error`] | `GatewayError`, the errors of start-up and serving |

pub mod audit;
pub mod audit_chain;
pub mod cli;
pub mod console;
pub mod control;
pub mod demo;
pub mod error;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod pgwire;
pub mod push;
pub mod reload;
pub mod server;
pub mod sharing;
pub mod tls;
pub mod webapi;

pub use error::GatewayError;
