//! The provider's routes: tenants, their API keys and entitlements, and the audit trail.
//! Every call is audited: who (the admin key), what, and the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_catalog::store::records::{
    API_KEY, ApiKeyRecord, CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, ENTITLEMENT, TENANT,
    TenantRecord,
};
use tollgate_catalog::store::{Expect, Write};

use super::{Admin, ApiState, JsonBody, PathParams, audited, profiles};
use crate::control::keys;
use crate::control::problem::{BodyProblems, CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};

/// Body of `POST /v1/admin/tenants`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    id: String,
    profile: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// Web origins whose pages may call the Web-API with the tenant's credentials.
    #[serde(default)]
    allowed_origins: Vec<String>,
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `POST /v1/admin/tenants`.
#[utoipa::path(
    post,
    path = "/v1/admin/tenants",
    tag = "admin",
    request_body = NewTenant,
    responses((status = 201, description = "Created", body = Object), (status = 422, description = "Not acceptable", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), BodyProblems, CallerProblems)
)]
pub async fn create_tenant(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    JsonBody(body): JsonBody<NewTenant>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let base = plane.sync.base();
    let checked = if !valid_id(&body.id) {
        Err(Problem::Unprocessable(
            "`id` must be lower-case letters, digits, `_` or `-`, starting with a letter"
                .to_owned(),
        ))
    } else if !profiles::known(plane).await?.contains_key(&body.profile) {
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
            allowed_origins: body.allowed_origins.clone(),
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
    audited(plane, &actor, "tenant.create", &body.id, checked).await?;
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
    let base = plane.sync.base();
    let configured = base.tenants.iter().find(|t| t.id == id);
    match (configured, stored) {
        (None, None) => Err(Problem::NotFound(format!("tenant `{id}`"))),
        (configured, stored) => Ok(json!({
            "id": id,
            "profile": configured.map(|t| t.profile.clone()).or(stored.as_ref().map(|t| t.profile.clone())),
            "attributes": configured.map(|t| t.attributes.clone()).or(stored.as_ref().map(|t| t.attributes.clone())),
            "allowed_origins": configured.map(|t| t.allowed_origins.clone()).or(stored.as_ref().map(|t| t.allowed_origins.clone())),
            "suspended": stored.as_ref().is_some_and(|t| t.suspended),
            "configured": configured.is_some(),
        })),
    }
}

/// `GET /v1/admin/tenants`.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants",
    tag = "admin",
    responses((status = 200, description = "Every tenant", body = Object), CallerProblems)
)]
pub async fn tenants(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
) -> Result<Response, Problem> {
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
#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Id")),
    responses((status = 200, description = "The tenant", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn tenant(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    Ok(Json(tenant_view(&state.plane, &id).await?).into_response())
}

/// Body of `PATCH /v1/admin/tenants/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    #[serde(default)]
    suspended: Option<bool>,
    #[serde(default)]
    profile: Option<String>,
    /// Web origins whose pages may call the Web-API with the tenant's credentials.
    #[serde(default)]
    allowed_origins: Option<Vec<String>>,
}

/// `PATCH /v1/admin/tenants/{id}`: suspend or resume (every front end refuses a suspended
/// tenant's logins and keys, and its sessions end), or change a stored tenant's profile.
#[utoipa::path(
    patch,
    path = "/v1/admin/tenants/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Id")),
    request_body = TenantUpdate,
    responses((status = 200, description = "Updated", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 422, description = "Not acceptable", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), BodyProblems, CallerProblems)
)]
pub async fn update_tenant(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
    JsonBody(update): JsonBody<TenantUpdate>,
) -> Result<Response, Problem> {
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
                            allowed_origins: configured.allowed_origins.clone(),
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
            let origins_configured = update.allowed_origins.is_some() && configured.is_some();
            if let Some(origins) = update.allowed_origins {
                record.allowed_origins = origins;
            }
            match update.profile {
                _ if origins_configured => Err(Problem::Unprocessable(
                    "the allowed origins of a tenant declared in the configuration file are changed there"
                        .to_owned(),
                )),
                Some(profile) if !profiles::known(plane).await?.contains_key(&profile) => {
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
    audited(plane, &actor, "tenant.update", &id, checked).await?;
    Ok(Json(tenant_view(plane, &id).await?).into_response())
}

/// `DELETE /v1/admin/tenants/{id}`: a stored tenant, its keys, entitlements, channels and
/// logins. Its usage stays in the ledger.
#[utoipa::path(
    delete,
    path = "/v1/admin/tenants/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn delete_tenant(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
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
    audited(plane, &actor, "tenant.delete", &id, checked).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/admin/tenants/{id}/api-keys`: a new tenant key, shown once.
#[utoipa::path(
    post,
    path = "/v1/admin/tenants/{id}/api-keys",
    tag = "admin",
    params(("id" = String, Path, description = "Id")),
    responses((status = 201, description = "The key, shown once", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn create_key(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
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
        &actor,
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
#[utoipa::path(
    delete,
    path = "/v1/admin/api-keys/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "Id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn revoke_key(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
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
    audited(plane, &actor, "api_key.revoke", &id, checked).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
