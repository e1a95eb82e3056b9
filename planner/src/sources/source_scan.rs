//! The boundary between a grant's plan and its source: every leaf of a granted view's
//! physical plan (a Parquet scan, a replica query) runs under a [`SourceScanExec`], which
//! turns the leaf's errors into [`DatasetError`]s. An error from below this node is the
//! source's (store down, file gone, a file of another schema); errors of the grant's own
//! operators above it pass unchanged.

use std::fmt;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::TryStreamExt;

use crate::resources::pass_through::{PassThroughExec, StreamWatch};
use crate::sources::source_error::DatasetError;

/// A source scan of one dataset, reporting its failures by the dataset's id.
pub(crate) type SourceScanExec = PassThroughExec<DatasetScan>;

/// The dataset a source scan reads, whose id its errors carry.
#[derive(Debug)]
pub(crate) struct DatasetScan {
    dataset: String,
}

/// `plan` with each of its leaves under a [`SourceScanExec`] for `dataset`.
///
/// # Errors
/// If the plan cannot be rebuilt with the new children.
pub(crate) fn wrap_leaves(
    dataset: &str,
    plan: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let scan = Arc::new(DatasetScan {
        dataset: dataset.to_owned(),
    });
    plan.transform_up(|node| {
        if node.children().is_empty() {
            Ok(Transformed::yes(
                Arc::new(SourceScanExec::new(node, Arc::clone(&scan))) as Arc<dyn ExecutionPlan>,
            ))
        } else {
            Ok(Transformed::no(node))
        }
    })
    .map(|transformed| transformed.data)
}

impl StreamWatch for DatasetScan {
    fn name(&self) -> &'static str {
        "SourceScanExec"
    }

    fn describe(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SourceScanExec: dataset={}", self.dataset)
    }

    fn watch(&self, input: Result<SendableRecordBatchStream>) -> Result<SendableRecordBatchStream> {
        let dataset = self.dataset.clone();
        let stream = input.map_err(|error| {
            DatasetError::replace(error, |e| DatasetError::from_scan(&dataset, e))
        })?;
        let schema = stream.schema();
        let batches = stream.map_err(move |error| {
            DatasetError::replace(error, |e| DatasetError::from_scan(&dataset, e))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}
