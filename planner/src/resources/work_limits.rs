//! Bounds on the work one query may do, checked before and while it runs, so a tenant
//! learns at once that a statement is too big instead of holding its cores until the
//! statement timeout:
//!
//! * a cross or nested-loop join whose inputs' row estimates multiply past the profile's
//!   `max_join_pairs` is refused before it starts;
//! * a recursive query (`WITH RECURSIVE`) stops with an error once it produced
//!   `max_recursive_rows` rows over all its iterations (DataFusion has no iteration limit);
//! * a set-returning function in `FROM` (`generate_series`, `range`) whose integer
//!   arguments give more than `max_generated_rows` rows is refused before it starts, and any
//!   generator stops with an error once it produced that many.
//!
//! Each refusal is the tenant pool's [`PlannerError::Limit`], carried through the engine
//! inside a [`DataFusionError::External`] ([`limit_error`]) and found again by the error
//! classification, so clients get 54000 naming the limit and the profile.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::functions_table::generate_series::GenericSeriesState;
use datafusion::physical_plan::joins::{CrossJoinExec, NestedLoopJoinExec};
use datafusion::physical_plan::memory::LazyMemoryExec;
use datafusion::physical_plan::recursive_query::RecursiveQueryExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};
use futures::StreamExt;

use crate::error::Limit;
use crate::resources::pass_through::{PassThroughExec, StreamWatch};
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
        if let Some(rows) = generated_rows(node.as_ref())
            && rows > u128::from(profile.max_generated_rows)
        {
            return Err(limit_error(pool, Limit::GeneratedRows));
        }
        let cap = if node.downcast_ref::<RecursiveQueryExec>().is_some() {
            Some((Limit::RecursiveRows, profile.max_recursive_rows))
        } else if node.downcast_ref::<LazyMemoryExec>().is_some() {
            Some((Limit::GeneratedRows, profile.max_generated_rows))
        } else {
            None
        };
        Ok(match cap {
            Some((limit, max)) => {
                let cap = RowCap {
                    pool: Arc::clone(pool),
                    limit,
                    max,
                };
                Transformed::yes(
                    Arc::new(PassThroughExec::new(node, Arc::new(cap))) as Arc<dyn ExecutionPlan>
                )
            }
            None => Transformed::no(node),
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

/// The rows integer series of a generator node will produce, where its arguments tell.
fn generated_rows(node: &dyn ExecutionPlan) -> Option<u128> {
    let generator = node.downcast_ref::<LazyMemoryExec>()?;
    let mut rows: u128 = 0;
    for state in generator.generators() {
        let state = state.read();
        let series = state.as_any().downcast_ref::<GenericSeriesState<i64>>()?;
        let (start, end, step) = (
            i128::from(*series.start()),
            i128::from(*series.end()),
            i128::from(*series.step()),
        );
        let span = if step > 0 { end - start } else { start - end };
        let count = if step == 0 || span < 0 {
            0
        } else {
            // Whole steps within the span, and the start itself; the end counts if reached.
            let steps = span / step.abs();
            let reaches_end = span % step.abs() == 0;
            steps + 1 - i128::from(reaches_end && !series.include_end())
        };
        rows = rows.saturating_add(u128::try_from(count).unwrap_or(0));
    }
    Some(rows)
}

/// A recursive query or a generator that fails once it produced more rows than the
/// profile's `limit` allows.
#[derive(Debug)]
struct RowCap {
    pool: Arc<TenantPool>,
    limit: Limit,
    max: u64,
}

impl StreamWatch for RowCap {
    fn name(&self) -> &'static str {
        "RowCap"
    }

    fn describe(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RowCap: {:?} at {} rows", self.limit, self.max)
    }

    fn watch(&self, input: Result<SendableRecordBatchStream>) -> Result<SendableRecordBatchStream> {
        let stream = input?;
        let schema = stream.schema();
        let pool = Arc::clone(&self.pool);
        let (limit, max) = (self.limit, self.max);
        let mut produced: u64 = 0;
        let capped = stream.map(move |batch| {
            let batch = batch?;
            produced += batch.num_rows() as u64;
            if produced > max {
                return Err(limit_error(&pool, limit));
            }
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, capped)))
    }
}
