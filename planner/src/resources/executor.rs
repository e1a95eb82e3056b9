//! A dedicated runtime for DataFusion's CPU work, apart from the network runtime.
//!
//! ```text
//! network runtime (front ends)            executor runtime (this module)
//!   QueryStream ◀── bounded channel ◀──── job: plan physically, poll DataFusion's stream
//!        │ cancel / timeout / drop               ▲
//!        └──────── abort ────────────────────────┘
//! ```
//!
//! A DataFusion operator can keep a thread busy for seconds between two yields. If that
//! thread also served sockets, a CancelRequest, a light tenant's query or a statement timeout
//! would wait behind it. Here a query's job runs on the executor; the front end only reads
//! finished batches from a channel, so it answers a cancel or timeout at once and aborts the
//! job, which stops at its next yield and frees its memory. The channel holds two batches:
//! a slow client slows its own query and nothing else.

use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use futures::{FutureExt, StreamExt};
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::PlannerError;
use crate::resources::complexity;
use crate::resources::panics;
use crate::resources::stoppable::StopSignal;

/// Batches buffered between a running query and its reader.
const CHANNEL_BATCHES: usize = 2;

/// The runtime queries execute on.
pub struct DedicatedExecutor {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl std::fmt::Debug for DedicatedExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedicatedExecutor").finish_non_exhaustive()
    }
}

/// A started job: its output schema, its batches, and the handle that stops it.
///
/// Dropping it raises the job's [`StopSignal`] (so loops that check it end at their next
/// chunk) and aborts the job (which ends at its next yield).
pub(crate) struct RunningJob {
    pub schema: SchemaRef,
    pub batches: mpsc::Receiver<Result<RecordBatch, DataFusionError>>,
    signal: StopSignal,
    _task: AbortOnDrop,
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        self.signal.raise();
    }
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop<T = ()>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl DedicatedExecutor {
    /// A runtime with `threads` worker threads named `name-N`.
    ///
    /// # Errors
    /// If the threads cannot be started.
    pub fn new(name: &str, threads: usize) -> io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            // Planning recurses over statements as deep as the complexity bounds allow.
            .thread_stack_size(complexity::STACK_SIZE)
            .enable_time()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Self {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Runs `work` on the executor and waits for its output.
    ///
    /// # Errors
    /// An internal error if the work panicked.
    ///
    /// # Cancellation
    /// Dropping the returned future aborts the work.
    pub(crate) async fn spawn<T, F>(&self, work: F) -> Result<T, PlannerError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let mut task = AbortOnDrop(self.handle.spawn(work));
        (&mut task.0)
            .await
            .map_err(|error| match error.try_into_panic() {
                Ok(panic) => panics::panicked("planning", &*panic),
                Err(error) => PlannerError::Engine(DataFusionError::Internal(format!(
                    "a job on the query executor failed: {error}"
                ))),
            })
    }

    /// Starts `start` (which plans and returns a stream) on the executor and waits until it
    /// produced its schema or failed. The job holds `guard` until its work has really ended
    /// (a query's slot in its tenant's pool), and its loops check `signal`.
    ///
    /// # Errors
    /// The planning error, or an internal error if the job died. A panic in the job ends
    /// its batches with an internal error, never as a complete result.
    ///
    /// # Cancellation
    /// Dropping the returned future or the job aborts the work on the executor.
    pub(crate) async fn run<F, G>(
        &self,
        start: F,
        signal: StopSignal,
        guard: G,
    ) -> Result<RunningJob, PlannerError>
    where
        F: Future<Output = Result<SendableRecordBatchStream, PlannerError>> + Send + 'static,
        G: Send + 'static,
    {
        let (schema_tx, schema_rx) = oneshot::channel();
        let (batch_tx, batches) = mpsc::channel(CHANNEL_BATCHES);
        let panic_tx = batch_tx.clone();
        let work = async move {
            let mut stream = match start.await {
                Ok(stream) => stream,
                Err(error) => {
                    let _ = schema_tx.send(Err(error));
                    return;
                }
            };
            if schema_tx.send(Ok(stream.schema())).is_err() {
                return;
            }
            while let Some(batch) = stream.next().await {
                if batch_tx.send(batch).await.is_err() {
                    return;
                }
            }
        };
        let task = AbortOnDrop(self.handle.spawn(async move {
            let _guard = guard;
            if let Err(panic) = AssertUnwindSafe(work).catch_unwind().await {
                let error = panics::panicked("running the query", &*panic);
                let _ = panic_tx
                    .send(Err(DataFusionError::External(Box::new(error))))
                    .await;
            }
        }));
        let schema = schema_rx.await.map_err(|_| {
            PlannerError::Engine(DataFusionError::Internal(
                "the query's job ended before it was planned".to_owned(),
            ))
        })??;
        Ok(RunningJob {
            schema,
            batches,
            signal,
            _task: task,
        })
    }
}

impl Drop for DedicatedExecutor {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
