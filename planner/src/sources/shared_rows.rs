//! Rows read once from a dataset's source and handed to several queries: each push channel
//! of a dataset gets a [`SharedRows`] table, which its grant reads instead of the source
//! table (see `grants::provided_rows`), so a new file is read once however many channels
//! take it.
//!
//! ```text
//!                       ┌─▶ bounded channel ─▶ SharedRows (channel 1's query: its grant, its model)
//! slice read ─▶ fan_out ┼─▶ bounded channel ─▶ SharedRows (channel 2's query)
//!  (bytes scanned)      └─▶ …
//! ```
//!
//! The slowest query sets the pace (each channel holds two batches at most); a query that
//! stops early (an error, a broker gone) drops its receiver and no longer holds the others
//! back. Each query's scan reports the rows it was given and the slice's bytes scanned,
//! so each channel's usage record bills the read as its own.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::sources::remote_scan::SOURCE_BYTES;

/// Where a query's share of the rows arrives.
type Receiver = mpsc::Receiver<Result<RecordBatch>>;

/// Batches each query may be behind the read.
const BEHIND: usize = 2;

/// What a slice read hands over: its rows as they come, and once they all came, the bytes
/// the read scanned.
pub trait SliceRows: Send {
    /// The rows' schema: the dataset's source table's.
    fn schema(&self) -> SchemaRef;
    /// The next batch; `None` at the end.
    fn next(&mut self) -> futures::future::BoxFuture<'_, Option<Result<RecordBatch>>>;
    /// The bytes scanned so far (all of them once [`Self::next`] returned `None`).
    fn scanned(&self) -> u64;
}

/// Reads `rows` once for `count` queries: the tables they read it through, and the read,
/// which must run alongside them; it ends with the bytes scanned, or the read's error
/// (which the queries also get).
pub fn fan_out(
    mut rows: Box<dyn SliceRows>,
    count: usize,
) -> (
    impl Future<Output = Result<u64, String>> + Send,
    Vec<Arc<SharedRows>>,
) {
    let schema = rows.schema();
    let scanned = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::with_capacity(count);
    let mut tables = Vec::with_capacity(count);
    for _ in 0..count {
        let (sender, receiver) = mpsc::channel(BEHIND);
        senders.push(Some(sender));
        tables.push(Arc::new(SharedRows {
            schema: Arc::clone(&schema),
            receiver: Mutex::new(Some(receiver)),
            scanned: Arc::clone(&scanned),
        }));
    }
    let read = async move {
        loop {
            match rows.next().await {
                Some(Ok(batch)) => {
                    for slot in &mut senders {
                        let Some(sender) = slot else { continue };
                        if sender.send(Ok(batch.clone())).await.is_err() {
                            *slot = None;
                        }
                    }
                    if senders.iter().all(Option::is_none) {
                        return Err("every query stopped".to_owned());
                    }
                }
                Some(Err(error)) => {
                    let shared = Arc::new(error);
                    for sender in senders.iter().flatten() {
                        let _ = sender
                            .send(Err(DataFusionError::Shared(Arc::clone(&shared))))
                            .await;
                    }
                    return Err(shared.to_string());
                }
                None => {
                    // Known before the queries see the end, so their records bill it.
                    scanned.store(rows.scanned(), Ordering::SeqCst);
                    return Ok(rows.scanned());
                }
            }
        }
    };
    (read, tables)
}

/// The receiver in `slot`, which only the first scan gets.
fn take_once(slot: &Mutex<Option<Receiver>>) -> Result<Receiver> {
    slot.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or_else(|| DataFusionError::Internal("shared rows are read once".to_owned()))
}

/// One query's share of a slice read: a table of the source's schema that can be scanned
/// once.
pub struct SharedRows {
    schema: SchemaRef,
    receiver: Mutex<Option<Receiver>>,
    scanned: Arc<AtomicU64>,
}

impl fmt::Debug for SharedRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRows").finish_non_exhaustive()
    }
}

