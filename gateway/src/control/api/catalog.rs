//! The tenant's view of the catalog: every dataset it is entitled to, with columns and
//! types as its session shows them, descriptions, prices, size, rows and freshness, and
//! the channels it has.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate_catalog::store::records::{CHANNEL, ChannelRecord, ChannelState};
use tollgate_catalog::{ChannelKind, DatasetId};
use tollgate_planner::dataset_stats::DatasetStats;

use super::{ApiState, Caller, PathParams, QueryParams, profiles};
use crate::control::problem::{CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};
use crate::pgwire::encode::pg_type;

/// Paging of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// At most this many items (1–500, default 100).
    #[serde(default)]
    limit: Option<usize>,
    /// Items to skip.
    #[serde(default)]
    offset: Option<usize>,
}

/// One column as the tenant sees it.
#[derive(Debug, Serialize)]
struct CatalogColumn {
    name: String,
    #[serde(rename = "type")]
    pg_type: String,
    nullable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

/// One dataset of the catalog.
#[derive(Debug, Serialize)]
struct CatalogEntry {
    dataset: String,
    description: String,
    tags: Vec<String>,
    columns: Vec<CatalogColumn>,
    prices: Value,
    /// Size, rows and freshness; `null` if the source does not answer now.
    statistics: Option<DatasetStats>,
    channel_kinds: Vec<&'static str>,
    profiles: Vec<String>,
    channels: Vec<String>,
}

/// The tenant's entitled datasets, as its session shows them.
async fn entries(plane: &ControlPlane, tenant: &str) -> Result<Vec<CatalogEntry>, Problem> {
    let catalog = plane.service.catalog();
    let Some(session) = plane.service.tenant_session(tenant) else {
        return Ok(Vec::new());
    };
    let channels: Vec<ChannelRecord> = plane
        .store
        .list(CHANNEL, Some(tenant))
        .await?
        .iter()
        .map(|document| document.parse())
        .collect::<Result<_, _>>()?;
    let mut kinds = vec![ChannelKind::Postgres.as_str()];
    if plane.endpoints.flight_port.is_some() {
        kinds.push(ChannelKind::Flight.as_str());
    }
    if plane.endpoints.http_base.is_some() {
        kinds.push(ChannelKind::Http.as_str());
        kinds.push(ChannelKind::File.as_str());
    }
    for kind in [ChannelKind::Nats, ChannelKind::Mqtt] {
        if plane.brokers.offers(kind) {
            kinds.push(kind.as_str());
        }
    }
    let profiles = profiles::known(plane).await?;
    let mut entries = Vec::new();
    for table in session.tables() {
        let id = format!("{}.{}", table.schema, table.table);
        let Some(dataset) = DatasetId::parse(&id)
            .ok()
            .and_then(|id| catalog.dataset(&id).cloned())
        else {
            continue;
        };
        let columns = table
            .columns
            .fields()
            .iter()
            .map(|field| CatalogColumn {
                name: field.name().clone(),
                pg_type: pg_type(field.data_type())
                    .map_or_else(|_| "text".to_owned(), |t| t.name().to_owned()),
                nullable: field.is_nullable(),
                description: dataset.column_descriptions.get(field.name()).cloned(),
            })
            .collect();
        entries.push(CatalogEntry {
            dataset: id.clone(),
            description: dataset.description.clone(),
            tags: dataset.tags.clone(),
            columns,
            prices: json!({
                "currency_per_gib_returned": dataset.price_per_gib,
                "currency_per_gib_scanned": dataset.price_per_gib_scanned,
                "per_profile": profiles
                    .iter()
                    .map(|(name, profile)| {
                        (
                            name.clone(),
                            json!({
                                "currency_per_gib_returned": dataset.price_per_gib * profile.price_factor,
                                "currency_per_gib_scanned": dataset.price_per_gib_scanned * profile.price_factor,
                            }),
                        )
                    })
                    .collect::<serde_json::Map<String, Value>>(),
            }),
            statistics: None,
            channel_kinds: kinds.clone(),
            profiles: profiles.keys().cloned().collect(),
            channels: channels
                .iter()
                .filter(|c| {
                    c.state == ChannelState::Active
                        && c.request.datasets.iter().any(|d| d.dataset == id)
                })
                .map(|c| c.id.clone())
                .collect(),
        });
    }
    Ok(entries)
}

/// `GET /v1/catalog`: every entitled dataset, paged.
#[utoipa::path(
    get,
    path = "/v1/catalog",
    tag = "tenant",
    params(Page),
    responses((status = 200, description = "Entitled datasets, paged", body = Object), (status = 400, description = "Bad parameter", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn catalog(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    QueryParams(page): QueryParams<Page>,
) -> Result<Response, Problem> {
    let (tenant, _) = caller.reader()?;
    let all = entries(&state.plane, tenant).await?;
    let limit = page.limit.unwrap_or(100).clamp(1, 500);
    let offset = page.offset.unwrap_or(0);
    let total = all.len();
    let mut items: Vec<CatalogEntry> = all.into_iter().skip(offset).take(limit).collect();
    for item in &mut items {
        with_statistics(&state.plane, item).await;
    }
    let next = (offset + items.len() < total)
        .then(|| format!("/v1/catalog?limit={limit}&offset={}", offset + limit));
    Ok(Json(json!({ "items": items, "total": total, "next": next })).into_response())
}

/// `GET /v1/catalog/{dataset}`.
#[utoipa::path(
    get,
    path = "/v1/catalog/{dataset}",
    tag = "tenant",
    params(("dataset" = String, Path, description = "Dataset id, domain.name")),
    responses((status = 200, description = "One entitled dataset", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn catalog_entry(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    PathParams(dataset): PathParams<String>,
) -> Result<Response, Problem> {
    let (tenant, _) = caller.reader()?;
    let mut entry = entries(&state.plane, tenant)
        .await?
        .into_iter()
        .find(|entry| entry.dataset == dataset)
        .ok_or_else(|| Problem::NotFound(format!("dataset `{dataset}`")))?;
    with_statistics(&state.plane, &mut entry).await;
    Ok(Json(entry).into_response())
}

/// Adds the dataset's size, rows and freshness to `entry`.
async fn with_statistics(plane: &ControlPlane, entry: &mut CatalogEntry) {
    if let Ok(id) = DatasetId::parse(&entry.dataset) {
        entry.statistics = plane.service.dataset_stats(&id).await;
    }
}
