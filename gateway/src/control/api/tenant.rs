//! The tenant's routes: browse the catalog, order channels, follow orders, rotate and
//! revoke credentials, read events. Another tenant's ids answer exactly as missing ones.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};
use tollgate_catalog::store::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ChannelRequest, ChannelState, CredentialRecord, ORDER,
    OrderRecord, OrderState, SECRET,
};
use tollgate_catalog::store::{Expect, Write};
use tollgate_catalog::{ChannelKind, GrantColumnOptions};

use super::{ApiState, Caller, JsonBody, PathParams, profiles};
use crate::control::credentials::{self, add_token, connection_details, login_name};
use crate::control::keys::random_text;
use crate::control::problem::{BodyProblems, CallerProblems, ProblemBody};
use crate::control::push_channels;
use crate::control::{ControlPlane, Problem};

/// `POST /v1/channels`: accepts an order (202) and provisions it in the background.
#[utoipa::path(
    post,
    path = "/v1/channels",
    tag = "tenant",
    request_body = ChannelRequest,
    responses((status = 202, description = "Order accepted; follow Location", body = Object), (status = 422, description = "Not acceptable", body = ProblemBody, content_type = "application/problem+json"), BodyProblems, CallerProblems)
)]
pub async fn order_channel(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(request): JsonBody<ChannelRequest>,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let plane = &state.plane;
    validate_request(plane, tenant, &request).await?;
    let now = Utc::now();
    let id = format!("ord_{}", random_text(9).map_err(|_| Problem::Unavailable)?);
    let order = OrderRecord {
        id: id.clone(),
        tenant: tenant.to_owned(),
        request,
        state: OrderState::Pending,
        reason: None,
        channel: None,
        created_at: now,
        updated_at: now,
        attempts: 0,
        lease_until: None,
    };
    plane
        .store
        .write(vec![Write::put(ORDER, &id, tenant, &order, Expect::Absent)])
        .await?;
    plane.orders.notify_one();
    let location = format!("/v1/orders/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(order_view(&order)),
    )
        .into_response())
}

/// Checks an order against the tenant's entitlements: each dataset entitled (otherwise
/// exactly as if it did not exist), each plain column among the entitled ones.
async fn validate_request(
    plane: &ControlPlane,
    tenant: &str,
    request: &ChannelRequest,
) -> Result<(), Problem> {
    if request.datasets.is_empty() {
        return Err(Problem::Unprocessable(
            "`datasets` lists no dataset".to_owned(),
        ));
    }
    if let Some(profile) = &request.profile
        && !profiles::known(plane).await?.contains_key(profile)
    {
        return Err(Problem::Unprocessable(format!("no profile `{profile}`")));
    }
    if request.kind == ChannelKind::Flight && plane.endpoints.flight_port.is_none() {
        return Err(Problem::Unprocessable(
            "channel kind `flight` is not offered: Flight SQL is off".to_owned(),
        ));
    }
    if request.kind.is_push() && !plane.brokers.offers(request.kind) {
        return Err(Problem::Unprocessable(format!(
            "channel kind `{}` is not offered: no such broker is set up",
            request.kind.as_str()
        )));
    }
    if request.message_format.is_some() && !request.kind.is_push() {
        return Err(Problem::Unprocessable(format!(
            "`message_format` is for push channels; a `{}` channel has none",
            request.kind.as_str()
        )));
    }
    let session = plane
        .service
        .tenant_session(tenant)
        .ok_or(Problem::Unauthorized)?;
    for (i, wanted) in request.datasets.iter().enumerate() {
        let table = session
            .tables()
            .iter()
            .find(|t| format!("{}.{}", t.schema, t.table) == wanted.dataset)
            .ok_or_else(|| {
                Problem::Unprocessable(format!("datasets[{i}]: no dataset `{}`", wanted.dataset))
            })?;
        if request.datasets[..i]
            .iter()
            .any(|other| other.dataset == wanted.dataset)
        {
            return Err(Problem::Unprocessable(format!(
                "datasets[{i}]: `{}` is listed twice",
                wanted.dataset
            )));
        }
        for column in wanted.columns.iter().flatten() {
            if let GrantColumnOptions::Name(name) = column
                && table.columns.field_with_name(name).is_err()
            {
                return Err(Problem::Unprocessable(format!(
                    "datasets[{i}].columns: `{name}` is not a column of `{}` you are entitled to",
                    wanted.dataset
                )));
            }
        }
        if wanted.columns.as_ref().is_some_and(Vec::is_empty) {
            return Err(Problem::Unprocessable(format!(
                "datasets[{i}].columns lists no column; omit it to keep them all"
            )));
        }
    }
    Ok(())
}

