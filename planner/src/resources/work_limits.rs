//! Bounds on the work one query may do, checked before and while it runs, so a tenant
//! learns at once that a statement is too big instead of holding its cores until the
//! statement timeout:
//!
//! * a cross or nested-loop join whose inputs' row estimates multiply past the profile's
//!   `max_join_pairs` is refused before it starts;
//! * a recursive query (`WITH RECURSIVE`) stops with an error once it produced
//!   `max_recursive_rows` rows over all its iterations (DataFusion has no iteration limit).
//!
//! Each refusal is the tenant pool's [`PlannerError::Limit`], carried through the engine
//! inside a [`DataFusionError::External`] ([`limit_error`]) and found again by the error
//! classification, so clients get 54000 naming the limit and the profile.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::joins::{CrossJoinExec, NestedLoopJoinExec};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::recursive_query::RecursiveQueryExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, StatisticsArgs, StatisticsContext,
};
use futures::StreamExt;

use crate::error::Limit;
use crate::resources::only_child::only_child;
use crate::resources::pool::TenantPool;

/// The engine error that carries `pool`'s refusal for `limit`.
pub(crate) fn limit_error(pool: &TenantPool, limit: Limit) -> DataFusionError {
    DataFusionError::External(Box::new(pool.refuse(limit)))
}

/// `plan` checked and bounded by the limits of `pool`'s profile.
///
/// The refusal of a join is [`limit_error`]'s, carried as described in the module docs.
///
/// # Errors
/// The refusal of a join with too many pairs, or a failure to rebuild the plan.
pub(crate) fn bound_work(
    plan: Arc<dyn ExecutionPlan>,
    pool: &Arc<TenantPool>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let profile = pool.profile();
    plan.transform_up(|node| {
        if let Some(pairs) = join_pairs(node.as_ref())?
            && pairs > u128::from(profile.max_join_pairs)
        {
            return Err(limit_error(pool, Limit::JoinPairs));
        }
        Ok(if node.downcast_ref::<RecursiveQueryExec>().is_some() {
            Transformed::yes(Arc::new(RecursiveRowCap {
                input: node,
                pool: Arc::clone(pool),
            }) as Arc<dyn ExecutionPlan>)
        } else {
            Transformed::no(node)
        })
    })
    .map(|transformed| transformed.data)
}

/// The row pairs a cross or nested-loop join compares, where both inputs' row counts are
/// estimated.
fn join_pairs(node: &dyn ExecutionPlan) -> Result<Option<u128>> {
    let is_pairwise = node.downcast_ref::<CrossJoinExec>().is_some()
        || node.downcast_ref::<NestedLoopJoinExec>().is_some();
    if !is_pairwise {
        return Ok(None);
    }
    let estimates = StatisticsContext::new();
    let mut pairs: u128 = 1;
    for input in node.children() {
        let statistics = estimates.compute(input.as_ref(), &StatisticsArgs::new())?;
        match statistics.num_rows.get_value() {
            Some(rows) => pairs = pairs.saturating_mul(*rows as u128),
            None => return Ok(None),
        }
    }
    Ok(Some(pairs))
}

/// A recursive query that fails once it produced more rows than the profile allows.
#[derive(Debug)]
struct RecursiveRowCap {
    input: Arc<dyn ExecutionPlan>,
    pool: Arc<TenantPool>,
}

impl DisplayAs for RecursiveRowCap {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RecursiveRowCap: max_recursive_rows={}",
            self.pool.profile().max_recursive_rows
        )
    }
}

impl ExecutionPlan for RecursiveRowCap {
    fn name(&self) -> &str {
        "RecursiveRowCap"
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
            input: only_child(children, "RecursiveRowCap")?,
            pool: Arc::clone(&self.pool),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        let schema = stream.schema();
        let pool = Arc::clone(&self.pool);
        let max = pool.profile().max_recursive_rows;
        let mut produced: u64 = 0;
        let capped = stream.map(move |batch| {
            let batch = batch?;
            produced += batch.num_rows() as u64;
            if produced > max {
                return Err(limit_error(&pool, Limit::RecursiveRows));
            }
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, capped)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        None
    }
}
