//! Joins that give their thread back: a cancelled or timed-out query must free its tenant's
//! executor threads at once.
//!
//! A query stops when its task is aborted, and an abort takes effect only when the task
//! yields. DataFusion makes sources yield when the task's budget runs out
//! (`EnsureCooperative`), but a join can emit thousands of batches from one input batch
//! (a cross join emits one per row of its build side) without polling a source, and an
//! aggregate above it loops over them without yielding. The tenant's threads then stay busy
//! with a cancelled query for seconds. This rule puts a budget check above every join.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{CrossJoinExec, HashJoinExec, NestedLoopJoinExec};

/// Wraps every join in a [`CooperativeExec`].
#[derive(Debug, Default)]
pub(crate) struct YieldingJoins;

fn is_join(plan: &dyn ExecutionPlan) -> bool {
    plan.downcast_ref::<CrossJoinExec>().is_some()
        || plan.downcast_ref::<NestedLoopJoinExec>().is_some()
        || plan.downcast_ref::<HashJoinExec>().is_some()
}

impl PhysicalOptimizerRule for YieldingJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|plan| {
            Ok(if is_join(plan.as_ref()) {
                Transformed::yes(Arc::new(CooperativeExec::new(plan)) as Arc<dyn ExecutionPlan>)
            } else {
                Transformed::no(plan)
            })
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "YieldingJoins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
