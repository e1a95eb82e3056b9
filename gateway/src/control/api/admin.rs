//! The provider's routes: tenants, their API keys and entitlements, and the audit trail.
//! Every call is audited: who (the admin key), what, and the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_catalog::store::records::{
    API_KEY, ApiKeyRecord, CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, ENTITLEMENT,
    EntitlementRecord, TENANT, TenantRecord,
};
use tollgate_catalog::store::state::ControlState;
use tollgate_catalog::store::{EventQuery, Expect, Write};
use tollgate_catalog::{Catalog, GrantColumnOptions};

use super::{ApiState, Caller, JsonBody};
use crate::control::keys;
use crate::control::{ControlPlane, Problem};

/// Writes `writes` with an audit event of `action` on `target` by `actor`; a refused call
/// is audited too.
async fn audited(
    plane: &ControlPlane,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Result<Vec<Write>, Problem>,
) -> Result<(), Problem> {
    let (mut writes, result) = match outcome {
        Ok(writes) => (writes, Ok(())),
        Err(problem) => (Vec::new(), Err(problem)),
    };
    let audit = json!({
        "at": Utc::now(),
        "actor": actor,
        "action": action,
        "target": target,
        "outcome": match &result { Ok(()) => "ok".to_owned(), Err(p) => p.type_uri().to_owned() },
    });
    writes.push(Write::event("", "audit", &audit));
    plane.store.write(writes).await?;
    tracing::info!(target: "tollgate::audit", event = "admin", actor, action, target, outcome = %audit["outcome"], "admin call");
    if result.is_ok() {
        plane.sync.refresh().await?;
    }
    result
}

/// Body of `POST /v1/admin/tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    id: String,
    profile: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `POST /v1/admin/tenants`.
pub async fn create_tenant(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTenant>,
) -> Result<Response, Problem> {
    let actor = caller.admin()?;
    let plane = &state.plane;
    let base = plane.sync.base();
    let checked = if !valid_id(&body.id) {
        Err(Problem::Unprocessable(
            "`id` must be lower-case letters, digits, `_` or `-`, starting with a letter"
                .to_owned(),
        ))
    } else if !base.profiles.contains_key(&body.profile) {
        Err(Problem::Unprocessable(format!(
            "no profile `{}`",
            body.profile
        )))
    } else if base.tenants.iter().any(|t| t.id == body.id)
        || plane.store.get(TENANT, &body.id).await?.is_some()
    {
        Err(Problem::Conflict(format!("tenant `{}` exists", body.id)))
    } else {
        let record = TenantRecord {
            id: body.id.clone(),
            profile: body.profile.clone(),
            attributes: body.attributes.clone(),
            suspended: false,
            webhook: None,
            nats_subject: None,
            created_at: Utc::now(),
        };
        Ok(vec![Write::put(
            TENANT,
            &record.id,
            &record.id,
            &record,
            Expect::Absent,
        )])
    };
    audited(plane, actor, "tenant.create", &body.id, checked).await?;
    Ok((
        StatusCode::CREATED,
        Json(tenant_view(plane, &body.id).await?),
    )
        .into_response())
}

async fn tenant_view(plane: &ControlPlane, id: &str) -> Result<Value, Problem> {
    let stored: Option<TenantRecord> = plane
        .store
        .get(TENANT, id)
        .await?
        .map(|d| d.parse())
        .transpose()?;
    let configured = plane.sync.base().tenants.iter().find(|t| t.id == id);
    match (configured, stored) {
        (None, None) => Err(Problem::NotFound(format!("tenant `{id}`"))),
        (configured, stored) => Ok(json!({
            "id": id,
            "profile": configured.map(|t| t.profile.clone()).or(stored.as_ref().map(|t| t.profile.clone())),
            "attributes": configured.map(|t| t.attributes.clone()).or(stored.as_ref().map(|t| t.attributes.clone())),
            "suspended": stored.as_ref().is_some_and(|t| t.suspended),
            "configured": configured.is_some(),
        })),
    }
}

