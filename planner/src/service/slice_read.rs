//! Reading a slice of a dataset as the provider (every column, no grant) for push channels,
//! with the bytes it scanned; and the newest value of a replica table's watermark column,
//! which bounds the slice of new rows.
//!
//! ```text
//! read_slice(id, slice) ─▶ source table in the private session ─▶ slice plan ─▶ stream
//!                              scanned: object store reads + what SQL sources reported
//! newest_watermark(id)  ─▶ SELECT max(column) on a replica
//! ```

use std::sync::{Arc, PoisonError};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::error::Result as EngineResult;
use datafusion::execution::{SendableRecordBatchStream, SessionState};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::StreamExt;
use futures::future::BoxFuture;
use tollgate_catalog::DatasetId;

use crate::error::PlannerError;
use crate::metering::metered_state;
use crate::metering::{QueryMemoryPool, ScanMeter, leaf_totals};
use crate::service::datasets::source_error;
use crate::service::engine::QueryService;
use crate::sources::postgres_table::PostgresTable;
use crate::sources::shared_rows::SliceRows;
use crate::sources::source_slice::Slice;
use crate::sources::tables::SOURCE_CATALOG;
use crate::sources::watermark;

impl QueryService {
    /// Reads `slice` of the served dataset `id` from its source, every column of it, as
    /// no tenant: what [`crate::shared_rows::fan_out`] hands to push channels.
    ///
    /// # Errors
    /// [`PlannerError::Source`] if `id` is not served, its source table is not open, or
    /// the slice does not fit it; engine errors from planning.
    pub async fn read_slice(
        &self,
        id: &DatasetId,
        slice: &Slice,
    ) -> Result<Box<dyn SliceRows>, PlannerError> {
        self.served(id)?;
        let state = self.live.source_state();
        let name = TableReference::full(SOURCE_CATALOG, id.domain(), id.name());
        let Some(table) = source_table(&state, id).await? else {
            return Err(source_error(id, "its source table is not open".to_owned()));
        };
        let schema = table.schema();
        let plan = slice
            .plan(&name, table)
            .map_err(|message| source_error(id, message))?;
        let paths = Arc::clone(
            &self
                .rates
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .paths,
        );
        let scans = Arc::new(ScanMeter::new(paths));
        let memory = Arc::new(QueryMemoryPool::new(Arc::clone(
            &state.runtime_env().memory_pool,
        )));
        let state = metered_state(state, &scans, &memory);
        let physical = state.create_physical_plan(&plan).await?;
        let stream = execute_stream(Arc::clone(&physical), state.task_ctx())?;
        Ok(Box::new(SliceRead {
            schema,
            stream,
            plan: physical,
            scans,
        }))
    }

    /// The newest value of the watermark column of the served dataset `id` (as text),
    /// `None` while its table is empty.
    ///
    /// # Errors
    /// [`PlannerError::Source`] if `id` is not served, has no watermark, is not a replica
    /// table, or no replica answers.
    pub async fn newest_watermark(&self, id: &DatasetId) -> Result<Option<String>, PlannerError> {
        let dataset = self.served(id)?;
        let Some(column) = &dataset.watermark else {
            return Err(source_error(id, "it declares no watermark".to_owned()));
        };
        let table = source_table(&self.live.source_state(), id).await?;
        let Some(replica) = table
            .as_ref()
            .and_then(|table| table.downcast_ref::<PostgresTable>())
        else {
            return Err(source_error(
                id,
                "it is not an open table of a postgres source".to_owned(),
            ));
        };
        watermark::newest(replica, column)
            .await
            .map_err(|message| source_error(id, message))
    }
}

/// The source table of dataset `id` in the private session `state`, if it is open.
async fn source_table(
    state: &SessionState,
    id: &DatasetId,
) -> Result<Option<Arc<dyn TableProvider>>, PlannerError> {
    let schema = state
        .catalog_list()
        .catalog(SOURCE_CATALOG)
        .and_then(|catalog| catalog.schema(id.domain()));
    Ok(match schema {
        Some(schema) => schema.table(id.name()).await?,
        None => None,
    })
}

/// A slice being read: its rows, and what its reads scanned.
struct SliceRead {
    schema: SchemaRef,
    stream: SendableRecordBatchStream,
    plan: Arc<dyn ExecutionPlan>,
    scans: Arc<ScanMeter>,
}

impl SliceRows for SliceRead {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn next(&mut self) -> BoxFuture<'_, Option<EngineResult<RecordBatch>>> {
        Box::pin(self.stream.next())
    }

    fn scanned(&self) -> u64 {
        let (per_dataset, unowned) = self.scans.totals();
        let (_, reported) = leaf_totals(self.plan.as_ref());
        per_dataset.iter().map(|(_, bytes)| bytes).sum::<u64>() + unowned + reported
    }
}
