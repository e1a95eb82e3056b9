//! The scan of a source that answers queries (a PostgreSQL replica, Athena): one leaf
//! [`RemoteScanExec`] whose [`RemoteQuery`] runs as a task on the network runtime and sends
//! batches to the query's executor through a two-batch channel.
//!
//! Dropping the stream aborts the task. A query that fails reaches the tenant as a
//! [`DatasetError`]; a task that panicked is reported as an error, never as a result that
//! silently ended early.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::Stream;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::resources::executor::AbortOnDrop;
use crate::sources::source_error::{DatasetError, SourceFailure};

/// The name of the counter a source scan that is not read through an object store reports
/// its scanned bytes in.
pub(crate) const SOURCE_BYTES: &str = "source_bytes_scanned";

/// One query a source runs for a scan.
#[async_trait]
pub(crate) trait RemoteQuery: fmt::Debug + Send + Sync + 'static {
    /// The runtime the query's I/O runs on.
    fn io(&self) -> &Handle;

    /// Runs the query, sending its rows as batches of the scan's schema, and adds to
    /// `scanned` the bytes the source says it scanned.
    async fn run(&self, sender: &BatchSender, scanned: &Count) -> Result<(), SourceFailure>;
}

/// A scan of one dataset answered by a [`RemoteQuery`], in one partition.
#[derive(Debug)]
pub(crate) struct RemoteScanExec {
    name: &'static str,
    dataset: String,
    query: Arc<dyn RemoteQuery>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl RemoteScanExec {
    /// A scan named `name` (in plans) of `dataset`, producing `schema` from `query`.
    pub fn new(
        name: &'static str,
        dataset: String,
        schema: SchemaRef,
        query: Arc<dyn RemoteQuery>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            name,
            dataset,
            query,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for RemoteScanExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: dataset={}", self.name, self.dataset)
    }
}

impl ExecutionPlan for RemoteScanExec {
    fn name(&self) -> &str {
        self.name
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
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
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(format!(
                "{} is a leaf and takes no children",
                self.name
            )))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let scanned = MetricBuilder::new(&self.metrics).counter(SOURCE_BYTES, partition);
        let query = Arc::clone(&self.query);
        let dataset = self.dataset.clone();
        let batches = spawn_batches(self.query.io(), metrics, |sender| async move {
            if let Err(failure) = query.run(&sender, &scanned).await {
                let error = DatasetError { dataset, failure };
                let _ = sender
                    .send(Err(DataFusionError::External(Box::new(error))))
                    .await;
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(self.properties.eq_properties.schema()),
            batches,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// Batches the task sends.
pub(crate) type BatchSender = mpsc::Sender<Result<RecordBatch>>;

/// Spawns `work` on `io` with a sender for its batches, and returns them as a stream that
/// counts its rows in `metrics`.
fn spawn_batches<F>(
    io: &Handle,
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
