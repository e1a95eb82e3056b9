//! `file` channels: a channel's output model written as Parquet files into the delivery
//! store (a directory, or an S3 bucket), one table version per write, and served by the
//! Delta Sharing protocol to the channel's login only, with file URLs that expire.
//!
//! ```text
//! order (kind file) ─▶ export: SELECT * of each dataset as the channel ─▶ v1 files + records
//! POST /v1/admin/channels/{id}/refresh, or a changed source ─▶ v2, … + `channel.refreshed`
//! Authorization: Bearer <token of the profile file>
//!   GET  /delta-sharing/shares[/{share}[/schemas[/{schema}/tables]|/all-tables]]
//!   GET  …/tables/{table}/version | /metadata     (header delta-table-version)
//!   POST …/tables/{table}/query  ─▶ protocol, metaData, file lines with URLs (metered)
//!   GET|HEAD /delta-sharing/files/{signed}        (a directory's; ranges; refused once expired)
//!   presigned S3 URLs                             (a bucket's; the bucket refuses them once expired)
//! ```
//!
//! | module | job |
//! | --- | --- |
//! | `export.rs` | a version of a dataset of a channel: the query as the channel, Parquet files |
//! | `stats.rs` | Delta's per-file statistics: bounds and null counts of each column |
//! | `partitions.rs` | a partitioned dataset's rows split by partition, files under `col=value/` |
//! | `store.rs` | the delivery store: a directory or an S3 bucket, and its file URLs |
//! | `protocol.rs` | the Delta Sharing REST routes over the channel's shared tables |
//! | `delta.rs` | Delta's `schemaString`, the `protocol`, `metaData` and `file` lines |
//! | `files.rs` | the gateway's signed file URLs and the files served with byte ranges |

mod delta;
pub mod export;
mod files;
mod partitions;
mod protocol;
mod stats;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tollgate_catalog::store::ControlStore;
use tollgate_catalog::{AuthOptions, ChannelKind, ControlOptions, LoginThrottle};
use tollgate_flight::signing::Signer;
use tollgate_planner::QueryService;
use tollgate_planner::metering::{Protocol, UsageLedger};

use crate::error::GatewayError;
use crate::webapi::auth::WebAuth;
use store::DeliveryStore;

/// The Delta Sharing endpoint of one gateway.
pub struct SharingApi {
    store: Arc<ControlStore>,
    auth: WebAuth,
    signer: Signer,
    delivery: Arc<DeliveryStore>,
    url_ttl: Duration,
    ledger: Arc<dyn UsageLedger>,
    tls: bool,
}

impl std::fmt::Debug for SharingApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharingApi")
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl SharingApi {
    /// The endpoint over the shared tables of `store`, whose files are in `delivery`, for
    /// the `file` channels' logins of `service`; handouts are recorded in `ledger`; `tls`
    /// when the listener serves HTTPS (for the URLs it writes).
    ///
    /// # Errors
    /// [`GatewayError::Flight`] for a signing key that is not base64 of 32 bytes or more.
    pub fn new(
        service: Arc<QueryService>,
        store: Arc<ControlStore>,
        delivery: Arc<DeliveryStore>,
        ledger: Arc<dyn UsageLedger>,
        auth: &AuthOptions,
        control: &ControlOptions,
        tls: bool,
    ) -> Result<Self, GatewayError> {
        let signer = Signer::new(control.signing_key.as_deref())?;
        Ok(Self {
            store,
            auth: WebAuth::new(
                service,
                LoginThrottle::new(auth),
                ChannelKind::File,
                Protocol::DeltaSharing,
            ),
            signer,
            delivery,
            url_ttl: control.file_url_ttl.duration(),
            ledger,
            tls,
        })
    }

    /// `scheme://host` of the request, for the file URLs it is given.
    fn base_url(&self, headers: &axum::http::HeaderMap) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        headers
            .get(axum::http::header::HOST)
            .and_then(|host| host.to_str().ok())
            .map(|host| format!("{scheme}://{host}"))
            .unwrap_or_default()
    }
}

/// The Delta Sharing routes, under `/delta-sharing`.
pub fn router(api: SharingApi) -> Router {
    let table = "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}";
    Router::new()
        .route("/delta-sharing/shares", get(protocol::shares))
        .route("/delta-sharing/shares/{share}", get(protocol::share))
        .route(
            "/delta-sharing/shares/{share}/schemas",
            get(protocol::schemas),
        )
        .route(
            "/delta-sharing/shares/{share}/schemas/{schema}/tables",
            get(protocol::tables),
        )
        .route(
            "/delta-sharing/shares/{share}/all-tables",
            get(protocol::all_tables),
        )
        .route(
            &format!("{table}/version"),
            get(protocol::version).head(protocol::version),
        )
        .route(table, axum::routing::head(protocol::version))
        .route(&format!("{table}/metadata"), get(protocol::metadata))
        .route(&format!("{table}/query"), post(protocol::query))
        .route(
            "/delta-sharing/files/{signed}",
            get(files::file).head(files::file),
        )
        .with_state(Arc::new(api))
}
