//! Work that stops when its query is stopped, wherever the plan spends its time.
//!
//! A query stops by aborting its job, and an abort takes effect when the job yields. Most
//! operators yield often: sources consume tokio's cooperative budget
//! (`EnsureCooperative`), and joins are wrapped so that their outputs do too
//! ([`crate::resources::cooperative`]). What does not yield is a join whose filter rejects most pairs:
//! a nested-loop join checks every build row against a probe batch inside one poll (minutes
//! for a large build side), and hash and sort-merge joins loop over filtered-out candidates
//! the same way. Those loops evaluate the join filter once per chunk of pairs, so the filter
//! is where the stop is checked: [`with_stop_checks`] wraps every join filter in a
//! [`StopCheck`] that fails the evaluation once the query's [`StopSignal`] is raised.
//!
//! ```text
//! cancel / timeout / disconnect / revocation
//!   └─ QueryStream drops its job ─▶ StopSignal raised ─▶ next filter chunk fails ─▶ job
//!      aborted at the yield that follows ─▶ threads free, slot released
//! ```
//!
//! The check is one relaxed atomic load per chunk (a build row of a nested-loop join,
//! at most `batch_size` pairs of the others). Operators that take many batches in one poll
//! (a sort keeping its top rows) check the same signal on every batch their leaves produce
//! ([`crate::resources::stop_at_leaves`]).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::datatypes::{FieldRef, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{
    HashJoinExec, NestedLoopJoinExec, NestedLoopJoinExecBuilder, SortMergeJoinExec,
};

use crate::resources::only_child::only_child;

/// Raised when a query is stopped; read by the checks in its running plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// Tells the query's work to stop.
    pub fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the query was stopped.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a stopped query's work ends with; nobody reads it, the query's stream has
/// already told the client why it stopped.
pub(crate) fn stopped() -> DataFusionError {
    DataFusionError::Execution("the query was stopped".to_owned())
}

/// `plan` with every join filter checking `signal`.
///
/// # Errors
/// If a join cannot be rebuilt with its wrapped filter.
pub(crate) fn with_stop_checks(
    plan: Arc<dyn ExecutionPlan>,
    signal: &StopSignal,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        Ok(match rebuilt_with_checked_filter(node.as_ref(), signal)? {
            Some(rebuilt) => Transformed::yes(rebuilt),
            None => Transformed::no(node),
        })
    })
    .map(|transformed| transformed.data)
}

/// `node` rebuilt with its filter wrapped, if it is a join with a filter.
fn rebuilt_with_checked_filter(
    node: &dyn ExecutionPlan,
    signal: &StopSignal,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let checked = |filter: &JoinFilter| {
        let expression = Arc::new(StopCheck {
            inner: Arc::clone(filter.expression()),
            signal: signal.clone(),
        });
        JoinFilter::new(
            expression,
            filter.column_indices().to_vec(),
            Arc::clone(filter.schema()),
        )
    };
    if let Some(join) = node.downcast_ref::<NestedLoopJoinExec>()
        && let Some(filter) = join.filter()
    {
        let rebuilt = NestedLoopJoinExecBuilder::from(join)
            .with_filter(Some(checked(filter)))
            .build()?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    if let Some(join) = node.downcast_ref::<HashJoinExec>()
        && let Some(filter) = join.filter()
    {
        let rebuilt = join.builder().with_filter(Some(checked(filter))).build()?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    if let Some(join) = node.downcast_ref::<SortMergeJoinExec>()
        && let Some(filter) = join.filter()
    {
        let rebuilt = SortMergeJoinExec::try_new(
            Arc::clone(join.left()),
            Arc::clone(join.right()),
            join.on().to_vec(),
            Some(checked(filter)),
            join.join_type(),
            join.sort_options().to_vec(),
            join.null_equality(),
        )?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    Ok(None)
}

/// An expression that fails once its query is stopped, and is `inner` otherwise.
#[derive(Debug, Clone)]
struct StopCheck {
    inner: Arc<dyn PhysicalExpr>,
    signal: StopSignal,
}

impl PartialEq for StopCheck {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.signal.0, &other.signal.0) && self.inner.eq(&other.inner)
    }
}

impl Eq for StopCheck {}

impl Hash for StopCheck {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl fmt::Display for StopCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl PhysicalExpr for StopCheck {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if self.signal.is_raised() {
            return Err(stopped());
        }
        self.inner.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self {
            inner: only_child(children, "StopCheck")?,
            signal: self.signal.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    /// The plan of a nested-loop join whose filter rejects every pair, checking `signal`.
    async fn rejecting_join(signal: &StopSignal) -> (Arc<dyn ExecutionPlan>, SessionContext) {
        let ctx = SessionContext::new();
        let sql = "SELECT count(*) FROM generate_series(1, 2000) a(x), \
                   generate_series(1, 2000) b(y) WHERE a.x + b.y < 0";
        let frame = ctx.sql(sql).await.expect("plans");
        let plan = frame.create_physical_plan().await.expect("plans");
        let plan = with_stop_checks(plan, signal).expect("rebuilt");
        (plan, ctx)
    }

    #[tokio::test]
    async fn a_stopped_nested_loop_join_fails_at_its_next_filter_chunk() {
        let signal = StopSignal::default();
        let (plan, ctx) = rejecting_join(&signal).await;
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert!(shown.contains("NestedLoopJoinExec"), "{shown}");
        let rows = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .expect("runs while not stopped");
        assert_eq!(rows.len(), 1);

        signal.raise();
        let (plan, ctx) = rejecting_join(&signal).await;
        let error = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .expect_err("stopped");
        assert!(error.to_string().contains("stopped"), "{error}");
    }
}
