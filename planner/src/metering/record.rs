//! What the ledger keeps: one [`UsageRecord`] per query execution.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The front end a query came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// The Postgres wire protocol.
    Pgwire,
    /// Arrow Flight SQL.
    FlightSql,
    /// The Web-API on the HTTP listener.
    Http,
    /// Delta Sharing: a `file` channel's files written, and handed out.
    DeltaSharing,
    /// A push channel's rows published to its broker.
    Push,
}

impl Protocol {
    /// The name records and metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pgwire => "pgwire",
            Self::FlightSql => "flight_sql",
            Self::Http => "http",
            Self::DeltaSharing => "delta_sharing",
            Self::Push => "push",
        }
    }
}

/// How a query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The client received the whole result.
    Ok,
    /// The query failed (see the record's SQLSTATE).
    Error,
    /// The client cancelled it or went away before the end.
    Cancelled,
    /// It ran past the profile's statement timeout.
    Timeout,
    /// A limit of the tenant's profile refused or stopped it.
    Limit,
}

impl Outcome {
    /// The name records and metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::Timeout => "timeout",
            Self::Limit => "limit",
        }
    }
}

/// What one query took from one dataset, and what that costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetUsage {
    /// Dataset id (`domain.name`), never a source path.
    pub dataset: String,
    /// Bytes read from the dataset's source: counted at the object store (after pruning),
    /// the values a replica sent, or what Athena reports it scanned. A remote query that
    /// joins several datasets has its bytes and rows split evenly among them.
    pub bytes_scanned: u64,
    /// Rows the dataset's scans produced.
    pub rows_scanned: u64,
    /// The share of the query's returned bytes billed to this dataset.
    pub bytes_returned: u64,
    /// Scanned and returned bytes priced with the dataset's prices at the time of the query.
    pub cost: f64,
}

/// One execution of a query, as billed: a pgwire statement, or one Flight SQL endpoint read.
///
/// Records are keyed by `record_id`, so writing one twice keeps one. The endpoints of one
/// Flight SQL query share its `query_id`; `tollgate.usage` shows one row per `query_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Unique per execution (UUID v7, time-ordered).
    pub record_id: Uuid,
    /// The query as the client knows it.
    pub query_id: Uuid,
    /// Which part of the result this execution read (0 for a whole result).
    pub part: u32,
    /// How many parts the result was split into (1 for a whole result).
    pub parts: u32,
    /// Tenant id.
    pub tenant: String,
    /// The principal (login) that ran it.
    pub principal: String,
    /// The channel the login belongs to; `None` for a tenant's own login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The front end.
    pub protocol: Protocol,
    /// The client's address, as the front end saw it.
    pub client_address: Option<String>,
    /// The client's `application_name`, where it sent one.
    pub application_name: Option<String>,
    /// Ids of the granted datasets the query read, sorted.
    pub datasets: Vec<String>,
    /// When the execution started.
    pub started_at: DateTime<Utc>,
    /// When it ended (the record is written then).
    pub finished_at: DateTime<Utc>,
    /// Time spent planning, in microseconds.
    pub planning_us: u64,
    /// Time from the plan to the end, in microseconds.
    pub execution_us: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// The SQLSTATE of an error, cancel, timeout or limit.
    pub sqlstate: Option<String>,
    /// Result rows sent to the client.
    pub rows_returned: u64,
    /// Arrow bytes of the result sent to the client.
    pub bytes_returned: u64,
    /// Bytes the front end wrote for the rows (pgwire DataRow messages, Flight IPC bodies).
    pub wire_bytes: u64,
    /// Bytes read from sources, over all datasets.
    pub bytes_scanned: u64,
    /// Rows the scans produced, over all datasets.
    pub rows_scanned: u64,
    /// The highest memory the query held, in bytes.
    pub peak_memory: u64,
    /// Bytes the query spilled to disk.
    pub spill_bytes: u64,
    /// SHA-256 of the SQL text, hex.
    pub sql_hash: String,
    /// The SQL text, where the configuration keeps it.
    pub sql_text: Option<String>,
    /// The price of the execution: the sum of its datasets' costs.
    pub cost: f64,
    /// What each dataset contributed.
    pub scans: Vec<DatasetUsage>,
}

/// Which records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageScope {
    /// Only this tenant's records; `None` reads every tenant's (for the operator).
    pub tenant: Option<String>,
    /// Records that started at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Records that started before this time.
    pub to: Option<DateTime<Utc>>,
}

impl UsageScope {
    /// Every record of `tenant`.
    pub fn tenant(tenant: &str) -> Self {
        Self {
            tenant: Some(tenant.to_owned()),
            ..Self::default()
        }
    }

    /// Whether `record` is in scope.
    pub fn contains(&self, record: &UsageRecord) -> bool {
        self.tenant.as_ref().is_none_or(|t| *t == record.tenant)
            && self.from.is_none_or(|from| record.started_at >= from)
            && self.to.is_none_or(|to| record.started_at < to)
    }
}

/// SHA-256 of `sql`, hex.
pub(crate) fn sql_hash(sql: &str) -> String {
    use std::fmt::Write;
    let digest = ring::digest::digest(&ring::digest::SHA256, sql.as_bytes());
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}
