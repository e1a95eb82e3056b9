//! The `tollgate` binary's library: CLI, start-up wiring, the Postgres wire protocol front
//! end and the bundled demo.
//!
//! | module | job |
//! | --- | --- |
//! | [`cli`] | command line: `serve`, `demo`, `passwd` |
//! | [`server`] | configuration ─▶ catalog ─▶ engine ─▶ listeners |
//! | [`pgwire`] | the Postgres wire protocol front end |
//! | [`demo`] | TPC-H demo data, tenants and configuration |
//! | [`tls`] | rustls server configuration |

pub mod cli;
pub mod demo;
pub mod error;
pub mod pgwire;
pub mod server;
pub mod tls;

pub use error::GatewayError;
