//! The usage ledger: records go to the state store in groups, and each query learns when
//! its record is durable.
//!
//! ```text
//! QueryStream end ─▶ submit(record) ─▶ queue ─▶ writer task: take everything queued,
//!                                               one transaction + one sync for all of it
//!                  ◀── receipt resolves ◀────── (retried with backoff if the store fails)
//! ```
//!
//! Under load many queries finish while one group is being synced; they all go in the
//! next group, so the cost of a sync is shared. Records are keyed by record id and written
//! with "insert or ignore", so a retried group never duplicates one. While the store fails,
//! the ledger refuses new queries and keeps the records it could not write until the store
//! returns (`writer`).

pub mod export;
mod postgres;
mod sqlite;
mod store;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tollgate_catalog::{LedgerKind, UsageOptions};
use tollgate_planner::metering::{
    LedgerError, NoLedger, Receipt, UsageLedger, UsageRecord, UsageScope,
};

use crate::metrics::UsageMetrics;
use writer::{Health, Pending, write_groups};

pub use store::LedgerStore;

/// Opens the store `options` names (creating its table if needed).
///
/// # Errors
/// [`LedgerError::Unavailable`] if the store cannot be opened.
pub async fn open_store(
    options: &UsageOptions,
) -> Result<Option<Arc<dyn LedgerStore>>, LedgerError> {
    Ok(match options.ledger {
        LedgerKind::Sqlite => Some(Arc::new(sqlite::SqliteStore::open(&options.path).await?)),
        LedgerKind::Postgres => {
            let config = options.postgres.as_deref().ok_or_else(|| {
                LedgerError::Unavailable(
                    "usage.ledger is \"postgres\" but usage.postgres (a connection string) is not set"
                        .to_owned(),
                )
            })?;
            Some(Arc::new(postgres::PostgresStore::open(config).await?))
        }
        LedgerKind::None => None,
    })
}

/// The ledger of a running gateway: group commit into a store, and the metrics of every
/// record.
#[derive(Debug)]
pub struct Ledger {
    queue: mpsc::UnboundedSender<Pending>,
    store: Option<Arc<dyn LedgerStore>>,
    metrics: Arc<UsageMetrics>,
    /// Records submitted and not yet written (or given up on).
    unwritten: Arc<AtomicUsize>,
    /// Whether the store takes records now.
    health: Arc<Health>,
}

impl Ledger {
    /// A ledger writing to `store` (none: records are counted in metrics only), with its
    /// writer task on the current runtime.
    pub fn start(store: Option<Arc<dyn LedgerStore>>, metrics: Arc<UsageMetrics>) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        let unwritten = Arc::new(AtomicUsize::new(0));
        let health = Arc::new(Health::default());
        if let Some(store) = &store {
            tokio::spawn(write_groups(
                Arc::clone(store),
                pending,
                Arc::clone(&metrics),
                Arc::clone(&unwritten),
                Arc::clone(&health),
            ));
        }
        Self {
            queue,
            store,
            metrics,
            unwritten,
            health,
        }
    }

    /// Waits until every record submitted so far is written (or given up on after its
    /// retries), for at most `within`; whether none is left.
    pub async fn settle(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.unwritten.load(Ordering::Acquire) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl UsageLedger for Ledger {
    fn submit(&self, record: UsageRecord) -> Receipt {
        self.metrics.observe(&record);
        if self.store.is_none() {
            return NoLedger.submit(record);
        }
        let (durable, receipt) = oneshot::channel();
        self.unwritten.fetch_add(1, Ordering::AcqRel);
        if let Err(error) = self.queue.send(Pending { record, durable }) {
            self.unwritten.fetch_sub(1, Ordering::AcqRel);
            let record = error.0.record;
            tracing::error!(record_id = %record.record_id, "the usage ledger's writer has stopped");
            return Box::pin(std::future::ready(Err(LedgerError::Unavailable(
                "the ledger's writer has stopped".to_owned(),
            ))));
        }
        Box::pin(async move {
            receipt.await.unwrap_or_else(|_| {
                Err(LedgerError::Unavailable(
                    "the ledger's writer has stopped".to_owned(),
                ))
            })
        })
    }

    fn accepting(&self) -> Result<(), LedgerError> {
        self.health.check()
    }

    fn records(
        &self,
        scope: UsageScope,
    ) -> BoxFuture<'static, Result<Vec<UsageRecord>, LedgerError>> {
        match &self.store {
            Some(store) => {
                let store = Arc::clone(store);
                Box::pin(async move { store.read(&scope).await })
            }
            None => NoLedger.records(scope),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use tollgate_planner::metering::{Outcome, Protocol};
    use uuid::Uuid;

    use super::*;

    fn record(tenant: &str) -> UsageRecord {
        let now = Utc::now();
        UsageRecord {
            record_id: Uuid::now_v7(),
            query_id: Uuid::now_v7(),
            part: 0,
            parts: 1,
            tenant: tenant.to_owned(),
            principal: tenant.to_owned(),
            channel: None,
            protocol: Protocol::Pgwire,
            client_address: None,
            application_name: None,
            datasets: vec!["tpch.region".to_owned()],
            started_at: now,
            finished_at: now,
            planning_us: 1,
            execution_us: 2,
            outcome: Outcome::Ok,
            sqlstate: None,
            rows_returned: 5,
            bytes_returned: 100,
            wire_bytes: 120,
            bytes_scanned: 1000,
            rows_scanned: 5,
            peak_memory: 0,
            spill_bytes: 0,
            sql_hash: String::new(),
            sql_text: None,
            cost: 0.0,
            scans: Vec::new(),
        }
    }

    async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn LedgerStore> {
        Arc::new(
            sqlite::SqliteStore::open(&dir.path().join("usage.db"))
                .await
                .expect("open"),
        )
    }

    #[tokio::test]
    async fn a_record_written_twice_is_kept_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = sqlite(&dir).await;
        let record = record("acme");
        store
            .append(std::slice::from_ref(&record))
            .await
            .expect("append");
        store
            .append(&[record.clone(), record.clone()])
            .await
            .expect("append again");
        let read = store.read(&UsageScope::default()).await.expect("read");
        assert_eq!(read, vec![record]);
    }

    #[tokio::test]
    async fn a_scope_reads_one_tenant_and_a_time_range() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = sqlite(&dir).await;
        let (acme, globex) = (record("acme"), record("globex"));
        store.append(&[acme.clone(), globex]).await.expect("append");
        let read = store.read(&UsageScope::tenant("acme")).await.expect("read");
        assert_eq!(read, vec![acme.clone()]);
        let later = UsageScope {
            from: Some(acme.started_at + chrono::Duration::seconds(1)),
            ..UsageScope::default()
        };
        assert!(store.read(&later).await.expect("read").is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_queries_share_group_commits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let metrics = Arc::new(UsageMetrics::new());
        let ledger = Ledger::start(Some(sqlite(&dir).await), Arc::clone(&metrics));
        let receipts: Vec<Receipt> = (0..500).map(|_| ledger.submit(record("acme"))).collect();
        for receipt in futures::future::join_all(receipts).await {
            receipt.expect("durable");
        }
        let read = ledger
            .records(UsageScope::tenant("acme"))
            .await
            .expect("read");
        assert_eq!(read.len(), 500);
        let commits: f64 = metrics
            .render()
            .lines()
            .find_map(|line| line.strip_prefix("tollgate_ledger_records_per_commit_count "))
            .and_then(|count| count.parse().ok())
            .expect("commit count");
        assert!(commits < 100.0, "{commits} commits for 500 records");
    }
}
