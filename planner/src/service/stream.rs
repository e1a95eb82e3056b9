//! The result stream a front end consumes: Arrow batches that stop on cancel or timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use futures::{FutureExt, Stream};
use tokio::time::Sleep;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tollgate_catalog::Profile;

use crate::error::{ErrorKind, Limit, PlannerError};
use crate::metering::{Outcome, QueryMeter, Receipt, UsageLedger, WireBytes};
use crate::resources::executor::RunningJob;
use crate::resources::pool::{TenantPool, duration_text};

/// Why a query is stopped early, with what the client is told.
pub(crate) struct Limits {
    pub cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    pub revoked: Pin<Box<WaitForCancellationFutureOwned>>,
    pub stopped: Pin<Box<WaitForCancellationFutureOwned>>,
    pub deadline: Pin<Box<Sleep>>,
    pub timeout: String,
    pub profile: String,
}

impl Limits {
    /// The limits of a statement of `profile`, stopped by `cancel`, by `revoked` (its login
    /// was revoked), by `stopped` (the gateway's drain ended) or after `timeout`.
    pub fn new(
        cancel: &CancellationToken,
        revoked: &CancellationToken,
        stopped: &CancellationToken,
        profile: &Profile,
        timeout: Duration,
    ) -> Self {
        Self {
            cancelled: Box::pin(cancel.clone().cancelled_owned()),
            revoked: Box::pin(revoked.clone().cancelled_owned()),
            stopped: Box::pin(stopped.clone().cancelled_owned()),
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout: duration_text(profile.statement_timeout),
            profile: profile.name.clone(),
        }
    }

    /// Awaits `work`, or ends with the error of the limit that fires first; `work` is
    /// dropped then.
    ///
    /// # Errors
    /// `work`'s error, [`PlannerError::Cancelled`], [`PlannerError::ShuttingDown`] or
    /// [`PlannerError::Timeout`].
    pub async fn bound<T>(
        &mut self,
        work: impl Future<Output = Result<T, PlannerError>>,
    ) -> Result<T, PlannerError> {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx| match self.poll_stop(cx) {
            Some(error) => Poll::Ready(Err(error)),
            None => work.as_mut().poll(cx),
        })
        .await
    }

    /// Polls the cancel token and the deadline; `Some(error)` once either fired.
    pub fn poll_stop(&mut self, cx: &mut Context<'_>) -> Option<PlannerError> {
        if self.stopped.poll_unpin(cx).is_ready() {
            return Some(PlannerError::ShuttingDown);
        }
        if self.cancelled.poll_unpin(cx).is_ready() || self.revoked.poll_unpin(cx).is_ready() {
            return Some(PlannerError::Cancelled);
        }
        if self.deadline.poll_unpin(cx).is_ready() {
            return Some(PlannerError::Timeout {
                timeout: self.timeout.clone(),
                profile: self.profile.clone(),
            });
        }
        None
    }
}

/// The result caps of the tenant's profile, counted while streaming.
pub(crate) struct ResultCaps {
    pub max_rows: Option<u64>,
    pub max_bytes: Option<u64>,
    pub rows: u64,
    pub bytes: u64,
}

impl ResultCaps {
    /// Counts a batch of `rows` and `bytes`; the limit it passes, if any.
    fn count(&mut self, rows: usize, bytes: u64) -> Option<Limit> {
        self.rows += rows as u64;
        self.bytes += bytes;
        if self.max_rows.is_some_and(|max| self.rows > max) {
            Some(Limit::ResultRows)
        } else if self.max_bytes.is_some_and(|max| self.bytes > max) {
            Some(Limit::ResultBytes)
        } else {
            None
        }
    }
}

/// The Arrow bytes of `batch`'s values (its slices, not whole shared buffers).
fn result_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|column| {
            column
                .to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| column.get_array_memory_size()) as u64
        })
        .sum()
}

