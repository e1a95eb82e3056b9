//! The gateway's drain: once it begins no new statement is admitted, and when it ends the
//! statements still running are stopped; both answer [`PlannerError::ShuttingDown`] (57P01).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use crate::error::PlannerError;
use crate::resources::pool::TenantPool;

/// Whether the service drains, and the token that stops what still runs.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    draining: AtomicBool,
    stopped: CancellationToken,
}

impl Drain {
    /// Lets a new statement in, unless the service drains.
    ///
    /// # Errors
    /// [`PlannerError::ShuttingDown`] once it drains.
    pub(crate) fn admit(&self) -> Result<(), PlannerError> {
        if self.draining() {
            Err(PlannerError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// The token that stops every statement still running when the drain ends.
    pub(crate) fn stopped(&self) -> &CancellationToken {
        &self.stopped
    }

    /// Takes no new statement from now on.
    pub(crate) fn begin(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether no new statement is taken.
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Stops every statement still running.
    pub(crate) fn stop(&self) {
        self.begin();
        self.stopped.cancel();
    }
}

/// How many statements of `pools` run or wait for a slot now, each pool counted once (a
/// channel's session may share its tenant's pool).
pub(crate) fn running_queries(mut pools: Vec<Arc<TenantPool>>) -> usize {
    pools.sort_by_key(|pool| Arc::as_ptr(pool) as usize);
    pools.dedup_by(|a, b| Arc::ptr_eq(a, b));
    pools.iter().map(|pool| pool.queries().len()).sum()
}
