//! The ledger's writer task: group commits, and the records kept while the store is down.
//!
//! ```text
//!   queue ─▶ group ─▶ append (retried with backoff) ─┬─ ok ─▶ receipts Ok, store available
//!                                                     └─ failed ─▶ receipts Err, store unavailable,
//!                                                        records kept in the backlog
//!   backlog ─▶ appended again every RETRY_INTERVAL, with whatever was queued since,
//!              until the store takes them ─▶ store available
//! ```
//!
//! While the store is unavailable, [`Health::check`] refuses new queries (the gateway never
//! serves a query it cannot record); the records of queries that ran before are kept and
//! written when the store returns. Records are inserted by record id with "insert or
//! ignore", so a group appended again is never counted twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tollgate_planner::metering::{LedgerError, UsageRecord};

use super::store::LedgerStore;
use crate::metrics::UsageMetrics;

/// The most records one group commit takes.
const MAX_GROUP: usize = 1024;
/// How often a failing group is tried before its queries are told and the store is marked
/// unavailable.
const ATTEMPTS: u32 = 6;
/// How often the backlog is tried again while the store is unavailable.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// A record waiting for its group commit, and who waits for it.
pub(super) struct Pending {
    pub(super) record: UsageRecord,
    pub(super) durable: oneshot::Sender<Result<(), LedgerError>>,
}

/// Whether the store takes records now, and why not.
#[derive(Debug, Default)]
pub(super) struct Health {
    down: AtomicBool,
    reason: std::sync::Mutex<String>,
}

impl Health {
    /// `Ok` while the store takes records; the last failure while it does not.
    pub(super) fn check(&self) -> Result<(), LedgerError> {
        if !self.down.load(Ordering::Acquire) {
            return Ok(());
        }
        let reason = self
            .reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Err(LedgerError::Unavailable(format!(
            "{reason}; queries are refused until it takes records again"
        )))
    }

    fn failed(&self, error: &LedgerError) {
        *self
            .reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = error.to_string();
        self.down.store(true, Ordering::Release);
    }

    fn recovered(&self) {
        self.down.store(false, Ordering::Release);
    }
}

/// The writer: takes everything queued, writes it as one group with the backlog, tells each
/// query.
pub(super) async fn write_groups(
    store: Arc<dyn LedgerStore>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    metrics: Arc<UsageMetrics>,
    unwritten: Arc<AtomicUsize>,
    health: Arc<Health>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut backlog: Vec<UsageRecord> = Vec::new();
    loop {
        if backlog.is_empty() {
            if pending.recv_many(&mut group, MAX_GROUP).await == 0 {
                return;
            }
        } else {
            tokio::select! {
                received = pending.recv_many(&mut group, MAX_GROUP) => {
                    if received == 0 {
                        return;
                    }
                }
                () = tokio::time::sleep(RETRY_INTERVAL) => {}
            }
        }
        let (fresh, waiters): (Vec<UsageRecord>, Vec<_>) = group
            .drain(..)
            .map(|Pending { record, durable }| (record, durable))
            .unzip();
        let retrying = backlog.len();
        let mut records = std::mem::take(&mut backlog);
        records.extend(fresh);
        let attempts = if retrying > 0 { 1 } else { ATTEMPTS };
        let result = append_with_retries(store.as_ref(), &records, attempts).await;
        match &result {
            Ok(()) => {
                if retrying > 0 {
                    tracing::info!(
                        records = retrying,
                        "the usage ledger takes records again; the records kept meanwhile are written"
                    );
                }
                health.recovered();
                metrics.committed(records.len());
            }
            Err(error) => {
                if retrying == 0 {
                    tracing::error!(%error, "usage ledger unavailable: refusing queries until it returns");
                }
                // Logged whole as they join the backlog, so the operator can replay them
                // should the gateway stop before the store returns.
                for record in &records[retrying..] {
                    let line = serde_json::to_string(record).unwrap_or_default();
                    tracing::error!(%error, record = %line, "usage record not written yet");
                }
                health.failed(error);
                backlog = records;
            }
        }
        unwritten.fetch_sub(waiters.len(), Ordering::AcqRel);
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

async fn append_with_retries(
    store: &dyn LedgerStore,
    records: &[UsageRecord],
    attempts: u32,
) -> Result<(), LedgerError> {
    let mut backoff = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        match store.append(records).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt < attempts => {
                tracing::warn!(%error, attempt, "usage ledger write failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}
