//! The provider's datasets: registered from a source path with their schema read from the
//! source or declared, described and priced; checked (the source is read) before stored.
//! A stored dataset with the id of a configured one replaces it, so the file's datasets can
//! be described and priced here too.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use datafusion::arrow::datatypes::SchemaRef;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_catalog::store::records::{ChannelState, DATASET, DatasetRecord};
use tollgate_catalog::store::state::ControlState;
use tollgate_catalog::store::{Expect, Write};
use tollgate_catalog::{
    Catalog, ColumnOptions, DatasetId, DatasetKind, DatasetOptions, ForeignKeyOptions,
};

use super::{Admin, ApiState, JsonBody, PathParams, audited};
use crate::control::problem::{BodyProblems, CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};
use crate::pgwire::encode::pg_type;

/// Body of `PUT /v1/admin/datasets/{id}`: a dataset as `[[datasets]]` declares one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetBody {
    /// A source of the configuration file.
    source: String,
    /// Where its rows are within the source: files (a directory ends in `/`, or one
    /// `.parquet` file), a postgres source's `schema.table`, or an Athena table.
    path: String,
    /// The columns, `{ "name", "type" }` in SQL types; absent: read from the source.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    columns: Option<Vec<ColumnOptions>>,
    /// Hive-style partition columns, outermost directory first.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    partition_columns: Vec<ColumnOptions>,
    /// What it holds, shown to tenants.
    #[serde(default)]
    description: String,
    /// What each column holds, by name.
    #[serde(default)]
    column_descriptions: BTreeMap<String, String>,
    /// Labels for browsing.
    #[serde(default)]
    tags: Vec<String>,
    /// Price per GiB returned.
    #[serde(default)]
    price_per_gib: f64,
    /// Price per GiB scanned.
    #[serde(default)]
    price_per_gib_scanned: f64,
    /// For a postgres table: the column whose value grows as rows are added, by which
    /// push channels find new rows.
    #[serde(default)]
    watermark: Option<String>,
    /// `table` (the default) or `view`, as tenants' catalogs list it.
    #[serde(default)]
    #[schema(value_type = String)]
    kind: DatasetKind,
    /// The columns identifying a row, in key order.
    #[serde(default)]
    primary_key: Vec<String>,
    /// Keys of other datasets it holds: `{ "columns", "references", "referenced_columns" }`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    foreign_keys: Vec<ForeignKeyOptions>,
}

/// Body of `PATCH /v1/admin/datasets/{id}`: what tenants are shown and charged.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetPatch {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    column_descriptions: Option<BTreeMap<String, String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    price_per_gib: Option<f64>,
    #[serde(default)]
    price_per_gib_scanned: Option<f64>,
}

/// The provider's view of a dataset: as declared, where it comes from, whether it is
/// served; with `columns` when they were read from the source.
fn view(dataset: &DatasetOptions, configured: bool, stored: bool, columns: Option<Value>) -> Value {
    let mut view = json!({
        "id": dataset.id,
        "source": dataset.source,
        "path": dataset.path,
        "declared_columns": dataset.columns,
        "partition_columns": dataset.partition_columns,
        "description": dataset.description,
        "column_descriptions": dataset.column_descriptions,
        "tags": dataset.tags,
        "price_per_gib": dataset.price_per_gib,
        "price_per_gib_scanned": dataset.price_per_gib_scanned,
        "kind": dataset.kind,
        "primary_key": dataset.primary_key,
        "foreign_keys": dataset.foreign_keys,
        "configured": configured,
        "stored": stored,
    });
    if let Some(columns) = columns {
        view["columns"] = columns;
    }
    view
}

/// The merged datasets: (options, configured, stored).
async fn merged(plane: &ControlPlane) -> Result<Vec<(DatasetOptions, bool, bool)>, Problem> {
    let state = ControlState::load(&plane.store).await?;
    let base = plane.sync.base();
    let options = state.apply_to(&base, Utc::now());
    Ok(options
        .datasets
        .into_iter()
        .map(|dataset| {
            let configured = base.datasets.iter().any(|d| d.id == dataset.id);
            let stored = state.datasets.iter().any(|d| d.dataset.id == dataset.id);
            (dataset, configured, stored)
        })
        .collect())
}

