//! Prometheus metrics of usage, fed by every usage record, and of the ledger's commits.
//!
//! ```text
//! tollgate_queries_total{tenant, protocol, outcome}
//! tollgate_rows_returned_total{tenant}     tollgate_bytes_returned_total{tenant}
//! tollgate_bytes_scanned_total{tenant}     tollgate_wire_bytes_total{tenant, protocol}
//! tollgate_query_duration_seconds{tenant, protocol}     (histogram)
//! tollgate_ledger_records_per_commit                    (histogram: group commit sizes)
//! ```

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tollgate_planner::metering::UsageRecord;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueryLabels {
    tenant: String,
    protocol: String,
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ProtocolLabels {
    tenant: String,
    protocol: String,
}

type HistogramFamily = Family<ProtocolLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 1 ms to about 9 minutes.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// The gateway's metrics registry.
#[derive(Debug)]
pub struct UsageMetrics {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    rows_returned: Family<TenantLabels, Counter>,
    bytes_returned: Family<TenantLabels, Counter>,
    bytes_scanned: Family<TenantLabels, Counter>,
    wire_bytes: Family<ProtocolLabels, Counter>,
    durations: HistogramFamily,
    commit_sizes: Histogram,
}

impl Default for UsageMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageMetrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let queries = Family::<QueryLabels, Counter>::default();
        let rows_returned = Family::<TenantLabels, Counter>::default();
        let bytes_returned = Family::<TenantLabels, Counter>::default();
        let bytes_scanned = Family::<TenantLabels, Counter>::default();
        let wire_bytes = Family::<ProtocolLabels, Counter>::default();
        let durations: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let commit_sizes = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register("queries", "Query executions by outcome", queries.clone());
        registry.register("rows_returned", "Result rows sent", rows_returned.clone());
        registry.register(
            "bytes_returned",
            "Arrow bytes of results sent",
            bytes_returned.clone(),
        );
        registry.register(
            "bytes_scanned",
            "Bytes read from sources",
            bytes_scanned.clone(),
        );
        registry.register(
            "wire_bytes",
            "Bytes the front ends wrote for result rows",
            wire_bytes.clone(),
        );
        registry.register(
            "query_duration_seconds",
            "Time from the start of an execution to its end",
            durations.clone(),
        );
        registry.register(
            "ledger_records_per_commit",
            "Usage records written by one group commit",
            commit_sizes.clone(),
        );
        Self {
            registry,
            queries,
            rows_returned,
            bytes_returned,
            bytes_scanned,
            wire_bytes,
            durations,
            commit_sizes,
        }
    }

    /// Counts one record.
    pub fn observe(&self, record: &UsageRecord) {
        let tenant = TenantLabels {
            tenant: record.tenant.clone(),
        };
        let protocol = ProtocolLabels {
            tenant: record.tenant.clone(),
            protocol: record.protocol.as_str().to_owned(),
        };
        self.queries
            .get_or_create(&QueryLabels {
                tenant: record.tenant.clone(),
                protocol: protocol.protocol.clone(),
                outcome: record.outcome.as_str().to_owned(),
            })
            .inc();
        self.rows_returned
            .get_or_create(&tenant)
            .inc_by(record.rows_returned);
        self.bytes_returned
            .get_or_create(&tenant)
            .inc_by(record.bytes_returned);
        self.bytes_scanned
            .get_or_create(&tenant)
            .inc_by(record.bytes_scanned);
        self.wire_bytes
            .get_or_create(&protocol)
            .inc_by(record.wire_bytes);
        let seconds = (record.finished_at - record.started_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        self.durations.get_or_create(&protocol).observe(seconds);
    }

    /// Counts one group commit of `records` records.
    pub fn committed(&self, records: usize) {
        self.commit_sizes.observe(records as f64);
    }

    /// Every metric in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }
}