#[async_trait]
impl TableProvider for SharedRows {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let receiver = take_once(&self.receiver)?;
        let schema = match projection {
            Some(indices) => Arc::new(self.schema.project(indices)?),
            None => Arc::clone(&self.schema),
        };
        Ok(Arc::new(SharedRowsExec {
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(Arc::clone(&schema)),
                Partitioning::UnknownPartitioning(1),
                EmissionType::Incremental,
                Boundedness::Bounded,
            )),
            projection: projection.cloned(),
            receiver: Mutex::new(Some(receiver)),
            scanned: Arc::clone(&self.scanned),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

/// The leaf reading a [`SharedRows`]: its rows counted as scanned, and the read's bytes
/// reported as the source's at the end.
struct SharedRowsExec {
    properties: Arc<PlanProperties>,
    projection: Option<Vec<usize>>,
    receiver: Mutex<Option<Receiver>>,
    scanned: Arc<AtomicU64>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for SharedRowsExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRowsExec").finish_non_exhaustive()
    }
}

impl DisplayAs for SharedRowsExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedRowsExec")
    }
}

impl ExecutionPlan for SharedRowsExec {
    fn name(&self) -> &str {
        "SharedRowsExec"
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
            Err(DataFusionError::Internal(
                "SharedRowsExec is a leaf and takes no children".to_owned(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let receiver = take_once(&self.receiver)?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let reported = MetricBuilder::new(&self.metrics).counter(SOURCE_BYTES, partition);
        let (projection, scanned) = (self.projection.clone(), Arc::clone(&self.scanned));
        let batches = futures::stream::unfold(
            (receiver, metrics, false),
            move |(mut receiver, metrics, ended)| {
                let projection = projection.clone();
                let scanned = Arc::clone(&scanned);
                let reported = reported.clone();
                async move {
                    if ended {
                        return None;
                    }
                    match receiver.recv().await {
                        Some(Ok(batch)) => {
                            let batch = match &projection {
                                Some(indices) => batch.project(indices).map_err(Into::into),
                                None => Ok(batch),
                            };
                            if let Ok(batch) = &batch {
                                metrics.record_output(batch.num_rows());
                            }
                            Some((batch, (receiver, metrics, false)))
                        }
                        Some(Err(error)) => Some((Err(error), (receiver, metrics, true))),
                        None => {
                            reported.add(scanned.load(Ordering::SeqCst) as usize);
                            None
                        }
                    }
                }
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(self.properties.eq_properties.schema()),
            batches.boxed(),
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use datafusion::arrow::array::{Array, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::error::Result;
    use datafusion::prelude::SessionContext;
    use futures::future::{BoxFuture, join_all};

    use super::{SliceRows, fan_out};

    /// Ten batches of ten ids, counting how often it was asked for one.
    struct Counted {
        schema: SchemaRef,
        next: i64,
        asked: Arc<AtomicUsize>,
    }

    impl SliceRows for Counted {
        fn schema(&self) -> SchemaRef {
            Arc::clone(&self.schema)
        }

        fn next(&mut self) -> BoxFuture<'_, Option<Result<RecordBatch>>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            let start = self.next;
            self.next += 10;
            let schema = Arc::clone(&self.schema);
            Box::pin(async move {
                (start < 100).then(|| {
                    let ids = Int64Array::from_iter_values(start..start + 10);
                    Ok(RecordBatch::try_new(schema, vec![Arc::new(ids)]).expect("a batch"))
                })
            })
        }

        fn scanned(&self) -> u64 {
            4_096
        }
    }

    #[tokio::test]
    async fn each_query_gets_every_row_of_one_read_and_a_stopped_one_holds_none_back() {
        let asked = Arc::new(AtomicUsize::new(0));
        let rows = Counted {
            schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            next: 0,
            asked: Arc::clone(&asked),
        };
        let (read, tables) = fan_out(Box::new(rows), 3);
        let mut tables = tables.into_iter();
        let stopped = tables.next().expect("a table");
        drop(stopped);
        let queries = tables.map(|table| async move {
            let context = SessionContext::new();
            let frame = context.read_table(table).expect("a frame");
            let batches = frame.collect().await.expect("the rows");
            batches
                .iter()
                .map(|batch| batch.column(0).len())
                .sum::<usize>()
        });
        let (scanned, counts) = tokio::join!(read, join_all(queries));
        assert_eq!(scanned, Ok(4_096));
        assert_eq!(counts, vec![100, 100]);
        assert_eq!(
            asked.load(Ordering::SeqCst),
            11,
            "ten batches and the end, once"
        );
    }
}
