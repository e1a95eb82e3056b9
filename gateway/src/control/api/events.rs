//! The tenant's event feed: `GET /v1/events`, long-polled, with each new password shown
//! in the first answer that carries its event and never again.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_catalog::store::records::{SECRET, SecretRecord};
use tollgate_catalog::store::{EventQuery, Expect, StoreError, Write};

use super::{ApiState, Caller, QueryParams};
use crate::control::credentials::add_token;
use crate::control::problem::{CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};

/// Parameters of `GET /v1/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events after this position (the `seq` of the last one seen).
    #[serde(default)]
    after: Option<i64>,
    /// Seconds to wait for an event when there is none yet (0–30).
    #[serde(default)]
    wait: Option<u64>,
    /// Only the events of this order (its ready or failed event): other events, and the
    /// passwords they carry, stay unread.
    #[serde(default)]
    order: Option<String>,
}

/// `GET /v1/events?after=&wait=`: the tenant's events in order, long-polled. A new
/// password appears in the first answer that carries its event, and never again.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "tenant",
    params(EventsQuery),
    responses((status = 200, description = "Events after `after`, long-polled up to `wait` seconds", body = Object), (status = 400, description = "Bad parameter", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn events(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Response, Problem> {
    let tenant = caller.tenant()?;
    let plane = &state.plane;
    let mut after = query.after.unwrap_or(0);
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(query.wait.unwrap_or(0).min(30));
    let found = loop {
        let mut found = plane
            .store
            .events(EventQuery {
                tenant: Some(tenant),
                topic: "tenant",
                after,
                limit: 100,
            })
            .await?;
        if let Some(order) = &query.order {
            after = found.last().map_or(after, |event| event.seq);
            found.retain(|event| event.body["order"].as_str() == Some(order.as_str()));
        }
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // What the events announce is served here before they are shown.
    if !found.is_empty() {
        plane.sync.refresh().await?;
    }
    let mut items = Vec::with_capacity(found.len());
    for event in found {
        let mut body = event.body;
        if let Some(login) = body
            .get("secret")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            let password = take_secret(plane, &login).await?;
            // Web-API and Delta Sharing clients send the login and password as one token.
            if let (Some(password), Some(connection)) =
                (password.as_str(), body.get_mut("connection"))
            {
                add_token(connection, &login, password);
            }
            body["password"] = password;
        }
        if let Some(object) = body.as_object_mut() {
            object.remove("secret");
            object.insert("seq".to_owned(), json!(event.seq));
        }
        items.push(body);
    }
    let last = items
        .last()
        .and_then(|e| e["seq"].as_i64())
        .unwrap_or(after);
    Ok(Json(json!({ "items": items, "next_after": last })).into_response())
}

/// The password kept for `login`, removed as it is read: `null` once it was shown.
async fn take_secret(plane: &ControlPlane, login: &str) -> Result<Value, Problem> {
    let Some(document) = plane.store.get(SECRET, login).await? else {
        return Ok(Value::Null);
    };
    let secret: SecretRecord = document.parse()?;
    let taken = plane
        .store
        .write(vec![Write::Delete {
            kind: SECRET,
            id: login.to_owned(),
            expect: Expect::Revision(document.revision),
        }])
        .await;
    match taken {
        Ok(_) => Ok(Value::String(secret.password)),
        // Another reader took it first.
        Err(StoreError::Conflict { .. }) => Ok(Value::Null),
        Err(error) => Err(error.into()),
    }
}