/// A running query's output.
///
/// # Metering
/// The stream ends (`None`) only once the query's usage record is durable in the ledger, so
/// a front end that reports completion after the end never reports an unrecorded query.
/// If the ledger cannot keep the record, the stream ends with an error instead. A front end
/// adds the bytes it writes for the rows to [`QueryStream::wire_bytes`].
///
/// # Cancellation
/// Dropping the stream stops the query on the executor and frees its memory; the query is
/// recorded as cancelled. Cancelling the query's token or reaching the profile's statement
/// timeout ends the stream at once with [`PlannerError::Cancelled`] or
/// [`PlannerError::Timeout`], and aborts the query.
pub struct QueryStream {
    job: Option<RunningJob>,
    schema: SchemaRef,
    limits: Limits,
    caps: ResultCaps,
    pool: Arc<TenantPool>,
    /// The query's id in the tenant's list (its job holds the listing and the slot).
    query_id: u64,
    meter: Option<QueryMeter>,
    wire: WireBytes,
    ledger: Arc<dyn UsageLedger>,
    committing: Option<Receipt>,
}

impl QueryStream {
    pub(crate) fn new(
        job: RunningJob,
        limits: Limits,
        caps: ResultCaps,
        pool: Arc<TenantPool>,
        query_id: u64,
        meter: QueryMeter,
        ledger: Arc<dyn UsageLedger>,
    ) -> Self {
        Self {
            schema: SchemaRef::clone(&job.schema),
            job: Some(job),
            limits,
            caps,
            pool,
            query_id,
            wire: meter.wire(),
            meter: Some(meter),
            ledger,
            committing: None,
        }
    }

    /// Ends the stream with `error`: stops the job (the query is listed as cancelling until
    /// its work has ended and its slot is free) and records it.
    fn stop(&mut self, error: PlannerError) -> Poll<Option<Result<RecordBatch, PlannerError>>> {
        self.stop_job();
        if let Some(meter) = self.meter.take() {
            let (outcome, sqlstate) = error.outcome();
            // The error is reported at once; the ledger keeps the record regardless.
            drop(self.ledger.submit(meter.finish(outcome, Some(sqlstate))));
        }
        Poll::Ready(Some(Err(error)))
    }

    /// Stops the job, if it still runs.
    fn stop_job(&mut self) {
        if self.job.take().is_some() {
            self.pool.mark_cancelling(self.query_id);
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    /// The counter of bytes the front end wrote for this query's rows.
    pub fn wire_bytes(&self) -> WireBytes {
        self.wire.clone()
    }

    /// Waits for the record of a finished query to be durable.
    fn poll_commit(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<RecordBatch, PlannerError>>> {
        let Some(receipt) = self.committing.as_mut() else {
            return Poll::Ready(None);
        };
        match receipt.poll_unpin(cx) {
            Poll::Ready(result) => {
                self.committing = None;
                match result {
                    Ok(()) => Poll::Ready(None),
                    Err(error) => Poll::Ready(Some(Err(PlannerError::Ledger(error)))),
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        // Dropped before its end: the client went away or stopped reading.
        self.stop_job();
        if let Some(meter) = self.meter.take() {
            drop(
                self.ledger.submit(
                    meter.finish(Outcome::Cancelled, Some(ErrorKind::Cancelled.sqlstate())),
                ),
            );
        }
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch, PlannerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.job.is_none() {
            return self.poll_commit(cx);
        }
        if let Some(error) = self.limits.poll_stop(cx) {
            // Dropping the job aborts it on the executor.
            return self.stop(error);
        }
        let Some(job) = self.job.as_mut() else {
            return Poll::Ready(None);
        };
        match job.batches.poll_recv(cx) {
            Poll::Ready(Some(Ok(batch))) => {
                let bytes = result_bytes(&batch);
                match self.caps.count(batch.num_rows(), bytes) {
                    None => {
                        if let Some(meter) = self.meter.as_mut() {
                            meter.returned(batch.num_rows(), bytes);
                        }
                        Poll::Ready(Some(Ok(batch)))
                    }
                    Some(limit) => {
                        let error = self.pool.refuse(limit);
                        self.stop(error)
                    }
                }
            }
            Poll::Ready(Some(Err(error))) => {
                let error = PlannerError::Engine(error);
                let error = if error.kind() == ErrorKind::OutOfMemory {
                    tracing::info!(%error, "a query reached its tenant's memory limit");
                    self.pool.refuse(Limit::Memory)
                } else {
                    error
                };
                self.stop(error)
            }
            Poll::Ready(None) => {
                self.job = None;
                if let Some(meter) = self.meter.take() {
                    self.committing = Some(self.ledger.submit(meter.finish(Outcome::Ok, None)));
                }
                self.poll_commit(cx)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
