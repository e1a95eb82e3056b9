//! A query's own view of its tenant's memory pool: the same limit, plus the query's peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::Result;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// Delegates every reservation to the tenant's pool and tracks what this query holds.
#[derive(Debug)]
pub(crate) struct QueryMemoryPool {
    tenant: Arc<dyn MemoryPool>,
    held: AtomicUsize,
    peak: AtomicUsize,
}

impl QueryMemoryPool {
    pub fn new(tenant: Arc<dyn MemoryPool>) -> Self {
        Self {
            tenant,
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The most memory the query held at once, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed) as u64
    }

    fn grew(&self, additional: usize) {
        let held = self.held.fetch_add(additional, Ordering::Relaxed) + additional;
        self.peak.fetch_max(held, Ordering::Relaxed);
    }
}

impl std::fmt::Display for QueryMemoryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "query pool over {}", self.tenant.name())
    }
}

impl MemoryPool for QueryMemoryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.tenant.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.tenant.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.tenant.grow(reservation, additional);
        self.grew(additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.tenant.shrink(reservation, shrink);
        let _ = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                Some(held.saturating_sub(shrink))
            });
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.tenant.try_grow(reservation, additional)?;
        self.grew(additional);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.tenant.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.tenant.memory_limit()
    }
}