/// Checks `dataset` in the catalog it would form, and reads its columns from its source.
/// A dataset tenants are entitled to keeps every column it has, with its type, so their
/// grants and channels go on planning.
async fn checked_columns(plane: &ControlPlane, dataset: &DatasetOptions) -> Result<Value, Problem> {
    let escapes =
        dataset.path.starts_with('/') || dataset.path.split(['/', '\\']).any(|part| part == "..");
    if escapes {
        return Err(Problem::Unprocessable(
            "`path` is relative to the source and stays within it".to_owned(),
        ));
    }
    let prices = [dataset.price_per_gib, dataset.price_per_gib_scanned];
    if prices.iter().any(|p| !p.is_finite() || *p < 0.0) {
        return Err(Problem::Unprocessable(
            "prices are finite and not negative".to_owned(),
        ));
    }
    let base = plane.sync.base();
    if !base.sources.contains_key(&dataset.source) {
        return Err(Problem::Unprocessable(format!(
            "no source `{}` in the configuration",
            dataset.source
        )));
    }
    let mut state = ControlState::load(&plane.store).await?;
    state.datasets.retain(|d| d.dataset.id != dataset.id);
    state.datasets.push(DatasetRecord {
        dataset: dataset.clone(),
        updated_at: Utc::now(),
    });
    let catalog = Catalog::from_options(&state.apply_to(&base, Utc::now()))
        .map_err(|e| Problem::Unprocessable(e.to_string()))?;
    let id = DatasetId::parse(&dataset.id).map_err(Problem::Unprocessable)?;
    let found = catalog
        .dataset(&id)
        .ok_or_else(|| Problem::Unprocessable(format!("dataset `{id}` did not build")))?;
    let schema = plane
        .service
        .probe_dataset(found)
        .await
        .map_err(|e| Problem::Unprocessable(e.to_string()))?;
    keeps_entitled_columns(plane, &id, &schema).await?;
    Ok(schema
        .fields()
        .iter()
        .map(|field| {
            json!({
                "name": field.name(),
                "type": pg_type(field.data_type()).map_or_else(|_| "text".to_owned(), |t| t.name().to_owned()),
                "nullable": field.is_nullable(),
            })
        })
        .collect())
}

/// Whether `schema` keeps every column, with its type, of the served dataset `id` when a
/// tenant is entitled to it.
async fn keeps_entitled_columns(
    plane: &ControlPlane,
    id: &DatasetId,
    schema: &SchemaRef,
) -> Result<(), Problem> {
    let catalog = plane.service.catalog();
    let Some(served) = catalog.dataset(id) else {
        return Ok(());
    };
    let entitled = catalog
        .tenants()
        .any(|t| catalog.grants(&t.id).iter().any(|g| g.dataset == *id));
    if !entitled {
        return Ok(());
    }
    // A source that cannot be read now constrains nothing.
    let Ok(before) = plane.service.probe_dataset(served).await else {
        return Ok(());
    };
    for column in before.fields() {
        let kept = schema
            .field_with_name(column.name())
            .is_ok_and(|now| now.data_type() == column.data_type());
        if !kept {
            return Err(Problem::Unprocessable(format!(
                "tenants are entitled to `{id}`: its column `{}` ({}) must stay as it is",
                column.name(),
                column.data_type()
            )));
        }
    }
    Ok(())
}

/// Stores `dataset` after checking it; returns whether it is new, and its columns.
async fn store_checked(
    plane: &ControlPlane,
    actor: &str,
    action: &str,
    dataset: DatasetOptions,
) -> Result<(bool, Value), Problem> {
    let id = dataset.id.clone();
    let existing = plane.store.get(DATASET, &id).await?;
    let configured = plane.sync.base().datasets.iter().any(|d| d.id == id);
    let created = existing.is_none() && !configured;
    let expect = existing
        .as_ref()
        .map_or(Expect::Absent, |d| Expect::Revision(d.revision));
    let columns = checked_columns(plane, &dataset).await;
    let checked = columns.as_ref().map_err(Clone::clone).map(|_| {
        let record = DatasetRecord {
            dataset,
            updated_at: Utc::now(),
        };
        vec![Write::put(DATASET, &id, "", &record, expect)]
    });
    audited(plane, actor, action, &id, checked).await?;
    Ok((created, columns?))
}

