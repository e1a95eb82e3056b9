//! Batches produced by a task on the network runtime (a replica query, an Athena query),
//! read by a query's executor through a two-batch channel.
//!
//! Dropping the stream aborts the task. A task that ends without an error but panicked is
//! reported as an error, never as a result that silently ended early.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::metrics::BaselineMetrics;
use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::executor::AbortOnDrop;

/// Batches the task sends.
pub(crate) type BatchSender = mpsc::Sender<Result<RecordBatch>>;

/// Spawns `work` on `io` with a sender for its batches, and returns them as a stream that
/// counts its rows in `metrics`.
pub(crate) fn spawn_batches<F>(
    io: &tokio::runtime::Handle,
    metrics: BaselineMetrics,
    work: impl FnOnce(BatchSender) -> F,
) -> impl Stream<Item = Result<RecordBatch>> + Send + 'static
where
    F: Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(2);
    let task: JoinHandle<()> = io.spawn(work(sender));
    futures::stream::unfold(
        (receiver, Some(AbortOnDrop(task)), metrics),
        |(mut receiver, mut task, metrics)| async move {
            match receiver.recv().await {
                Some(batch) => {
                    if let Ok(batch) = &batch {
                        metrics.record_output(batch.num_rows());
                    }
                    Some((batch, (receiver, task, metrics)))
                }
                None => {
                    // The channel closed: the task ended. Did it end well?
                    let mut finished = task.take()?;
                    match (&mut finished.0).await {
                        Err(error) if error.is_panic() => Some((
                            Err(DataFusionError::Internal(format!(
                                "a source scan failed: {error}"
                            ))),
                            (receiver, None, metrics),
                        )),
                        _ => None,
                    }
                }
            }
        },
    )
}
