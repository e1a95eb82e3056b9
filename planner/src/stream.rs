//! The result stream a front end consumes: Arrow batches that stop on cancel or timeout.

use std::pin::Pin;
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::{FutureExt, Stream};
use tokio::time::Sleep;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::error::PlannerError;

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
/// Dropping the stream stops the query and frees its memory. Cancelling the query's token
/// or reaching the profile's statement timeout ends the stream with
/// [`PlannerError::Cancelled`] or [`PlannerError::Timeout`].
pub struct QueryStream {
    schema: SchemaRef,
    inner: SendableRecordBatchStream,
    limits: Limits,
    done: bool,
}

impl QueryStream {
    pub(crate) fn new(inner: SendableRecordBatchStream, limits: Limits) -> Self {
        Self {
            schema: inner.schema(),
            inner,
            limits,
            done: false,
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
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(error) = self.limits.poll_stop(cx) {
            self.done = true;
            return Poll::Ready(Some(Err(error)));
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Err(error))) => {
                self.done = true;
                Poll::Ready(Some(Err(PlannerError::Engine(error))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            other => other.map(|item| item.map(|batch| batch.map_err(PlannerError::Engine))),
        }
    }
}
