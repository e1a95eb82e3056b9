//! A plan node that passes its one input's rows through unchanged while watching its
//! stream: the shared body of the wrappers that check, count or relabel what flows out of
//! a subtree (a source's errors named by dataset, a row cap, a stop check).
//!
//! A wrapper is a [`StreamWatch`]; [`PassThroughExec`] makes it a node with its input's
//! properties and statistics, so optimizers and estimates see through it.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, Statistics,
    StatisticsArgs,
};

use crate::resources::only_child::only_child;

/// What a pass-through node does with its input's stream.
pub(crate) trait StreamWatch: fmt::Debug + Send + Sync + 'static {
    /// The node's name in plans (and in the partition-local list of Flight results).
    fn name(&self) -> &'static str;

    /// The node's line in `EXPLAIN`.
    fn describe(&self, f: &mut fmt::Formatter) -> fmt::Result;

    /// The input's stream as the node passes it on, or the error opening it becomes.
    ///
    /// # Errors
    /// The input's error opening its stream, as the watch reports it.
    fn watch(&self, input: Result<SendableRecordBatchStream>) -> Result<SendableRecordBatchStream>;
}

/// `input` with its stream passed through `watch`.
#[derive(Debug)]
pub(crate) struct PassThroughExec<W> {
    input: Arc<dyn ExecutionPlan>,
    watch: Arc<W>,
}

impl<W: StreamWatch> PassThroughExec<W> {
    /// `input` under `watch`.
    pub fn new(input: Arc<dyn ExecutionPlan>, watch: Arc<W>) -> Self {
        Self { input, watch }
    }
}

impl<W: StreamWatch> DisplayAs for PassThroughExec<W> {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.watch.describe(f)
    }
}

impl<W: StreamWatch> ExecutionPlan for PassThroughExec<W> {
    fn name(&self) -> &str {
        self.watch.name()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
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
            input: only_child(children, self.watch.name())?,
            watch: Arc::clone(&self.watch),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.watch.watch(self.input.execute(partition, context))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    /// The input's own estimates: this node passes its rows through.
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
