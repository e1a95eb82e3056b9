//! The provider's performance profiles: set (a new one, or one replacing the configured
//! profile of its name), listed and removed. Tenants and channels on a changed profile get
//! its limits for their next statements; running ones keep the pool they started in.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};
use tollgate_catalog::store::records::{ChannelState, PROFILE, ProfileRecord};
use tollgate_catalog::store::state::ControlState;
use tollgate_catalog::store::{Expect, Write};
use tollgate_catalog::{Catalog, ProfileOptions};

use super::{Admin, ApiState, JsonBody, PathParams, audited};
use crate::control::problem::{BodyProblems, CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};

/// The profiles served: the configuration file's, and the stored ones over them.
///
/// # Errors
/// [`Problem::Unavailable`] if the store cannot be read.
pub(super) async fn known(
    plane: &ControlPlane,
) -> Result<BTreeMap<String, ProfileOptions>, Problem> {
    let mut profiles = plane.sync.base().profiles.clone();
    for document in plane.store.list(PROFILE, None).await? {
        let stored: ProfileRecord = document.parse()?;
        profiles.insert(stored.name, stored.profile);
    }
    Ok(profiles)
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn view(name: &str, profile: &ProfileOptions, configured: bool, stored: bool) -> Value {
    let mut view = serde_json::to_value(profile).unwrap_or_else(|_| json!({}));
    view["name"] = json!(name);
    view["configured"] = json!(configured);
    view["stored"] = json!(stored);
    view
}

/// Who uses profile `name`: tenants and active channels.
fn users(plane: &ControlPlane, state: &ControlState, name: &str) -> Vec<String> {
    let options = state.apply_to(&plane.sync.base(), Utc::now());
    let mut users: Vec<String> = options
        .tenants
        .iter()
        .filter(|t| t.profile == name)
        .map(|t| format!("tenant {}", t.id))
        .chain(
            state
                .channels
                .iter()
                .filter(|c| {
                    c.state == ChannelState::Active && c.request.profile.as_deref() == Some(name)
                })
                .map(|c| format!("channel {}", c.id)),
        )
        .collect();
    users.sort();
    users
}

/// `GET /v1/admin/profiles`: the configured and stored profiles.
#[utoipa::path(
    get,
    path = "/v1/admin/profiles",
    tag = "admin",
    responses((status = 200, description = "Every profile", body = Object), CallerProblems)
)]
pub async fn profiles(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let stored = ControlState::load(&plane.store).await?;
    let base = plane.sync.base();
    let options = stored.apply_to(&base, Utc::now());
    let items: Vec<Value> = options
        .profiles
        .iter()
        .map(|(name, profile)| {
            view(
                name,
                profile,
                base.profiles.contains_key(name),
                stored.profiles.iter().any(|p| p.name == *name),
            )
        })
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// `PUT /v1/admin/profiles/{name}`: sets a profile's limits, as `[profiles.NAME]` declares
/// them (keys left out take their defaults); checked before stored.
#[utoipa::path(
    put,
    path = "/v1/admin/profiles/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "Profile name")),
    request_body(content = Object, description = "The limits, as [profiles.NAME] declares them"),
    responses((status = 201, description = "Created", body = Object), (status = 200, description = "Replaced", body = Object), (status = 422, description = "Not acceptable", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Changed concurrently", body = ProblemBody, content_type = "application/problem+json"), BodyProblems, CallerProblems)
)]
pub async fn put_profile(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(name): PathParams<String>,
    JsonBody(profile): JsonBody<ProfileOptions>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let base = plane.sync.base();
    let existing = plane.store.get(PROFILE, &name).await?;
    let configured = base.profiles.contains_key(&name);
    let record = ProfileRecord {
        name: name.clone(),
        profile: profile.clone(),
        updated_at: Utc::now(),
    };
    let checked = if valid_name(&name) {
        let mut candidate = ControlState::load(&plane.store).await?;
        candidate.profiles.retain(|p| p.name != name);
        candidate.profiles.push(record.clone());
        Catalog::from_options(&candidate.apply_to(&base, Utc::now()))
            .map(|_| {
                let expect = existing
                    .as_ref()
                    .map_or(Expect::Absent, |d| Expect::Revision(d.revision));
                vec![Write::put(PROFILE, &name, "", &record, expect)]
            })
            .map_err(|e| Problem::Unprocessable(e.to_string()))
    } else {
        Err(Problem::Unprocessable(
            "a profile name is 1 to 32 letters, digits, `_` or `-`".to_owned(),
        ))
    };
    audited(plane, &actor, "profile.put", &name, checked).await?;
    let status = if existing.is_none() && !configured {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&name, &profile, configured, true))).into_response())
}

/// `DELETE /v1/admin/profiles/{name}`: a stored profile no tenant or channel uses; for a
/// configured one, the stored limits (the file's apply again).
#[utoipa::path(
    delete,
    path = "/v1/admin/profiles/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "Profile name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Still used, or declared in the configuration file", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn delete_profile(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(name): PathParams<String>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let configured = plane.sync.base().profiles.contains_key(&name);
    let stored = ControlState::load(&plane.store).await?;
    let users = users(plane, &stored, &name);
    let checked = match plane.store.get(PROFILE, &name).await? {
        None if configured => Err(Problem::Conflict(format!(
            "profile `{name}` is declared in the configuration file; remove it there"
        ))),
        None => Err(Problem::NotFound(format!("profile `{name}`"))),
        Some(_) if !configured && !users.is_empty() => Err(Problem::Conflict(format!(
            "profile `{name}` is used by {}",
            users.join(", ")
        ))),
        Some(document) => Ok(vec![Write::Delete {
            kind: PROFILE,
            id: name.clone(),
            expect: Expect::Revision(document.revision),
        }]),
    };
    audited(plane, &actor, "profile.delete", &name, checked).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
