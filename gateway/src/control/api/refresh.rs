//! `POST /v1/admin/channels/{id}/refresh`: a new version of every dataset of a `file`
//! channel, written from the datasets as they are now (new source files included), and a
//! `channel.refreshed` event naming the versions.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tollgate_catalog::ChannelKind;
use tollgate_catalog::store::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, CredentialRecord, SHARED_TABLE,
    SharedTableRecord,
};
use tollgate_catalog::store::{Expect, Write};

use super::{Admin, ApiState, PathParams, audited};
use crate::control::problem::{CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};
use crate::sharing::export;

/// `POST /v1/admin/channels/{id}/refresh`.
#[utoipa::path(
    post,
    path = "/v1/admin/channels/{id}/refresh",
    tag = "admin",
    params(("id" = String, Path, description = "A `file` channel")),
    responses((status = 200, description = "The new version of each dataset", body = Object), (status = 404, description = "No active file channel of that id", body = ProblemBody, content_type = "application/problem+json"), (status = 422, description = "A dataset could not be written", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn refresh_channel(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let written = write_versions(plane, &id).await;
    let versions = written.as_ref().ok().map(|(_, versions)| versions.clone());
    audited(
        plane,
        &actor,
        "channel.refresh",
        &id,
        written.map(|(writes, _)| writes),
    )
    .await?;
    Ok(Json(json!({ "channel": id, "versions": versions })).into_response())
}

/// The writes of a new version of each dataset of channel `id`, with its event, and the
/// versions by dataset.
async fn write_versions(plane: &ControlPlane, id: &str) -> Result<(Vec<Write>, Value), Problem> {
    let missing = || Problem::NotFound(format!("file channel `{id}`"));
    let channel: ChannelRecord = plane
        .store
        .get(CHANNEL, id)
        .await?
        .ok_or_else(missing)?
        .parse()?;
    if channel.state != ChannelState::Active || channel.request.kind != ChannelKind::File {
        return Err(missing());
    }
    // The channel's newest login reads the datasets, in the channel's own session.
    let mut logins: Vec<CredentialRecord> = Vec::new();
    for document in plane.store.list(CREDENTIAL, Some(&channel.tenant)).await? {
        let login: CredentialRecord = document.parse()?;
        if login.channel == id {
            logins.push(login);
        }
    }
    logins.sort_by_key(|login| login.created_at);
    let principal = logins
        .last()
        .and_then(|login| plane.service.principal(&login.login))
        .ok_or_else(missing)?;
    let session = plane.service.session(&principal).ok_or_else(missing)?;
    let mut latest: Map<String, Value> = Map::new();
    for document in plane
        .store
        .list(SHARED_TABLE, Some(&channel.tenant))
        .await?
    {
        let table: SharedTableRecord = document.parse()?;
        if table.channel == id
            && latest
                .get(&table.dataset)
                .and_then(Value::as_u64)
                .is_none_or(|version| version < table.version)
        {
            latest.insert(table.dataset.clone(), json!(table.version));
        }
    }
    let mut writes = Vec::new();
    let mut versions = Map::new();
    for dataset in &channel.request.datasets {
        let version = latest
            .get(&dataset.dataset)
            .and_then(Value::as_u64)
            .unwrap_or(0)
            + 1;
        let table = export::write_version(
            &plane.service,
            Arc::clone(&session),
            Arc::clone(&principal),
            &plane.options.delivery_path,
            &dataset.dataset,
            version,
        )
        .await
        .map_err(|error| Problem::Unprocessable(error.to_string()))?;
        writes.push(Write::put(
            SHARED_TABLE,
            SharedTableRecord::id(id, &table.dataset, version),
            &channel.tenant,
            &table,
            Expect::Absent,
        ));
        versions.insert(dataset.dataset.clone(), json!(version));
    }
    let versions = Value::Object(versions);
    writes.push(Write::event(
        &channel.tenant,
        "tenant",
        &json!({ "type": "channel.refreshed", "at": Utc::now(), "channel": id, "versions": versions }),
    ));
    Ok((writes, versions))
}
