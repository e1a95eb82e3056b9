//! A performance profile's keys in `tollgate.toml` (`[profiles.<name>]`): the limits a
//! tenant bought, and what its queries and pushes pay and keep.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, HumanDuration};

/// A performance profile: the contract a tenant bought. Every limit holds per tenant, for
/// all its sessions on every front end together.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileOptions {
    /// Memory one tenant's queries may hold at once (53200 beyond, unless they spill).
    pub memory_limit: ByteSize,
    /// Whether sorts, joins and aggregates may spill to disk when memory is short.
    pub spill: bool,
    /// Disk the tenant's spill files may use at once.
    pub spill_quota: ByteSize,
    /// Longest a statement may run before it is cancelled with 57014.
    pub statement_timeout: HumanDuration,
    /// Partitions DataFusion plans with (its `target_partitions`), and the executor threads
    /// the tenant's queries run on: the cores it can hold at once.
    pub parallelism: usize,
    /// Queries running at once; more wait in the queue.
    pub max_concurrent_queries: usize,
    /// Queries waiting at once; more are refused with 53300.
    pub queue_length: usize,
    /// Longest a query waits in the queue before it is refused with 53300.
    pub max_queue_wait: HumanDuration,
    /// Queries per second, sustained; absent means no rate limit.
    pub rate_limit: Option<f64>,
    /// Queries allowed in a burst above the rate (default: one second's worth).
    pub rate_burst: Option<u32>,
    /// Rows one query may return; absent means no limit.
    pub max_result_rows: Option<u64>,
    /// Arrow bytes one query may return; absent means no limit.
    pub max_result_bytes: Option<ByteSize>,
    /// Open connections of the tenant at once (53300 beyond), so a connection flood by one
    /// tenant never locks another out.
    pub max_connections: usize,
    /// The Athena workgroup the tenant's queries on Athena datasets run in, so Athena's own
    /// per-query scan limit of that workgroup applies; absent means the source's.
    pub athena_workgroup: Option<String>,
    /// Row pairs a cross or nested-loop join of one query may compare, estimated from its
    /// inputs before it runs (54000 beyond).
    pub max_join_pairs: u64,
    /// Rows a recursive query (`WITH RECURSIVE`) may produce over all its iterations
    /// (54000 beyond).
    pub max_recursive_rows: u64,
    /// Rows a set-returning function in `FROM` (`generate_series`, `range`) may generate:
    /// refused before it runs where its arguments tell (54000), stopped when it gets there
    /// otherwise.
    pub max_generated_rows: u64,
    /// Largest value one query may build (`repeat`, `lpad`, `range`, …); refused with
    /// 54000 before it is built.
    pub max_value_size: ByteSize,
    /// What queries on this profile pay: each dataset's prices times this factor.
    pub price_factor: f64,
    /// How long the broker keeps a tenant's pushed messages (its NATS stream's age limit).
    pub push_retention: HumanDuration,
    /// Bytes a tenant's NATS stream keeps at most, the oldest messages dropped beyond;
    /// absent means no limit but the retention.
    pub push_max_bytes: Option<ByteSize>,
    /// Messages of one push the broker may have unacknowledged at once; the push waits for
    /// acknowledgements beyond (the pace a slow broker sets).
    pub push_in_flight: usize,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            memory_limit: ByteSize(1 << 30),
            spill: false,
            spill_quota: ByteSize(1 << 30),
            statement_timeout: HumanDuration(Duration::from_secs(300)),
            parallelism: 2,
            max_concurrent_queries: 4,
            queue_length: 16,
            max_queue_wait: HumanDuration(Duration::from_secs(30)),
            rate_limit: None,
            rate_burst: None,
            max_result_rows: None,
            max_result_bytes: None,
            max_connections: 100,
            athena_workgroup: None,
            max_join_pairs: 10_000_000_000,
            max_recursive_rows: 1_000_000,
            max_generated_rows: 1_000_000_000_000,
            max_value_size: ByteSize(64 << 20),
            price_factor: 1.0,
            push_retention: HumanDuration(Duration::from_secs(7 * 24 * 3600)),
            push_max_bytes: None,
            push_in_flight: 64,
        }
    }
}
