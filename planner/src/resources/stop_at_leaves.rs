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

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::resources::pass_through::{PassThroughExec, StreamWatch};
use crate::resources::stoppable::{StopSignal, stopped};

/// Passes a leaf's batches through until its query is stopped.
#[derive(Debug)]
struct StopCheck {
    signal: StopSignal,
}

/// `plan` with each of its leaves under a `StopCheckExec` reading `signal`.
///
/// # Errors
/// If the plan cannot be rebuilt with the new children.
pub(crate) fn check_leaves(
    plan: Arc<dyn ExecutionPlan>,
    signal: &StopSignal,
) -> Result<Arc<dyn ExecutionPlan>> {
    let check = Arc::new(StopCheck {
        signal: signal.clone(),
    });
    plan.transform_up(|node| {
        Ok(if node.children().is_empty() {
            Transformed::yes(
                Arc::new(PassThroughExec::new(node, Arc::clone(&check))) as Arc<dyn ExecutionPlan>
            )
        } else {
            Transformed::no(node)
        })
    })
    .map(|transformed| transformed.data)
}

impl StreamWatch for StopCheck {
    fn name(&self) -> &'static str {
        "StopCheckExec"
    }

    fn describe(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StopCheckExec")
    }

    fn watch(&self, input: Result<SendableRecordBatchStream>) -> Result<SendableRecordBatchStream> {
        let stream = input?;
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
