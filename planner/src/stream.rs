//! The result stream a front end consumes: Arrow batches that stop on cancel or timeout.

use std::pin::Pin;
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use futures::{FutureExt, Stream};
use tokio::time::Sleep;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::error::PlannerError;
use crate::executor::RunningJob;

/// Why a query is stopped early, with what the client is told.
pub(crate) struct Limits {
    pub cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    pub deadline: Pin<Box<Sleep>>,
    pub timeout: String,
    pub profile: String,
}

impl Limits {
    /// Polls the cancel token and the deadline; `Some(error)` once either fired.
    pub fn poll_stop(&mut self, cx: &mut Context<'_>) -> Option<PlannerError> {
        if self.cancelled.poll_unpin(cx).is_ready() {
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

/// A running query's output.
///
/// # Cancellation
/// Dropping the stream aborts the query on the executor and frees its memory. Cancelling
/// the query's token or reaching the profile's statement timeout ends the stream at once
/// with [`PlannerError::Cancelled`] or [`PlannerError::Timeout`], and aborts the query.
pub struct QueryStream {
    job: Option<RunningJob>,
    schema: SchemaRef,
    limits: Limits,
}

impl QueryStream {
    pub(crate) fn new(job: RunningJob, limits: Limits) -> Self {
        Self {
            schema: SchemaRef::clone(&job.schema),
            job: Some(job),
            limits,
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch, PlannerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.job.is_none() {
            return Poll::Ready(None);
        }
        if let Some(error) = self.limits.poll_stop(cx) {
            // Dropping the job aborts it on the executor.
            self.job = None;
            return Poll::Ready(Some(Err(error)));
        }
        let Some(job) = self.job.as_mut() else {
            return Poll::Ready(None);
        };
        match job.batches.poll_recv(cx) {
            Poll::Ready(Some(Ok(batch))) => Poll::Ready(Some(Ok(batch))),
            Poll::Ready(Some(Err(error))) => {
                self.job = None;
                Poll::Ready(Some(Err(PlannerError::Engine(error))))
            }
            Poll::Ready(None) => {
                self.job = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
