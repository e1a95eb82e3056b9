//! The tenant's queries running or queued on the gateway that answers (as
//! `tollgate.queries` lists them in SQL), and cancelling one (as `tollgate.cancel`); a
//! console session of a login sees and cancels only that login's queries.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tollgate_planner::pool::ListedQuery;

use super::{ApiState, Caller, PathParams};
use crate::control::Problem;
use crate::control::problem::{CallerProblems, ProblemBody};

/// `GET /v1/queries`: the caller's queries running or queued here, oldest first.
#[utoipa::path(
    get,
    path = "/v1/queries",
    tag = "tenant",
    responses((status = 200, description = "Queries running or queued on this gateway", body = Object), CallerProblems)
)]
pub async fn queries(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Response, Problem> {
    let (tenant, login) = caller.reader()?;
    let mut listed = match state.plane.service.tenant_session(tenant) {
        Some(session) => session.pool().queries(),
        None => Vec::new(),
    };
    listed.retain(|query| login.is_none_or(|login| query.user == login));
    listed.sort_by_key(|query| query.submitted_at);
    let items: Vec<Value> = listed.iter().map(view).collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// `DELETE /v1/queries/{id}`: cancels one of the caller's queries.
#[utoipa::path(
    delete,
    path = "/v1/queries/{id}",
    tag = "tenant",
    params(("id" = u64, Path, description = "The query's id, as `GET /v1/queries` lists it")),
    responses((status = 204, description = "Cancelled"), (status = 400, description = "Not a query id", body = ProblemBody, content_type = "application/problem+json"), (status = 404, description = "No such query of the caller's running here", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn cancel(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    PathParams(id): PathParams<u64>,
) -> Result<Response, Problem> {
    let (tenant, login) = caller.reader()?;
    // A login cancels only its own queries.
    let cancelled = state
        .plane
        .service
        .tenant_session(tenant)
        .is_some_and(|session| {
            let pool = session.pool();
            let its_own = login.is_none_or(|login| {
                pool.queries()
                    .iter()
                    .any(|query| query.id == id && query.user == login)
            });
            its_own && pool.cancel(id)
        });
    if cancelled {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Problem::NotFound(format!("query {id}")))
    }
}

fn view(query: &ListedQuery) -> Value {
    json!({
        "id": query.id,
        "user": query.user,
        "state": query.state.as_str(),
        "submitted_at": DateTime::<Utc>::from(query.submitted_at),
        "started_at": query.started_at.map(DateTime::<Utc>::from),
        "sql": query.sql,
    })
}
