//! The Delta Sharing REST routes: the caller's channel is its one share, the channel's
//! datasets its tables (`schema.table` as schema and table), each at its latest version or
//! at the version a query asks for. Another tenant's share answers as a missing one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_catalog::store::records::{SHARED_TABLE, SharedTableRecord};
use tollgate_flight::signing::expires_in;
use tollgate_planner::metering::{DatasetUsage, Outcome, UsageRecord};
use uuid::Uuid;

use super::{SharingApi, delta, files};
use crate::webapi::WebError;
use crate::webapi::auth::WebCaller;

/// The caller of a Delta Sharing request: a `file` channel's login by its bearer token.
pub struct Caller(WebCaller);

impl FromRequestParts<Arc<SharingApi>> for Caller {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &Arc<SharingApi>,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        api.auth.authenticate(&parts.headers, address).map(Self)
    }
}

/// The latest version of each table of `share`, if it is the caller's channel.
async fn shared_tables(
    api: &SharingApi,
    caller: &WebCaller,
    share: &str,
) -> Result<BTreeMap<String, SharedTableRecord>, WebError> {
    let missing = || WebError::NotFound(format!("share `{share}`"));
    if caller.principal.channel.as_deref() != Some(share) {
        return Err(missing());
    }
    let mut latest: BTreeMap<String, SharedTableRecord> = BTreeMap::new();
    for document in api
        .store
        .list(SHARED_TABLE, Some(&caller.principal.tenant))
        .await
        .map_err(store_error)?
    {
        let table: SharedTableRecord = document.parse().map_err(store_error)?;
        if table.channel == share
            && latest
                .get(&table.dataset)
                .is_none_or(|known| known.version < table.version)
        {
            latest.insert(table.dataset.clone(), table);
        }
    }
    Ok(latest)
}

/// One table of `share` at `version` (the latest if `None`).
async fn shared_table(
    api: &SharingApi,
    caller: &WebCaller,
    (share, schema, table): (&str, &str, &str),
    version: Option<u64>,
) -> Result<SharedTableRecord, WebError> {
    let dataset = format!("{schema}.{table}");
    let latest = shared_tables(api, caller, share)
        .await?
        .remove(&dataset)
        .ok_or_else(|| WebError::NotFound(format!("table `{share}.{dataset}`")))?;
    match version {
        None => Ok(latest),
        Some(version) if version == latest.version => Ok(latest),
        Some(version) => {
            let id = SharedTableRecord::id(share, &dataset, version);
            match api
                .store
                .get(SHARED_TABLE, &id)
                .await
                .map_err(store_error)?
            {
                Some(document) if document.tenant == caller.principal.tenant => {
                    document.parse().map_err(store_error)
                }
                _ => Err(WebError::NotFound(format!(
                    "version {version} of `{share}.{dataset}`"
                ))),
            }
        }
    }
}

fn store_error(error: tollgate_catalog::store::StoreError) -> WebError {
    tracing::error!(%error, "Delta Sharing: the state store");
    WebError::Query(tollgate_planner::PlannerError::Source {
        dataset: String::new(),
        message: "the state store is unavailable; retry later".to_owned(),
    })
}

fn items(items: Vec<Value>) -> Response {
    axum::Json(json!({ "items": items })).into_response()
}

/// `GET /delta-sharing/shares`: the caller's channel.
pub async fn shares(Caller(caller): Caller) -> Result<Response, WebError> {
    Ok(items(
        caller
            .principal
            .channel
            .iter()
            .map(|channel| json!({ "name": channel, "id": channel }))
            .collect(),
    ))
}

/// `GET /delta-sharing/shares/{share}`.
pub async fn share(
    State(api): State<Arc<SharingApi>>,
    Caller(caller): Caller,
    Path(share): Path<String>,
) -> Result<Response, WebError> {
    shared_tables(&api, &caller, &share).await?;
    Ok(axum::Json(json!({ "share": { "name": share, "id": share } })).into_response())
}

/// `GET /delta-sharing/shares/{share}/schemas`.
pub async fn schemas(
    State(api): State<Arc<SharingApi>>,
    Caller(caller): Caller,
    Path(share): Path<String>,
) -> Result<Response, WebError> {
    let mut schemas: Vec<String> = shared_tables(&api, &caller, &share)
        .await?
        .keys()
        .filter_map(|dataset| dataset.split_once('.').map(|(schema, _)| schema.to_owned()))
        .collect();
    schemas.dedup();
    Ok(items(
        schemas
            .into_iter()
            .map(|schema| json!({ "name": schema, "share": share }))
            .collect(),
    ))
}

fn table_items(share: &str, tables: impl Iterator<Item = String>) -> Response {
    items(
        tables
            .filter_map(|dataset| {
                let (schema, table) = dataset.split_once('.')?;
                Some(json!({
                    "name": table,
                    "schema": schema,
                    "share": share,
                    "shareId": share,
                    "id": format!("{share}/{dataset}"),
                }))
            })
            .collect(),
    )
}

