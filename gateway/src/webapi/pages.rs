//! A query's result read page by page: at most so many rows or so many bytes per page,
//! the rest of a batch kept for the next one, and whether anything is left known before a
//! page is answered.

use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use tollgate_planner::QueryStream;

use super::errors::WebError;

/// A page's bounds.
#[derive(Debug, Clone, Copy)]
pub struct PageSize {
    /// Most rows.
    pub rows: usize,
    /// Most Arrow bytes (at least one row is always given).
    pub bytes: usize,
}

/// A running query's result, read in pages.
pub struct PageReader {
    stream: QueryStream,
    /// Rows read from the stream but not yet given.
    pending: Option<RecordBatch>,
    finished: bool,
}

impl std::fmt::Debug for PageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageReader")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl PageReader {
    /// Reads `stream`.
    pub fn new(stream: QueryStream) -> Self {
        Self {
            stream,
            pending: None,
            finished: false,
        }
    }

    /// The stream's schema.
    pub fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.stream.schema()
    }

    /// The counter of bytes written for the query's rows.
    pub fn wire_bytes(&self) -> tollgate_planner::metering::WireBytes {
        self.stream.wire_bytes()
    }

    /// Hands the next page's batches to `each` and returns its row count. The first batch
    /// after the page is read ahead, so [`PageReader::has_more`] is known before the page
    /// is answered; reading to the end waits for the query's record to be durable, which
    /// comes after `each` saw (and counted) every batch.
    ///
    /// # Errors
    /// The query's error, or `each`'s.
    pub async fn next_page(
        &mut self,
        size: PageSize,
        mut each: impl FnMut(&RecordBatch) -> Result<(), WebError>,
    ) -> Result<usize, WebError> {
        let (mut rows, mut bytes) = (0usize, 0usize);
        while rows < size.rows && (rows == 0 || bytes < size.bytes) {
            let Some(batch) = self.take_batch().await? else {
                break;
            };
            let wanted = size.rows - rows;
            let batch = if batch.num_rows() > wanted {
                self.pending = Some(batch.slice(wanted, batch.num_rows() - wanted));
                batch.slice(0, wanted)
            } else {
                batch
            };
            rows += batch.num_rows();
            bytes += batch.get_array_memory_size();
            each(&batch)?;
        }
        if self.pending.is_none() && !self.finished {
            self.pending = self.take_batch().await?;
        }
        Ok(rows)
    }

    /// The next non-empty batch, pending rows first; `None` at the end.
    async fn take_batch(&mut self) -> Result<Option<RecordBatch>, WebError> {
        if let Some(batch) = self.pending.take() {
            return Ok(Some(batch));
        }
        while !self.finished {
            match self.stream.next().await {
                Some(Ok(batch)) if batch.num_rows() == 0 => {}
                Some(Ok(batch)) => return Ok(Some(batch)),
                Some(Err(error)) => return Err(error.into()),
                None => self.finished = true,
            }
        }
        Ok(None)
    }

    /// Whether rows remain to be given.
    pub fn has_more(&self) -> bool {
        self.pending.is_some()
    }
}
