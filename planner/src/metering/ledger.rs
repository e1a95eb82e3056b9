//! The ledger's contract: where records go, and when they are safe.

use std::fmt::Debug;

use futures::future::BoxFuture;

use super::record::{UsageRecord, UsageScope};

/// Why the ledger could not keep or read records.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// The store failed; the message says how (it names no tenant data).
    #[error("the usage ledger is unavailable: {0}")]
    Unavailable(String),
}

/// Resolves once a submitted record is durable (or could not be made so).
pub type Receipt = BoxFuture<'static, Result<(), LedgerError>>;

/// Where usage records are kept: the gateway's state store.
///
/// Implementations write records in groups (one transaction and one sync for many queries)
/// and resolve each [`Receipt`] once its group is durable.
pub trait UsageLedger: Send + Sync + Debug {
    /// Queues `record` for the next group commit. The record is kept even if the receipt is
    /// dropped; awaiting it tells when it is durable.
    fn submit(&self, record: UsageRecord) -> Receipt;

    /// Whether the ledger takes records now. While it does not, no query starts: the gateway
    /// never serves a query it cannot record.
    ///
    /// # Errors
    /// [`LedgerError::Unavailable`] saying why, while the ledger's store fails.
    fn accepting(&self) -> Result<(), LedgerError> {
        Ok(())
    }

    /// The records in `scope`, oldest first.
    fn records(
        &self,
        scope: UsageScope,
    ) -> BoxFuture<'static, Result<Vec<UsageRecord>, LedgerError>>;
}

/// A ledger that keeps nothing: metering off (for measuring what metering costs).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLedger;

impl UsageLedger for NoLedger {
    fn submit(&self, _record: UsageRecord) -> Receipt {
        Box::pin(std::future::ready(Ok(())))
    }

    fn records(
        &self,
        _scope: UsageScope,
    ) -> BoxFuture<'static, Result<Vec<UsageRecord>, LedgerError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}
