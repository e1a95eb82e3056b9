//! Where a tenant's events go besides `/v1/events`: its webhook and its NATS subject, and
//! the attempts made to deliver them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tollgate_catalog::store::records::{
    DELIVERY, DeliveryRecord, TENANT, TenantRecord, WebhookTarget,
};
use tollgate_catalog::store::{Expect, Write};

use super::{ApiState, Caller, JsonBody};
use crate::control::keys::random_text;
use crate::control::problem::{BodyProblems, CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};

/// Body of `PUT /v1/notifications`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// `http://` or `https://` URL events are POSTed to; absent or null turns it off.
    #[serde(default)]
    webhook_url: Option<String>,
    /// NATS subject events are published on: `<control.nats_subject_prefix>.<tenant>` or
    /// below it; absent or null turns it off.
    #[serde(default)]
    nats_subject: Option<String>,
}

/// The tenant's record, made from its configured entry if it has none yet.
async fn tenant_record(
    plane: &ControlPlane,
    tenant: &str,
) -> Result<(TenantRecord, Expect), Problem> {
    if let Some(document) = plane.store.get(TENANT, tenant).await? {
        return Ok((document.parse()?, Expect::Revision(document.revision)));
    }
    let base = plane.sync.base();
    let configured = base
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .ok_or(Problem::Unauthorized)?;
    Ok((
        TenantRecord {
            id: tenant.to_owned(),
            profile: configured.profile.clone(),
            attributes: configured.attributes.clone(),
            allowed_origins: configured.allowed_origins.clone(),
            suspended: false,
            webhook: None,
            nats_subject: None,
            created_at: Utc::now(),
        },
        Expect::Absent,
    ))
}

fn view(record: &TenantRecord) -> serde_json::Value {
    json!({
        "webhook_url": record.webhook.as_ref().map(|w| &w.url),
        "webhook_secret": record.webhook.as_ref().map(|w| &w.secret),
        "nats_subject": record.nats_subject,
    })
}

/// `GET /v1/notifications`.
#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "tenant",
    responses((status = 200, description = "Webhook and NATS subject", body = Object), CallerProblems)
)]
pub async fn get(State(state): State<Arc<ApiState>>, caller: Caller) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let (record, _) = tenant_record(&state.plane, tenant).await?;
    Ok(Json(view(&record)).into_response())
}

/// `PUT /v1/notifications`: registers the webhook (its signing secret is made once and
/// kept across changes of the URL) and the NATS subject.
#[utoipa::path(
    put,
    path = "/v1/notifications",
    tag = "tenant",
    request_body = Notifications,
    responses((status = 200, description = "Registered; the webhook's signing secret", body = Object), (status = 422, description = "Not acceptable", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Exists already or changed concurrently", body = ProblemBody, content_type = "application/problem+json"), BodyProblems, CallerProblems)
)]
pub async fn put(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<Notifications>,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let plane = &state.plane;
    let (mut record, expect) = tenant_record(plane, tenant).await?;
    if let Some(url) = &body.webhook_url {
        let parsed = url::Url::parse(url)
            .map_err(|e| Problem::Unprocessable(format!("webhook_url: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(Problem::Unprocessable(
                "webhook_url must be an http:// or https:// URL".to_owned(),
            ));
        }
    }
    let prefix = format!("{}.{tenant}", plane.options.nats_subject_prefix);
    if let Some(subject) = &body.nats_subject {
        let valid = (subject == &prefix || subject.starts_with(&format!("{prefix}.")))
            && subject.split('.').all(|token| {
                !token.is_empty()
                    && token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if !valid {
            return Err(Problem::Unprocessable(format!(
                "nats_subject must be `{prefix}` or a subject below it (letters, digits, _ and -)"
            )));
        }
        if plane.options.nats_url.is_none() {
            return Err(Problem::Unprocessable(
                "this gateway has no NATS server".to_owned(),
            ));
        }
    }
    record.webhook = match body.webhook_url {
        Some(url) => {
            let secret = match record.webhook.take() {
                Some(previous) => previous.secret,
                None => random_text(24).map_err(|_| Problem::Unavailable)?,
            };
            Some(WebhookTarget { url, secret })
        }
        None => None,
    };
    record.nats_subject = body.nats_subject;
    plane
        .store
        .write(vec![Write::put(TENANT, tenant, tenant, &record, expect)])
        .await?;
    Ok(Json(view(&record)).into_response())
}

/// `GET /v1/deliveries`: the attempts to deliver the tenant's events, latest first.
#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "tenant",
    responses((status = 200, description = "Delivery attempts, latest first", body = Object), CallerProblems)
)]
pub async fn deliveries(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let mut items: Vec<DeliveryRecord> = state
        .plane
        .store
        .list(DELIVERY, Some(tenant))
        .await?
        .iter()
        .map(|d| d.parse())
        .collect::<Result<_, _>>()?;
    items.sort_by_key(|d| std::cmp::Reverse(d.event));
    let items: Vec<serde_json::Value> = items
        .into_iter()
        .map(|d| {
            json!({
                "event": d.event,
                "target": d.target,
                "attempts": d.attempts,
                "delivered": d.delivered,
                "abandoned": d.abandoned,
                "last_result": d.last_result,
                "next_attempt_at": (!d.delivered && !d.abandoned).then_some(d.next_attempt_at),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}