/// `GET /delta-sharing/shares/{share}/schemas/{schema}/tables`.
pub async fn tables(
    State(api): State<Arc<SharingApi>>,
    Caller(caller): Caller,
    Path((share, schema)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let prefix = format!("{schema}.");
    let tables = shared_tables(&api, &caller, &share).await?;
    Ok(table_items(
        &share,
        tables
            .into_keys()
            .filter(|dataset| dataset.starts_with(&prefix)),
    ))
}

/// `GET /delta-sharing/shares/{share}/all-tables`.
pub async fn all_tables(
    State(api): State<Arc<SharingApi>>,
    Caller(caller): Caller,
    Path(share): Path<String>,
) -> Result<Response, WebError> {
    let tables = shared_tables(&api, &caller, &share).await?;
    Ok(table_items(&share, tables.into_keys()))
}

/// `GET|HEAD …/tables/{table}/version` (and `HEAD …/tables/{table}`): the latest version.
pub async fn version(
    State(api): State<Arc<SharingApi>>,
    Caller(caller): Caller,
    Path((share, schema, table)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let shared = shared_table(&api, &caller, (&share, &schema, &table), None).await?;
    Ok(with_version(Response::new(Body::empty()), shared.version))
}

/// `GET …/tables/{table}/metadata`: the protocol and metadata lines.
pub async fn metadata(
    State(api): State<Arc<SharingApi>>,
    Caller(caller): Caller,
    Path((share, schema, table)): Path<(String, String, String)>,
) -> Result<Response, WebError> {
    let shared = shared_table(&api, &caller, (&share, &schema, &table), None).await?;
    let lines = [delta::protocol_line(), delta::metadata_line(&shared)];
    Ok(with_version(ndjson(&lines), shared.version))
}

/// The body of a query: what the client hints and which version it wants.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryBody {
    /// A version to read instead of the latest.
    #[serde(default)]
    version: Option<u64>,
    /// Rows the client needs at most; files are handed out until they hold that many.
    #[serde(default)]
    limit_hint: Option<u64>,
}

/// `POST …/tables/{table}/query`: the files of a version, with URLs that expire. The bytes and
/// rows handed out are recorded as one usage record of the channel.
pub async fn query(
    State(api): State<Arc<SharingApi>>,
    Caller(caller): Caller,
    Path((share, schema, table)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let request: QueryBody = if body.is_empty() {
        QueryBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| WebError::BadRequest(format!("malformed query body: {e}")))?
    };
    let shared = shared_table(&api, &caller, (&share, &schema, &table), request.version).await?;
    let expires = expires_in(api.url_ttl);
    let base = api.base_url(&headers);
    let mut lines = vec![delta::protocol_line(), delta::metadata_line(&shared)];
    let (mut rows, mut bytes) = (0u64, 0u64);
    for file in &shared.files {
        if request.limit_hint.is_some_and(|limit| rows >= limit) {
            break;
        }
        let url = match api.delivery.presigned_url(&file.path, api.url_ttl).await {
            Some(presigned) => presigned.map_err(|error| {
                tracing::error!(%error, "cannot presign a shared file's URL");
                WebError::Query(tollgate_planner::PlannerError::Source {
                    dataset: shared.dataset.clone(),
                    message: "the delivery store cannot sign URLs; retry later".to_owned(),
                })
            })?,
            None => {
                let signed = files::sign(&api.signer, &file.path, expires)?;
                format!("{base}/delta-sharing/files/{signed}")
            }
        };
        lines.push(delta::file_line(
            &shared,
            file,
            &url,
            expires.saturating_mul(1000),
        ));
        rows += file.rows;
        bytes += file.size;
    }
    record_handout(&api, &caller, &shared, rows, bytes).await?;
    Ok(with_version(ndjson(&lines), shared.version))
}

/// Records the files handed out of `shared` as one usage record, durable before the
/// answer.
async fn record_handout(
    api: &SharingApi,
    caller: &WebCaller,
    shared: &SharedTableRecord,
    rows: u64,
    bytes: u64,
) -> Result<(), WebError> {
    let now = chrono::Utc::now();
    let id = Uuid::now_v7();
    let record = UsageRecord {
        record_id: id,
        query_id: id,
        part: 0,
        parts: 1,
        tenant: caller.principal.tenant.clone(),
        principal: caller.principal.user.clone(),
        channel: caller.principal.channel.clone(),
        protocol: caller.client.protocol,
        client_address: caller.client.address.clone(),
        application_name: caller.client.application_name.clone(),
        datasets: vec![shared.dataset.clone()],
        started_at: now,
        finished_at: now,
        planning_us: 0,
        execution_us: 0,
        outcome: Outcome::Ok,
        sqlstate: None,
        rows_returned: rows,
        bytes_returned: bytes,
        wire_bytes: bytes,
        bytes_scanned: 0,
        rows_scanned: 0,
        peak_memory: 0,
        spill_bytes: 0,
        sql_hash: String::new(),
        sql_text: Some(format!(
            "delta sharing query {} version {}",
            shared.dataset, shared.version
        )),
        cost: 0.0,
        scans: vec![DatasetUsage {
            dataset: shared.dataset.clone(),
            bytes_scanned: 0,
            rows_scanned: 0,
            bytes_returned: bytes,
            cost: 0.0,
        }],
    };
    api.ledger
        .submit(record)
        .await
        .map_err(|e| WebError::Query(tollgate_planner::PlannerError::Ledger(e)))
}

fn ndjson(lines: &[Value]) -> Response {
    let mut body = String::new();
    for line in lines {
        body.push_str(&line.to_string());
        body.push('\n');
    }
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson; charset=utf-8"),
    );
    response
}

fn with_version(mut response: Response, version: u64) -> Response {
    response
        .headers_mut()
        .insert("delta-table-version", HeaderValue::from(version));
    response
}