/// `GET /v1/admin/tenants`.
pub async fn tenants(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Response, Problem> {
    caller.admin()?;
    let plane = &state.plane;
    let mut ids: Vec<String> = plane
        .sync
        .base()
        .tenants
        .iter()
        .map(|t| t.id.clone())
        .collect();
    for document in plane.store.list(TENANT, None).await? {
        if !ids.contains(&document.id) {
            ids.push(document.id);
        }
    }
    let mut items = Vec::new();
    for id in ids {
        items.push(tenant_view(plane, &id).await?);
    }
    Ok(Json(json!({ "items": items })).into_response())
}

/// `GET /v1/admin/tenants/{id}`.
pub async fn tenant(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.admin()?;
    Ok(Json(tenant_view(&state.plane, &id).await?).into_response())
}

/// Body of `PATCH /v1/admin/tenants/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    #[serde(default)]
    suspended: Option<bool>,
    #[serde(default)]
    profile: Option<String>,
}

/// `PATCH /v1/admin/tenants/{id}`: suspend or resume (every front end refuses a suspended
/// tenant's logins and keys, and its sessions end), or change a stored tenant's profile.
pub async fn update_tenant(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(update): JsonBody<TenantUpdate>,
) -> Result<Response, Problem> {
    let actor = caller.admin()?;
    let plane = &state.plane;
    let configured = plane
        .sync
        .base()
        .tenants
        .iter()
        .find(|t| t.id == id)
        .cloned();
    let stored = plane.store.get(TENANT, &id).await?;
    let checked = match (configured, stored) {
        (None, None) => Err(Problem::NotFound(format!("tenant `{id}`"))),
        (configured, stored) => {
            let (mut record, expect) = match &stored {
                Some(document) => (
                    document.parse::<TenantRecord>()?,
                    Expect::Revision(document.revision),
                ),
                None => {
                    let configured = configured.as_ref().ok_or(Problem::Unavailable)?;
                    (
                        TenantRecord {
                            id: id.clone(),
                            profile: configured.profile.clone(),
                            attributes: configured.attributes.clone(),
                            suspended: false,
                            webhook: None,
                            nats_subject: None,
                            created_at: Utc::now(),
                        },
                        Expect::Absent,
                    )
                }
            };
            if let Some(suspended) = update.suspended {
                record.suspended = suspended;
            }
            match update.profile {
                Some(profile) if !plane.sync.base().profiles.contains_key(&profile) => {
                    Err(Problem::Unprocessable(format!("no profile `{profile}`")))
                }
                Some(_) if configured.is_some() => Err(Problem::Unprocessable(
                    "the profile of a tenant declared in the configuration file is changed there"
                        .to_owned(),
                )),
                profile => {
                    if let Some(profile) = profile {
                        record.profile = profile;
                    }
                    Ok(vec![Write::put(TENANT, &id, &id, &record, expect)])
                }
            }
        }
    };
    audited(plane, actor, "tenant.update", &id, checked).await?;
    Ok(Json(tenant_view(plane, &id).await?).into_response())
}

