//! `POST /v1/admin/channels/{id}/refresh`: a new version of every dataset of a `file`
//! channel, written from the datasets as they are now (new source files included), and a
//! `channel.refreshed` event naming the versions. (Changed datasets are also refreshed on
//! a schedule: `control.file_refresh_interval`.)

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, json};

use super::{Admin, ApiState, PathParams, audited};
use crate::control::Problem;
use crate::control::file_versions::{self, Refresh};
use crate::control::problem::{CallerProblems, ProblemBody};

/// `POST /v1/admin/channels/{id}/refresh`.
#[utoipa::path(
    post,
    path = "/v1/admin/channels/{id}/refresh",
    tag = "admin",
    params(("id" = String, Path, description = "A `file` channel")),
    responses((status = 200, description = "The new version of each dataset", body = Object), (status = 404, description = "No active file channel of that id", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Its first version is still being written", body = ProblemBody, content_type = "application/problem+json"), (status = 422, description = "A dataset could not be written", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn refresh_channel(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let written = file_versions::write(plane, &id, Refresh::Every).await;
    let (writes, versions, files) = match written {
        Ok(new) => (Ok(new.writes), new.versions, new.files),
        Err(problem) => (Err(problem), Map::new(), Vec::new()),
    };
    if let Err(problem) = audited(plane, &actor, "channel.refresh", &id, writes).await {
        plane.delivery.remove(files).await;
        return Err(problem);
    }
    Ok(Json(json!({ "channel": id, "versions": versions })).into_response())
}
