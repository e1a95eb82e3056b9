//! What a ledger store does, and the one table every store keeps.

use async_trait::async_trait;
use tollgate_planner::metering::{LedgerError, UsageRecord, UsageScope};

/// A durable home for usage records.
#[async_trait]
pub trait LedgerStore: Send + Sync + std::fmt::Debug + 'static {
    /// Writes `records` in one transaction, durably; records already there are kept as
    /// they are.
    async fn append(&self, records: &[UsageRecord]) -> Result<(), LedgerError>;

    /// The records in `scope`, oldest first.
    async fn read(&self, scope: &UsageScope) -> Result<Vec<UsageRecord>, LedgerError>;
}

/// The ledger's table: the keys a scope reads by, and the whole record as JSON (so the
/// record can grow without a migration, and SQLite and PostgreSQL share one schema).
pub(crate) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS tollgate_usage (
    record_id TEXT PRIMARY KEY,
    query_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    record TEXT NOT NULL
)";

/// Reads by tenant and time.
pub(crate) const CREATE_INDEX: &str = "CREATE INDEX IF NOT EXISTS tollgate_usage_by_tenant \
    ON tollgate_usage (tenant, started_at)";

/// A record as the table keeps it: (record id, query id, tenant, start in µs, JSON).
pub(crate) fn row(
    record: &UsageRecord,
) -> Result<(String, String, String, i64, String), LedgerError> {
    let json = serde_json::to_string(record)
        .map_err(|e| LedgerError::Unavailable(format!("cannot encode a usage record: {e}")))?;
    Ok((
        record.record_id.to_string(),
        record.query_id.to_string(),
        record.tenant.clone(),
        record.started_at.timestamp_micros(),
        json,
    ))
}

/// A record from its JSON.
pub(crate) fn parse(json: &str) -> Result<UsageRecord, LedgerError> {
    serde_json::from_str(json)
        .map_err(|e| LedgerError::Unavailable(format!("a stored usage record does not parse: {e}")))
}

/// The scope's bounds in µs since the epoch (open bounds as the extremes).
pub(crate) fn bounds(scope: &UsageScope) -> (i64, i64) {
    (
        scope.from.map_or(i64::MIN, |from| from.timestamp_micros()),
        scope.to.map_or(i64::MAX, |to| to.timestamp_micros()),
    )
}
