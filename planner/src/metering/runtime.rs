//! A query's own runtime: the session's stores and memory pool, seen through the query's
//! scan meter and memory tracker.

use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionState, SessionStateBuilder};

use super::memory::QueryMemoryPool;
use super::scan::{MeteredRegistry, ScanMeter};

/// `state` with a runtime of its own for one query: the same stores and memory pool,
/// seen through the query's scan meter and memory tracker.
pub(crate) fn metered_state(
    state: SessionState,
    scans: &Arc<ScanMeter>,
    memory: &Arc<QueryMemoryPool>,
) -> SessionState {
    let mut runtime = RuntimeEnv::clone(state.runtime_env());
    runtime.memory_pool = Arc::clone(memory) as _;
    runtime.object_store_registry = Arc::new(MeteredRegistry::new(
        Arc::clone(&runtime.object_store_registry),
        Arc::clone(scans),
    ));
    SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(Arc::new(runtime))
        .build()
}
