//! The boundary between a grant's plan and its source: every leaf of a granted view's
//! physical plan (a Parquet scan, a replica query) runs under a [`SourceScanExec`], which
//! turns the leaf's errors into [`DatasetError`]s. An error from below this node is the
//! source's (store down, file gone, a file of another schema); errors of the grant's own
//! operators above it pass unchanged.

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
use futures::TryStreamExt;

use crate::resources::only_child::only_child;
use crate::sources::source_error::DatasetError;

/// A source scan of one dataset, reporting its failures by the dataset's id.
#[derive(Debug)]
pub struct SourceScanExec {
    dataset: String,
    scan: Arc<dyn ExecutionPlan>,
}

impl SourceScanExec {
    /// `plan` with each of its leaves under a `SourceScanExec` for `dataset`.
    ///
    /// # Errors
    /// If the plan cannot be rebuilt with the new children.
    pub fn wrap_leaves(
        dataset: &str,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.children().is_empty() {
                Ok(Transformed::yes(Arc::new(Self {
                    dataset: dataset.to_owned(),
                    scan: node,
                })
                    as Arc<dyn ExecutionPlan>))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|transformed| transformed.data)
    }
}

impl DisplayAs for SourceScanExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SourceScanExec: dataset={}", self.dataset)
    }
}

impl ExecutionPlan for SourceScanExec {
    fn name(&self) -> &str {
        "SourceScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.scan.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.scan]
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
            dataset: self.dataset.clone(),
            scan: only_child(children, "SourceScanExec")?,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let dataset = self.dataset.clone();
        let stream = self.scan.execute(partition, context).map_err(|error| {
            DatasetError::replace(error, |e| DatasetError::from_scan(&dataset, e))
        })?;
        let schema = stream.schema();
        let batches = stream.map_err(move |error| {
            DatasetError::replace(error, |e| DatasetError::from_scan(&dataset, e))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    /// The scan's own estimates: this node passes its rows through.
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
