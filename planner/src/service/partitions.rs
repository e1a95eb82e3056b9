//! Which results can be read as independent partitions, one stream per client connection.
//!
//! A Flight SQL client may fetch a result's endpoints in parallel, from different
//! processes. Each endpoint re-plans the query and runs one output partition, so running
//! partition `k` must touch only the input of partition `k`. That holds for a pipeline of
//! per-partition operators over a partitioned scan (projections, filters, the grant
//! barrier). An operator that exchanges rows between partitions (repartition, joins,
//! aggregates, sorts, limits) would make each endpoint run the whole query to keep a
//! share of it, so such results are read as one stream.
//!
//! Scans must also keep to their plan-time file groups: by default DataFusion lets an idle
//! partition steal its siblings' files, which within one process balances work, but a
//! partition run alone would then read every file. [`partition_wise`] turns that off for
//! sessions that plan results to be read partition by partition.

use std::sync::Arc;

use datafusion::execution::SessionState;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

use crate::grants::granted_view::GrantedScanExec;

/// Operators whose output partition `k` is computed from input partition `k` alone.
const PARTITION_LOCAL: &[&str] = &[
    "ProjectionExec",
    "FilterExec",
    "CoalesceBatchesExec",
    "CooperativeExec",
    "DataSourceExec",
    "SourceScanExec",
    "StopCheckExec",
    "EmptyExec",
    "PlaceholderRowExec",
];

/// `state` set up to plan results whose partitions run apart: no file stealing.
pub(crate) fn partition_wise(mut state: SessionState) -> SessionState {
    state
        .config_mut()
        .options_mut()
        .execution
        .enable_file_stream_work_stealing = false;
    state
}

/// The number of output partitions of `plan` if each can run on its own, else 1.
pub(crate) fn independent_partitions(plan: &Arc<dyn ExecutionPlan>) -> usize {
    if partition_local(plan) {
        plan.output_partitioning().partition_count().max(1)
    } else {
        1
    }
}

fn partition_local(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let operator_local = match plan.downcast_ref::<GrantedScanExec>() {
        Some(granted) => partition_local(granted.inner()),
        None => PARTITION_LOCAL.contains(&plan.name()),
    };
    operator_local
        && plan.children().into_iter().all(|child| {
            child.output_partitioning().partition_count()
                == plan.output_partitioning().partition_count()
                && partition_local(child)
        })
}
