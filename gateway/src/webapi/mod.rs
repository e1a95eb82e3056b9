//! The Web-API: granted datasets for web apps and scripts over HTTP, as resources in
//! PostgREST's conventions and as SQL statements paged in the manner of Trino's client
//! protocol, through the same engine API, scoping, pools and metering as the other front
//! ends (usage records with protocol `http`).
//!
//! ```text
//! Authorization: Bearer <login>.<password> (an `http` channel's token) or Basic
//!   GET    /v1/data/{schema}/{table}?select=&a=eq.1&order=&limit=&offset=   one page
//!   POST   /v1/statements  {sql, parameters}  ─▶ first page + nextUri (or ?stream=true)
//!   GET    /v1/statements/{id}/{page}          ─▶ next page
//!   DELETE /v1/statements/{id}                 ─▶ cancelled
//! Accept: JSON, NDJSON, CSV, Arrow IPC stream, Parquet · gzip/zstd · CORS per tenant
//! ```
//!
//! | module | job |
//! | --- | --- |
//! | `auth.rs` | bearer tokens and Basic logins against the logins' verifiers, remembered |
//! | `resource_query.rs` | PostgREST query strings → one bound `SELECT` over a granted dataset |
//! | `resources.rs` | `GET /v1/data/…`: a page with `Content-Range`, `next` link, `ETag` |
//! | `statements.rs` | `/v1/statements`: started statements, their pages, cancel, idle sweep |
//! | `streamed.rs` | a whole result in one streamed body |
//! | `pages.rs` | a result read in pages of bounded rows and bytes |
//! | `query.rs` | one query through the engine API, parameters bound to inferred types |
//! | `formats.rs` | `Accept` negotiation and the encoders |
//! | `cors.rs` | CORS: preflights and responses for the caller's tenant's origins |
//! | `errors.rs` | `WebError` as problem+json, query errors by SQLSTATE |

pub mod auth;
mod cors;
mod errors;
mod formats;
mod pages;
mod query;
mod resource_query;
mod resources;
mod statements;
mod streamed;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{delete, get, post};
use tollgate_catalog::{AuthOptions, ChannelKind, LoginThrottle};
use tollgate_planner::QueryService;
use tollgate_planner::metering::Protocol;
use tower_http::compression::CompressionLayer;

use auth::WebAuth;
use statements::Statements;

pub use errors::WebError;

/// The Web-API of one gateway.
#[derive(Debug)]
pub struct WebApi {
    service: Arc<QueryService>,
    auth: WebAuth,
    statements: Arc<Statements>,
    tls: bool,
}

impl WebApi {
    /// The Web-API over `service`, its logins throttled as `auth` says; `tls` when the
    /// listener serves HTTPS (for the links it writes). Statements not read for
    /// `statement_idle` are cancelled.
    pub fn new(
        service: Arc<QueryService>,
        auth: &AuthOptions,
        tls: bool,
        statement_idle: Duration,
    ) -> Self {
        let statements = Arc::new(Statements::default());
        Statements::start_sweeper(&statements, statement_idle);
        Self {
            auth: WebAuth::new(
                Arc::clone(&service),
                LoginThrottle::new(auth),
                ChannelKind::Http,
                Protocol::Http,
            ),
            service,
            statements,
            tls,
        }
    }

    /// `scheme://host` of the request, for absolute links; empty (links relative to the
    /// host) when the request names no host.
    fn base_url(&self, headers: &HeaderMap) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .map(|host| format!("{scheme}://{host}"))
            .unwrap_or_default()
    }
}

/// The Web-API's routes.
pub fn router(api: WebApi) -> Router {
    let api = Arc::new(api);
    Router::new()
        .route("/v1/data/{schema}/{table}", get(resources::resource))
        .route("/v1/statements", post(statements::submit))
        .route("/v1/statements/{id}/{page}", get(statements::page))
        .route("/v1/statements/{id}", delete(statements::cancel))
        .layer(CompressionLayer::new().gzip(true).zstd(true))
        .layer(axum::middleware::map_response(resources::item_range_header))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&api),
            cors::cors,
        ))
        .with_state(api)
}
