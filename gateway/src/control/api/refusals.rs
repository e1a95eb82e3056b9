//! The provider's recent refusals: queries a profile's limits refused or stopped (too many
//! running or queued, a rate or size limit, memory), newest first, from the usage ledger.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_planner::metering::{Outcome, UsageRecord, UsageScope};

use super::usage::instant;
use super::{Admin, ApiState, QueryParams};
use crate::control::Problem;
use crate::control::problem::{CallerProblems, ProblemBody};

/// Refusals listed at most.
const MOST: usize = 1000;

/// Query parameters of `GET /v1/admin/refusals`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RefusalsQuery {
    /// Refusals at or after this day (`2026-12-01`, UTC) or instant (RFC 3339).
    #[serde(default)]
    from: Option<String>,
    /// Refusals before this day or instant (exclusive).
    #[serde(default)]
    to: Option<String>,
    /// Only this tenant's.
    #[serde(default)]
    tenant: Option<String>,
    /// How many, newest first (default 100, at most 1000).
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /v1/admin/refusals`: queries refused or stopped by a limit, newest first.
#[utoipa::path(
    get,
    path = "/v1/admin/refusals",
    tag = "admin",
    params(RefusalsQuery),
    responses((status = 200, description = "Refused queries, newest first", body = Object), (status = 400, description = "Bad parameter", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn refusals(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    QueryParams(query): QueryParams<RefusalsQuery>,
) -> Result<Response, Problem> {
    let scope = UsageScope {
        tenant: query.tenant.clone(),
        from: instant("from", query.from.as_deref())?,
        to: instant("to", query.to.as_deref())?,
    };
    let records = state.plane.ledger.records(scope).await.map_err(|error| {
        tracing::error!(%error, "usage ledger");
        Problem::Unavailable
    })?;
    let mut refused: Vec<&UsageRecord> = records
        .iter()
        .filter(|record| record.outcome == Outcome::Limit)
        .collect();
    refused.sort_by_key(|record| std::cmp::Reverse(record.started_at));
    let items: Vec<Value> = refused
        .into_iter()
        .take(query.limit.unwrap_or(100).clamp(1, MOST))
        .map(view)
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

fn view(record: &UsageRecord) -> Value {
    json!({
        "at": record.started_at,
        "tenant": record.tenant,
        "login": record.principal,
        "channel": record.channel,
        "protocol": record.protocol.as_str(),
        "sqlstate": record.sqlstate,
        "datasets": record.datasets,
        "client_address": record.client_address,
        "application_name": record.application_name,
        "sql": record.sql_text,
        "sql_hash": record.sql_hash,
    })
}