/// `DELETE /v1/admin/tenants/{id}`: a stored tenant, its keys, entitlements, channels and
/// logins. Its usage stays in the ledger.
pub async fn delete_tenant(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let actor = caller.admin()?;
    let plane = &state.plane;
    let checked = if plane.sync.base().tenants.iter().any(|t| t.id == id) {
        Err(Problem::Conflict(format!(
            "tenant `{id}` is declared in the configuration file; suspend it here or remove it there"
        )))
    } else if plane.store.get(TENANT, &id).await?.is_none() {
        Err(Problem::NotFound(format!("tenant `{id}`")))
    } else {
        let mut writes = vec![Write::Delete {
            kind: TENANT,
            id: id.clone(),
            expect: Expect::Any,
        }];
        for kind in [ENTITLEMENT, CREDENTIAL] {
            for document in plane.store.list(kind, Some(&id)).await? {
                writes.push(Write::Delete {
                    kind,
                    id: document.id,
                    expect: Expect::Any,
                });
            }
        }
        for document in plane.store.list(CHANNEL, Some(&id)).await? {
            let channel: ChannelRecord = document.parse()?;
            let revoked = ChannelRecord {
                state: ChannelState::Revoked,
                revoked_at: Some(Utc::now()),
                ..channel
            };
            writes.push(Write::put(
                CHANNEL,
                &document.id,
                &id,
                &revoked,
                Expect::Any,
            ));
        }
        for document in plane.store.list(API_KEY, Some(&id)).await? {
            let key: ApiKeyRecord = document.parse()?;
            writes.push(Write::put(
                API_KEY,
                &document.id,
                &id,
                &ApiKeyRecord {
                    revoked: true,
                    ..key
                },
                Expect::Any,
            ));
        }
        Ok(writes)
    };
    audited(plane, actor, "tenant.delete", &id, checked).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/admin/tenants/{id}/api-keys`: a new tenant key, shown once.
pub async fn create_key(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let actor = caller.admin()?;
    let plane = &state.plane;
    let (key_id, text, hash) = keys::generate().map_err(|_| Problem::Unavailable)?;
    let exists = plane.service.catalog().tenant(&id).is_some()
        || plane.store.get(TENANT, &id).await?.is_some();
    let checked = if exists {
        let record = ApiKeyRecord {
            id: key_id.clone(),
            tenant: Some(id.clone()),
            secret_sha256: hash,
            revoked: false,
            created_at: Utc::now(),
        };
        Ok(vec![Write::put(
            API_KEY,
            &key_id,
            &id,
            &record,
            Expect::Absent,
        )])
    } else {
        Err(Problem::NotFound(format!("tenant `{id}`")))
    };
    audited(
        plane,
        actor,
        "api_key.create",
        &format!("{id}/{key_id}"),
        checked,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": key_id, "tenant": id, "key": text })),
    )
        .into_response())
}

/// `DELETE /v1/admin/api-keys/{id}`.
pub async fn revoke_key(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let actor = caller.admin()?;
    let plane = &state.plane;
    let checked = match plane.store.get(API_KEY, &id).await? {
        Some(document) => {
            let key: ApiKeyRecord = document.parse()?;
            let tenant = key.tenant.clone().unwrap_or_default();
            Ok(vec![Write::put(
                API_KEY,
                &id,
                tenant,
                &ApiKeyRecord {
                    revoked: true,
                    ..key
                },
                Expect::Revision(document.revision),
            )])
        }
        None => Err(Problem::NotFound(format!("API key `{id}`"))),
    };
    audited(plane, actor, "api_key.revoke", &id, checked).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/admin/tenants/{id}/entitlements`: configured and stored.
pub async fn entitlements(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.admin()?;
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitlementBody {
    #[serde(default)]
    columns: Option<Vec<GrantColumnOptions>>,
    #[serde(default)]
    row_filter: Option<String>,
}

/// `PUT /v1/admin/tenants/{id}/entitlements/{dataset}`: what the tenant may subscribe to,
/// checked (columns, expressions, filter) before it is stored.
pub async fn put_entitlement(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((id, dataset)): Path<(String, String)>,
    JsonBody(body): JsonBody<EntitlementBody>,
) -> Result<Response, Problem> {
    let actor = caller.admin()?;
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
        actor,
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
    let options = state.apply_to(base, Utc::now());
    if !options.tenants.iter().any(|t| t.id == record.tenant) {
        return Err(Problem::NotFound(format!("tenant `{}`", record.tenant)));
    }
    if !options.datasets.iter().any(|d| d.id == record.dataset) {
        return Err(Problem::NotFound(format!("dataset `{}`", record.dataset)));
    }
    state.entitlements.push(record.clone());
    let catalog = Catalog::from_options(&state.apply_to(base, Utc::now()))
        .map_err(|e| Problem::Unprocessable(e.to_string()))?;
    plane
        .service
        .check_tenant(&catalog, &record.tenant)
        .await
        .map_err(|e| Problem::Unprocessable(e.to_string()))
}

/// `DELETE /v1/admin/tenants/{id}/entitlements/{dataset}`: channels that narrow it stop.
pub async fn delete_entitlement(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((id, dataset)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let actor = caller.admin()?;
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
        actor,
        "entitlement.delete",
        &format!("{id}/{dataset}"),
        checked,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Parameters of `GET /v1/admin/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    after: Option<i64>,
}

/// `GET /v1/admin/audit?after=`: admin calls in order.
pub async fn audit(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Response, Problem> {
    caller.admin()?;
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
