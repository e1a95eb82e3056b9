//! The provider's routes for entitlements (what each tenant may subscribe to, checked
//! before it is stored) and for reading the audit trail.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_catalog::store::records::{ENTITLEMENT, EntitlementRecord};
use tollgate_catalog::store::state::ControlState;
use tollgate_catalog::store::{EventQuery, Expect, Write};
use tollgate_catalog::{Catalog, GrantColumnOptions};

use super::{Admin, ApiState, JsonBody, PathParams, QueryParams, audited};
use crate::control::problem::{BodyProblems, CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};

/// `GET /v1/admin/tenants/{id}/entitlements`: configured and stored.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{id}/entitlements",
    tag = "admin",
    params(("id" = String, Path, description = "Id")),
    responses((status = 200, description = "Configured and stored entitlements", body = Object), CallerProblems)
)]
pub async fn entitlements(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let mut items: Vec<Value> = plane
        .sync
        .base()
        .grants
        .iter()
        .filter(|g| g.tenant == id)
        .map(|g| json!({ "dataset": g.dataset, "columns": g.columns, "row_filter": g.row_filter, "configured": true }))
        .collect();
    for document in plane.store.list(ENTITLEMENT, Some(&id)).await? {
        let e: EntitlementRecord = document.parse()?;
        items.push(json!({ "dataset": e.dataset, "columns": e.columns, "row_filter": e.row_filter, "configured": false }));
    }
    Ok(Json(json!({ "items": items })).into_response())
}

/// Body of `PUT /v1/admin/tenants/{id}/entitlements/{dataset}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitlementBody {
    #[serde(default)]
    columns: Option<Vec<GrantColumnOptions>>,
    #[serde(default)]
    row_filter: Option<String>,
}

/// `PUT /v1/admin/tenants/{id}/entitlements/{dataset}`: what the tenant may subscribe to,
/// checked (columns, expressions, filter) before it is stored.
#[utoipa::path(
    put,
    path = "/v1/admin/tenants/{id}/entitlements/{dataset}",
    tag = "admin",
    params(("id" = String, Path, description = "Id"), ("dataset" = String, Path, description = "Dataset id, domain.name")),
    request_body = EntitlementBody,
    responses((status = 200, description = "Stored", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 422, description = "Not acceptable", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), BodyProblems, CallerProblems)
)]
pub async fn put_entitlement(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams((id, dataset)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<EntitlementBody>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let record = EntitlementRecord {
        tenant: id.clone(),
        dataset: dataset.clone(),
        columns: body.columns,
        row_filter: body.row_filter,
    };
    let checked = check_entitlement(plane, &record).await.map(|()| {
        vec![Write::put(
            ENTITLEMENT,
            EntitlementRecord::key(&id, &dataset),
            &id,
            &record,
            Expect::Any,
        )]
    });
    audited(
        plane,
        &actor,
        "entitlement.put",
        &format!("{id}/{dataset}"),
        checked,
    )
    .await?;
    Ok(Json(json!({ "tenant": id, "dataset": dataset, "columns": record.columns, "row_filter": record.row_filter })).into_response())
}

/// Whether the catalog with `record` added is valid and the tenant's session builds.
async fn check_entitlement(
    plane: &ControlPlane,
    record: &EntitlementRecord,
) -> Result<(), Problem> {
    let base = plane.sync.base();
    if base
        .grants
        .iter()
        .any(|g| g.tenant == record.tenant && g.dataset == record.dataset)
    {
        return Err(Problem::Conflict(
            "this entitlement is declared in the configuration file".to_owned(),
        ));
    }
    let mut state = ControlState::load(&plane.store).await?;
    state
        .entitlements
        .retain(|e| !(e.tenant == record.tenant && e.dataset == record.dataset));
    let options = state.apply_to(&base, Utc::now());
    if !options.tenants.iter().any(|t| t.id == record.tenant) {
        return Err(Problem::NotFound(format!("tenant `{}`", record.tenant)));
    }
    if !options.datasets.iter().any(|d| d.id == record.dataset) {
        return Err(Problem::NotFound(format!("dataset `{}`", record.dataset)));
    }
    state.entitlements.push(record.clone());
    let catalog = Catalog::from_options(&state.apply_to(&base, Utc::now()))
        .map_err(|e| Problem::Unprocessable(e.to_string()))?;
    plane
        .service
        .check_tenant(&catalog, &record.tenant)
        .await
        .map_err(|e| Problem::Unprocessable(e.to_string()))
}

/// `DELETE /v1/admin/tenants/{id}/entitlements/{dataset}`: channels that narrow it stop.
#[utoipa::path(
    delete,
    path = "/v1/admin/tenants/{id}/entitlements/{dataset}",
    tag = "admin",
    params(("id" = String, Path, description = "Id"), ("dataset" = String, Path, description = "Dataset id, domain.name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn delete_entitlement(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams((id, dataset)): PathParams<(String, String)>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let key = EntitlementRecord::key(&id, &dataset);
    let checked = match plane.store.get(ENTITLEMENT, &key).await? {
        Some(_) => Ok(vec![Write::Delete {
            kind: ENTITLEMENT,
            id: key,
            expect: Expect::Any,
        }]),
        None => Err(Problem::NotFound(format!(
            "entitlement of `{id}` to `{dataset}`"
        ))),
    };
    audited(
        plane,
        &actor,
        "entitlement.delete",
        &format!("{id}/{dataset}"),
        checked,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Parameters of `GET /v1/admin/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[serde(default)]
    after: Option<i64>,
}

/// `GET /v1/admin/audit?after=`: admin calls in order.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    params(AuditQuery),
    responses((status = 200, description = "Admin calls in order", body = Object), (status = 400, description = "Bad parameter", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn audit(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Response, Problem> {
    let events = state
        .plane
        .store
        .events(EventQuery {
            tenant: None,
            topic: "audit",
            after: query.after.unwrap_or(0),
            limit: 500,
        })
        .await?;
    let items: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let mut body = e.body;
            body["seq"] = json!(e.seq);
            body
        })
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}
