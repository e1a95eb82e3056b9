//! Usage and cost from the ledger, as `tollgate.usage_daily` reports them: one line per
//! query and dataset, grouped by the day (UTC), dataset, channel or tenant asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tollgate_planner::metering::{DatasetUsage, UsageScope};
use uuid::Uuid;

use super::{Admin, ApiState, Caller, QueryParams};
use crate::control::problem::{CallerProblems, ProblemBody};
use crate::control::{ControlPlane, Problem};

/// Query parameters of the usage endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Records that started at or after this day (`2026-12-01`, UTC) or instant (RFC 3339).
    #[serde(default)]
    from: Option<String>,
    /// Records that started before this day or instant (exclusive).
    #[serde(default)]
    to: Option<String>,
    /// Comma-separated: `day`, `dataset`, `channel` (and `tenant` for the provider); default
    /// `day,dataset`, as `tollgate.usage_daily`. Empty gives one total.
    #[serde(default)]
    group_by: Option<String>,
    /// Only this tenant (provider only).
    #[serde(default)]
    tenant: Option<String>,
}

/// What usage can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKey {
    Tenant,
    Day,
    Dataset,
    Channel,
}

impl GroupKey {
    fn parse(name: &str, admin: bool) -> Result<Self, Problem> {
        match name.trim() {
            "day" => Ok(Self::Day),
            "dataset" => Ok(Self::Dataset),
            "channel" => Ok(Self::Channel),
            "tenant" if admin => Ok(Self::Tenant),
            other => Err(Problem::BadRequest(format!(
                "group_by: `{other}` is not one of day, dataset, channel{}",
                if admin { ", tenant" } else { "" }
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Day => "day",
            Self::Dataset => "dataset",
            Self::Channel => "channel",
        }
    }
}

/// One group's figures, summed over its lines.
#[derive(Debug, Default, Serialize)]
struct Figures {
    queries: u64,
    rows_scanned: u64,
    bytes_returned: u64,
    bytes_scanned: u64,
    cost: f64,
}

/// A group being summed: distinct queries and the sums.
#[derive(Debug, Default)]
struct Sum {
    queries: BTreeSet<Uuid>,
    figures: Figures,
}

impl Sum {
    fn add(&mut self, query: Uuid, scan: &DatasetUsage) {
        self.queries.insert(query);
        self.figures.rows_scanned += scan.rows_scanned;
        self.figures.bytes_returned += scan.bytes_returned;
        self.figures.bytes_scanned += scan.bytes_scanned;
        self.figures.cost += scan.cost;
    }

    fn finish(mut self) -> Figures {
        self.figures.queries = self.queries.len() as u64;
        self.figures
    }
}

/// `value` as an instant: a day is its midnight (UTC).
pub(super) fn instant(name: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, Problem> {
    let Some(value) = value else {
        return Ok(None);
    };
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            Problem::BadRequest(format!(
                "{name}: `{value}` is neither a day (2026-12-01) nor an RFC 3339 instant"
            ))
        })
}

/// Whose usage is read.
struct Reader<'a> {
    /// One tenant's, or every tenant's (`None`).
    tenant: Option<String>,
    /// Only this login's records (a console session of a login).
    login: Option<&'a str>,
    /// The provider's: may group by tenant.
    admin: bool,
}

/// The grouped usage `reader` may read, as JSON.
async fn grouped(
    plane: &ControlPlane,
    reader: &Reader<'_>,
    query: &UsageQuery,
) -> Result<Response, Problem> {
    let (tenant, admin) = (reader.tenant.clone(), reader.admin);
    let from = instant("from", query.from.as_deref())?;
    let to = instant("to", query.to.as_deref())?;
    let mut keys = Vec::new();
    for name in query
        .group_by
        .as_deref()
        .unwrap_or("day,dataset")
        .split(',')
        .filter(|name| !name.trim().is_empty())
    {
        let key = GroupKey::parse(name, admin)?;
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.sort();
    let records = plane
        .ledger
        .records(UsageScope {
            tenant: tenant.clone(),
            from,
            to,
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "usage ledger");
            Problem::Unavailable
        })?;
    let mut groups: BTreeMap<Vec<Option<String>>, Sum> = BTreeMap::new();
    let mut total = Sum::default();
    let records = records
        .iter()
        .filter(|record| reader.login.is_none_or(|login| record.principal == login));
    for record in records {
        for scan in &record.scans {
            let group = keys
                .iter()
                .map(|key| match key {
                    GroupKey::Tenant => Some(record.tenant.clone()),
                    GroupKey::Day => Some(record.started_at.date_naive().to_string()),
                    GroupKey::Dataset => Some(scan.dataset.clone()),
                    GroupKey::Channel => record.channel.clone(),
                })
                .collect();
            groups.entry(group).or_default().add(record.query_id, scan);
            total.add(record.query_id, scan);
        }
    }
    let items: Vec<serde_json::Value> = groups
        .into_iter()
        .map(|(group, sum)| {
            let mut item = serde_json::to_value(sum.finish()).unwrap_or_default();
            for (key, value) in keys.iter().zip(group) {
                item[key.name()] = json!(value);
            }
            item
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant,
        "from": from,
        "to": to,
        "group_by": keys.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "items": items,
        "total": total.finish(),
    }))
    .into_response())
}

/// `GET /v1/usage`: the tenant's usage and cost, grouped.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "tenant",
    params(UsageQuery),
    responses((status = 200, description = "Usage and cost per group, and the total", body = Object), (status = 400, description = "Bad parameter", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn usage(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    QueryParams(query): QueryParams<UsageQuery>,
) -> Result<Response, Problem> {
    let (tenant, login) = caller.reader()?;
    if query.tenant.as_ref().is_some_and(|asked| asked != tenant) {
        return Err(Problem::BadRequest(
            "tenant: a tenant key reads its own usage only".to_owned(),
        ));
    }
    let reader = Reader {
        tenant: Some(tenant.to_owned()),
        login,
        admin: false,
    };
    grouped(&state.plane, &reader, &query).await
}

/// `GET /v1/admin/usage`: every tenant's usage and cost (or one's), grouped.
#[utoipa::path(
    get,
    path = "/v1/admin/usage",
    tag = "admin",
    params(UsageQuery),
    responses((status = 200, description = "Usage and cost per group, and the total", body = Object), (status = 400, description = "Bad parameter", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn admin_usage(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    QueryParams(query): QueryParams<UsageQuery>,
) -> Result<Response, Problem> {
    let reader = Reader {
        tenant: query.tenant.clone(),
        login: None,
        admin: true,
    };
    grouped(&state.plane, &reader, &query).await
}