fn order_view(order: &OrderRecord) -> Value {
    json!({
        "id": order.id,
        "state": order.state,
        "reason": order.reason,
        "channel": order.channel,
        "request": order.request,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    })
}

/// `GET /v1/orders/{id}`.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "tenant",
    params(("id" = String, Path, description = "Id")),
    responses((status = 200, description = "The order", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn order(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let order: OrderRecord = owned(&state.plane, ORDER, &id, tenant)
        .await?
        .ok_or_else(|| Problem::NotFound(format!("order `{id}`")))?
        .1;
    Ok(Json(order_view(&order)).into_response())
}

/// The document `kind`/`id` if `tenant` owns it, with its revision.
async fn owned<T: serde::de::DeserializeOwned>(
    plane: &ControlPlane,
    kind: &str,
    id: &str,
    tenant: &str,
) -> Result<Option<(i64, T)>, Problem> {
    match plane.store.get(kind, id).await? {
        Some(document) if document.tenant == tenant => {
            Ok(Some((document.revision, document.parse()?)))
        }
        _ => Ok(None),
    }
}

fn channel_view(
    plane: &ControlPlane,
    channel: &ChannelRecord,
    logins: &[CredentialRecord],
) -> Value {
    let now = Utc::now();
    let logins: Vec<Value> = logins
        .iter()
        .filter(|c| c.expires_at.is_none_or(|at| at > now))
        .map(
            |c| json!({ "login": c.login, "created_at": c.created_at, "expires_at": c.expires_at }),
        )
        .collect();
    let connection = logins
        .last()
        .and_then(|login| login["login"].as_str())
        .and_then(|login| connection_details(&plane.endpoints, channel.request.kind, login));
    json!({
        "id": channel.id,
        "state": channel.state,
        "kind": channel.request.kind,
        "profile": channel.request.profile,
        "datasets": channel.request.datasets,
        "order": channel.order,
        "created_at": channel.created_at,
        "revoked_at": channel.revoked_at,
        "logins": logins,
        "connection": connection,
    })
}

async fn logins_of(
    plane: &ControlPlane,
    tenant: &str,
    channel: &str,
) -> Result<Vec<(i64, CredentialRecord)>, Problem> {
    let mut logins = Vec::new();
    for document in plane.store.list(CREDENTIAL, Some(tenant)).await? {
        let credential: CredentialRecord = document.parse()?;
        if credential.channel == channel {
            logins.push((document.revision, credential));
        }
    }
    logins.sort_by_key(|(_, c)| c.created_at);
    Ok(logins)
}

/// `GET /v1/channels`.
#[utoipa::path(
    get,
    path = "/v1/channels",
    tag = "tenant",
    responses((status = 200, description = "The tenant's channels", body = Object), CallerProblems)
)]
pub async fn channels(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let plane = &state.plane;
    let mut items = Vec::new();
    for document in plane.store.list(CHANNEL, Some(tenant)).await? {
        let channel: ChannelRecord = document.parse()?;
        let logins: Vec<CredentialRecord> = logins_of(plane, tenant, &channel.id)
            .await?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        items.push(channel_view(plane, &channel, &logins));
    }
    Ok(Json(json!({ "items": items })).into_response())
}

