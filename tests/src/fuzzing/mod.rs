//! The bodies of the fuzz targets of `../fuzz` (libFuzzer through cargo-fuzz), which
//! `tests/fuzz_corpus.rs` also runs over the committed corpus and mutations of it.
//!
//! Each body takes any bytes and panics only when the gateway misbehaves. Under libFuzzer
//! every panic aborts the process, including one the gateway would have caught and answered
//! (a panic is a defect even when contained), so the oracles are: no panic anywhere, no
//! hang past libFuzzer's timeout, no memory past its RSS limit, plus each target's own check
//! of the answer (a well-formed protocol stream, a 4xx rather than a 5xx, rows as wide as
//! their description).
//!
//! | target | the bytes are | through |
//! | --- | --- | --- |
//! | `pgwire_startup` | a connection's first bytes (startup, SSL, GSS and cancel requests, garbage) | the Postgres listener |
//! | `pgwire_session` | everything a client sends after logging in as acme | the Postgres listener; the answer must parse as backend messages |
//! | `sql_plan` | SQL text of acme or globex | parse → admission → compatibility rewrites → planning |
//! | `arrow_encode` | Arrow columns of any type and value | Arrow → pgwire rows, text and binary |
//! | `flight_ticket` | a `DoGet` ticket, or a bearer token | the Flight SQL listener |
//! | `config_toml` | `tollgate.toml` | parsing and the catalog's validation |
//! | `rest_body` | a control API request body | `/v1` and `/console/session` over HTTP; no 5xx |
//!
//! The targets share one demo gateway per process, started on first use on a runtime of
//! its own ([`Harness`]).

mod arrays;
mod config;
mod flight;
mod pgwire;
mod rest;
mod sql;

use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::TestGateway;
use crate::api::{self, Api};

/// A fuzz target: a name (the folders of its corpus) and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A connection's first bytes.
    PgwireStartup,
    /// A logged-in client's bytes.
    PgwireSession,
    /// SQL text planned for a tenant.
    SqlPlan,
    /// Arrow columns encoded as pgwire rows.
    ArrowEncode,
    /// Flight tickets and bearer tokens.
    FlightTicket,
    /// Configuration text.
    ConfigToml,
    /// Control API request bodies.
    RestBody,
}

impl Target {
    /// Every target.
    pub const ALL: [Self; 7] = [
        Self::PgwireStartup,
        Self::PgwireSession,
        Self::SqlPlan,
        Self::ArrowEncode,
        Self::FlightTicket,
        Self::ConfigToml,
        Self::RestBody,
    ];

    /// The target's name, as cargo-fuzz and the corpus folders spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::PgwireStartup => "pgwire_startup",
            Self::PgwireSession => "pgwire_session",
            Self::SqlPlan => "sql_plan",
            Self::ArrowEncode => "arrow_encode",
            Self::FlightTicket => "flight_ticket",
            Self::ConfigToml => "config_toml",
            Self::RestBody => "rest_body",
        }
    }

    /// Runs one input.
    ///
    /// # Panics
    /// When the gateway misbehaves on it (see the module's oracles).
    pub fn run(self, data: &[u8]) {
        match self {
            Self::ConfigToml => config::run(data),
            Self::ArrowEncode => arrays::run(data),
            network => {
                let harness = Harness::get();
                harness.runtime.block_on(async {
                    match network {
                        Self::PgwireStartup => pgwire::startup(harness, data).await,
                        Self::PgwireSession => pgwire::session(harness, data).await,
                        Self::SqlPlan => sql::run(harness, data).await,
                        Self::FlightTicket => flight::run(harness, data).await,
                        _ => rest::run(harness, data).await,
                    }
                });
            }
        }
    }
}

/// The demo gateway the network targets talk to, on a runtime of its own.
pub struct Harness {
    runtime: Runtime,
    gateway: TestGateway,
    admin: Api,
    acme: Api,
}

impl Harness {
    /// The process's harness, started on first use: the demo gateway with login throttling
    /// and the API's rate limit out of the way (the targets log in and call it thousands of
    /// times a second), and a tenant `fuzz` whose settings `rest_body` may change freely.
    ///
    /// # Panics
    /// If the gateway cannot start.
    pub fn get() -> &'static Self {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the harness");
            let (gateway, admin, acme) = runtime.block_on(async {
                let gateway = TestGateway::start_with(|options| {
                    options.auth.max_failures = u32::MAX;
                    if let Some(control) = &mut options.control {
                        control.rate_limit = 1e9;
                    }
                })
                .await;
                let admin = Api::new(&gateway, api::ADMIN);
                let acme = Api::new(&gateway, api::ACME);
                api::onboard(&admin, rest::FUZZ_TENANT).await;
                (gateway, admin, acme)
            });
            Self {
                runtime,
                gateway,
                admin,
                acme,
            }
        })
    }

    /// Asserts that the gateway still logs acme in and answers a query.
    ///
    /// # Panics
    /// If it does not.
    pub fn assert_serving(&self) {
        self.runtime.block_on(self.gateway.assert_serving());
    }
}
