//! A stop check on every batch a plan's leaves produce: an operator that pulls many batches
//! in one poll (a sort keeping its top rows, an aggregate, a window) learns of its query's
//! stop at its next batch, not only when the cooperative budget next makes it yield.
//!
//! ```text
//! SortExec: TopK ◀── StopCheckExec ◀── LazyMemoryExec (generate_series)
//!                    └─ raised? the batch becomes an error, the pipeline ends
//! ```

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, Statistics,
    StatisticsArgs,
};
use futures::StreamExt;

use crate::resources::only_child::only_child;
use crate::resources::stoppable::{StopSignal, stopped};

/// Passes its leaf's batches through until its query is stopped.
#[derive(Debug)]
pub(crate) struct StopCheckExec {
    leaf: Arc<dyn ExecutionPlan>,
    signal: StopSignal,
}

/// `plan` with each of its leaves under a [`StopCheckExec`] reading `signal`.
///
/// # Errors
/// If the plan cannot be rebuilt with the new children.
pub(crate) fn check_leaves(
    plan: Arc<dyn ExecutionPlan>,
    signal: &StopSignal,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(if node.children().is_empty() {
            Transformed::yes(Arc::new(StopCheckExec {
                leaf: node,
                signal: signal.clone(),
            }) as Arc<dyn ExecutionPlan>)
        } else {
            Transformed::no(node)
        })
    })
    .map(|transformed| transformed.data)
}

impl DisplayAs for StopCheckExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StopCheckExec")
    }
}

impl ExecutionPlan for StopCheckExec {
    fn name(&self) -> &str {
        "StopCheckExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.leaf.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.leaf]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self {
            leaf: only_child(children, "StopCheckExec")?,
            signal: self.signal.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.leaf.execute(partition, context)?;
        let schema = stream.schema();
        let signal = self.signal.clone();
        let batches = stream.map(move |batch| {
            if signal.is_raised() {
                Err(stopped())
            } else {
                batch
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    /// The leaf's own estimates: this node passes its rows through.
    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        Ok(input_stats.first().map_or_else(
            || Arc::new(Statistics::new_unknown(&self.schema())),
            Arc::clone,
        ))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        None
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    /// A top-k sort of a generated series, with its leaves checking `signal`.
    async fn top_of_a_series(signal: &StopSignal) -> (Arc<dyn ExecutionPlan>, SessionContext) {
        let ctx = SessionContext::new();
        let sql = "SELECT x FROM generate_series(1, 100000) t(x) ORDER BY x DESC LIMIT 1";
        let plan = ctx
            .sql(sql)
            .await
            .expect("plans")
            .create_physical_plan()
            .await
            .expect("plans");
        (check_leaves(plan, signal).expect("rebuilt"), ctx)
    }

    #[tokio::test]
    async fn a_stopped_query_fails_at_its_leaves_next_batch() {
        let signal = StopSignal::default();
        let (plan, ctx) = top_of_a_series(&signal).await;
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert!(shown.contains("StopCheckExec"), "{shown}");
        let rows = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .expect("runs while not stopped");
        assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 1);

        signal.raise();
        let (plan, ctx) = top_of_a_series(&signal).await;
        let error = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .expect_err("stopped");
        assert!(error.to_string().contains("stopped"), "{error}");
    }
}