/// `GET /v1/admin/datasets`: the configured and registered datasets.
#[utoipa::path(
    get,
    path = "/v1/admin/datasets",
    tag = "admin",
    responses((status = 200, description = "Every dataset", body = Object), CallerProblems)
)]
pub async fn datasets(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
) -> Result<Response, Problem> {
    let items: Vec<Value> = merged(&state.plane)
        .await?
        .iter()
        .map(|(dataset, configured, stored)| view(dataset, *configured, *stored, None))
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// `GET /v1/admin/datasets/{id}`: one, with its columns read from the source.
#[utoipa::path(
    get,
    path = "/v1/admin/datasets/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Dataset id, domain.name")),
    responses((status = 200, description = "The dataset", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn dataset(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let (dataset, configured, stored) = merged(plane)
        .await?
        .into_iter()
        .find(|(d, ..)| d.id == id)
        .ok_or_else(|| Problem::NotFound(format!("dataset `{id}`")))?;
    let columns = match checked_columns(plane, &dataset).await {
        Ok(columns) => columns,
        Err(problem) => json!({ "unreadable": problem.to_string() }),
    };
    Ok(Json(view(&dataset, configured, stored, Some(columns))).into_response())
}

/// `PUT /v1/admin/datasets/{id}`: registers (or replaces) a dataset; its source is read
/// first (its files' schema, or its table's), and a dataset that cannot be read is refused.
#[utoipa::path(
    put,
    path = "/v1/admin/datasets/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Dataset id, domain.name")),
    request_body = DatasetBody,
    responses((status = 201, description = "Registered", body = Object), (status = 200, description = "Replaced", body = Object), (status = 422, description = "Not acceptable (bad id, unknown source, unreadable files)", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Changed concurrently", body = ProblemBody, content_type = "application/problem+json"), BodyProblems, CallerProblems)
)]
pub async fn put_dataset(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<DatasetBody>,
) -> Result<Response, Problem> {
    let dataset = DatasetOptions {
        id: id.clone(),
        source: body.source,
        path: body.path,
        format: "parquet".to_owned(),
        columns: body.columns,
        partition_columns: body.partition_columns,
        description: body.description,
        column_descriptions: body.column_descriptions,
        tags: body.tags,
        price_per_gib: body.price_per_gib,
        price_per_gib_scanned: body.price_per_gib_scanned,
        watermark: body.watermark,
        kind: body.kind,
        primary_key: body.primary_key,
        foreign_keys: body.foreign_keys,
    };
    let (created, columns) =
        store_checked(&state.plane, &actor, "dataset.put", dataset.clone()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let configured = state.plane.sync.base().datasets.iter().any(|d| d.id == id);
    Ok((
        status,
        Json(view(&dataset, configured, true, Some(columns))),
    )
        .into_response())
}

/// `PATCH /v1/admin/datasets/{id}`: description, tags and prices; of a configured dataset
/// too (stored beside it, replacing the file's).
#[utoipa::path(
    patch,
    path = "/v1/admin/datasets/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Dataset id, domain.name")),
    request_body = DatasetPatch,
    responses((status = 200, description = "Updated", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 422, description = "Not acceptable", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Changed concurrently", body = ProblemBody, content_type = "application/problem+json"), BodyProblems, CallerProblems)
)]
pub async fn patch_dataset(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    JsonBody(patch): JsonBody<DatasetPatch>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let (mut dataset, configured, _) = merged(plane)
        .await?
        .into_iter()
        .find(|(d, ..)| d.id == id)
        .ok_or_else(|| Problem::NotFound(format!("dataset `{id}`")))?;
    if let Some(description) = patch.description {
        dataset.description = description;
    }
    if let Some(descriptions) = patch.column_descriptions {
        dataset.column_descriptions = descriptions;
    }
    if let Some(tags) = patch.tags {
        dataset.tags = tags;
    }
    if let Some(price) = patch.price_per_gib {
        dataset.price_per_gib = price;
    }
    if let Some(price) = patch.price_per_gib_scanned {
        dataset.price_per_gib_scanned = price;
    }
    let (_, columns) = store_checked(plane, &actor, "dataset.patch", dataset.clone()).await?;
    Ok(Json(view(&dataset, configured, true, Some(columns))).into_response())
}

/// `DELETE /v1/admin/datasets/{id}`: a registered dataset no tenant is entitled to; for a
/// configured one, the stored changes (the file's dataset is served again).
#[utoipa::path(
    delete,
    path = "/v1/admin/datasets/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Dataset id, domain.name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Still entitled, or declared in the configuration file", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn delete_dataset(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let base = plane.sync.base();
    let configured = base.datasets.iter().any(|d| d.id == id);
    let state = ControlState::load(&plane.store).await?;
    let mut users: Vec<String> = base
        .grants
        .iter()
        .filter(|g| g.dataset == id)
        .map(|g| g.tenant.clone())
        .chain(
            state
                .entitlements
                .iter()
                .filter(|e| e.dataset == id)
                .map(|e| e.tenant.clone()),
        )
        .chain(
            state
                .channels
                .iter()
                .filter(|c| c.state == ChannelState::Active)
                .filter(|c| c.request.datasets.iter().any(|d| d.dataset == id))
                .map(|c| c.tenant.clone()),
        )
        .collect();
    users.sort();
    users.dedup();
    let checked = match plane.store.get(DATASET, &id).await? {
        None if configured => Err(Problem::Conflict(format!(
            "dataset `{id}` is declared in the configuration file; remove it there"
        ))),
        None => Err(Problem::NotFound(format!("dataset `{id}`"))),
        Some(_) if !configured && !users.is_empty() => Err(Problem::Conflict(format!(
            "tenants {} are entitled to `{id}`; remove their entitlements first",
            users.join(", ")
        ))),
        Some(document) => Ok(vec![Write::Delete {
            kind: DATASET,
            id: id.clone(),
            expect: Expect::Revision(document.revision),
        }]),
    };
    audited(plane, &actor, "dataset.delete", &id, checked).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