/// `GET /v1/channels/{id}`.
#[utoipa::path(
    get,
    path = "/v1/channels/{id}",
    tag = "tenant",
    params(("id" = String, Path, description = "Id")),
    responses((status = 200, description = "The channel", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn channel(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let plane = &state.plane;
    let (_, channel): (i64, ChannelRecord) = owned(plane, CHANNEL, &id, tenant)
        .await?
        .ok_or_else(|| Problem::NotFound(format!("channel `{id}`")))?;
    let logins: Vec<CredentialRecord> = logins_of(plane, tenant, &id)
        .await?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    Ok(Json(channel_view(plane, &channel, &logins)).into_response())
}

/// `DELETE /v1/channels/{id}`: revokes the channel. Its logins are removed, its sessions
/// end, its queries stop; its usage stays in the ledger.
#[utoipa::path(
    delete,
    path = "/v1/channels/{id}",
    tag = "tenant",
    params(("id" = String, Path, description = "Id")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn delete_channel(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let plane = &state.plane;
    let (revision, channel): (i64, ChannelRecord) = owned(plane, CHANNEL, &id, tenant)
        .await?
        .filter(|(_, c): &(i64, ChannelRecord)| c.state == ChannelState::Active)
        .ok_or_else(|| Problem::NotFound(format!("channel `{id}`")))?;
    let now = Utc::now();
    let revoked = ChannelRecord {
        state: ChannelState::Revoked,
        revoked_at: Some(now),
        ..channel
    };
    let mut writes = vec![Write::put(
        CHANNEL,
        &id,
        tenant,
        &revoked,
        Expect::Revision(revision),
    )];
    for (_, login) in logins_of(plane, tenant, &id).await? {
        writes.push(Write::Delete {
            kind: CREDENTIAL,
            id: login.login.clone(),
            expect: Expect::Any,
        });
        writes.push(Write::Delete {
            kind: SECRET,
            id: login.login,
            expect: Expect::Any,
        });
    }
    writes.push(Write::event(
        tenant,
        "tenant",
        &json!({ "type": "channel.revoked", "at": now, "channel": id }),
    ));
    plane.store.write(writes).await?;
    // This gateway ends the channel's sessions before answering; the others within their
    // poll interval. Its broker users are revoked at the push worker's next round, now.
    plane.sync.refresh().await?;
    plane.push.notify_one();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/channels/{id}/credentials`: a new login and password. The previous ones keep
/// working for `control.rotation_overlap`, then are refused.
#[utoipa::path(
    post,
    path = "/v1/channels/{id}/credentials",
    tag = "tenant",
    params(("id" = String, Path, description = "Id")),
    responses((status = 201, description = "A new login and password, shown once", body = Object), (status = 404, description = "Not found, or not the caller's", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn rotate_credentials(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let plane = &state.plane;
    let (_, channel): (i64, ChannelRecord) = owned(plane, CHANNEL, &id, tenant)
        .await?
        .filter(|(_, c): &(i64, ChannelRecord)| c.state == ChannelState::Active)
        .ok_or_else(|| Problem::NotFound(format!("channel `{id}`")))?;
    let previous = logins_of(plane, tenant, &id).await?;
    let generation = u32::try_from(previous.len())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let issued =
        credentials::issue(login_name(&id, generation)).map_err(|_| Problem::Unavailable)?;
    let now = Utc::now();
    let overlap =
        chrono::Duration::from_std(plane.rotation_overlap()).unwrap_or(chrono::Duration::MAX);
    let expires = now + overlap;
    let mut writes = Vec::new();
    for (revision, login) in previous {
        if login.expires_at.is_none_or(|at| at > expires) {
            let expiring = CredentialRecord {
                expires_at: Some(expires),
                ..login
            };
            writes.push(Write::put(
                CREDENTIAL,
                &expiring.login,
                tenant,
                &expiring,
                Expect::Revision(revision),
            ));
        }
    }
    let credential = CredentialRecord {
        login: issued.login.clone(),
        tenant: tenant.to_owned(),
        channel: id.clone(),
        scram_verifier: issued.verifier.clone(),
        created_at: now,
        expires_at: None,
    };
    writes.push(Write::put(
        CREDENTIAL,
        &credential.login,
        tenant,
        &credential,
        Expect::Absent,
    ));
    let mut broker_connection = None;
    if channel.request.kind.is_push() {
        let login = (issued.login.as_str(), issued.password.as_str());
        match push_channels::broker_user(plane, channel.request.kind, tenant, &id, login, now)
            .await?
        {
            Ok((user, connection)) => {
                writes.extend(user);
                broker_connection = Some(connection);
            }
            Err(reason) => return Err(Problem::Unprocessable(reason)),
        }
    }
    writes.push(Write::event(
        tenant,
        "tenant",
        &json!({
            "type": "credentials.rotated",
            "at": now,
            "channel": id,
            "login": issued.login,
            "previous_expire_at": expires,
        }),
    ));
    plane.store.write(writes).await?;
    plane.sync.refresh().await?;
    let mut connection = json!(connection_details(
        &plane.endpoints,
        channel.request.kind,
        &issued.login
    ));
    add_token(&mut connection, &issued.login, &issued.password);
    if let Some(broker) = broker_connection {
        connection = broker;
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "channel": id,
            "login": issued.login,
            "password": issued.password,
            "previous_expire_at": expires,
            "connection": connection,
        })),
    )
        .into_response())
}
