//! Pushing one slice of a dataset (a new file, a snapshot, new replica rows, a published
//! version) to one channel: the channel's view of the dataset over the slice's rows (read
//! once for every channel, `fan_out`), as the channel's login (scoped, limited and metered
//! like any query, with protocol `push`), its rows published to the tenant's stream.
//!
//! ```text
//! SELECT * FROM "schema"."table"  [the shared rows]  ─▶ batches ─▶ messages (ids from
//!   content) ─▶ the channel's sink (JetStream, MQTT) ─▶ each batch's acks awaited ─▶ the
//!      stream ends, its record durable
//! ```
//!
//! The usage record is kept under the id the caller gives: a push redone after a crash
//! (whose first attempt left no record) is recorded once, and its messages, published
//! again under the same ids, are stored once by a JetStream stream (MQTT subscribers
//! deduplicate by the id themselves).

use std::sync::Arc;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{DatasetId, MessageFormat, Principal};
use tollgate_planner::metering::{ClientInfo, Protocol};
use tollgate_planner::provided_rows::ProvidedRows;
use tollgate_planner::shared_rows::SharedRows;
use tollgate_planner::{PlannerError, QueryContext, QueryService, TenantSession};
use uuid::Uuid;

use super::messages::{MessageError, Messages};
use super::nats_broker::BrokerError;
use super::sink::{Labels, Sink};

/// Why a file was not pushed whole.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Reading the slice from the dataset's source failed before any row came.
    #[error("reading `{dataset}` failed: {message}")]
    Read {
        /// The dataset.
        dataset: String,
        /// Why.
        message: String,
    },
    /// Reading the file failed.
    #[error("reading `{dataset}` failed: {}", .source.client_message())]
    Query {
        /// The dataset.
        dataset: String,
        /// The planner's error.
        source: PlannerError,
    },
    /// Encoding rows failed.
    #[error("cannot encode rows of `{dataset}`: {message}")]
    Encode {
        /// The dataset.
        dataset: String,
        /// What failed.
        message: String,
    },
    /// A row alone is larger than the broker takes in one message.
    #[error(
        "a row of `{dataset}` is {bytes} bytes encoded, more than the {limit} bytes the broker takes in one message"
    )]
    TooLarge {
        /// The dataset.
        dataset: String,
        /// The row's encoded size.
        bytes: usize,
        /// The most a message's payload may hold.
        limit: usize,
    },
    /// The broker refused a message.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

impl PushError {
    /// Whether the push was stopped by the gateway shutting down, not by its rows, its
    /// source or the broker.
    pub fn is_shutdown(&self) -> bool {
        matches!(
            self,
            Self::Query {
                source: PlannerError::ShuttingDown,
                ..
            }
        )
    }
}

/// Where and how one file goes out.
#[derive(Debug, Clone)]
pub struct FileTarget {
    /// The dataset.
    pub dataset: DatasetId,
    /// What is pushed: a file's path in the dataset's store, or the name of a whole
    /// version of the dataset (`@snapshot`, `@publication/<n>`) or of a slice of new rows.
    pub entry: String,
    /// The dataset version it makes (headers say so).
    pub version: u64,
    /// JSON lines or Arrow.
    pub format: MessageFormat,
    /// Rows per message at most.
    pub message_rows: usize,
    /// The id the push's usage record is kept under.
    pub record_id: Uuid,
}

/// What was pushed of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Rows published.
    pub rows: u64,
    /// Messages published.
    pub messages: u64,
    /// Of those, messages the stream had already (from an earlier attempt; NATS only).
    pub duplicates: u64,
}

/// Pushes `target.entry` of `principal`'s channel, whose rows are `rows`, read in
/// `session`, into `sink`.
///
/// # Errors
/// [`PushError`]; the messages published before it stay, and a retry publishes them
/// again under the same ids.
pub async fn push_file(
    service: &QueryService,
    session: Arc<TenantSession>,
    principal: Arc<Principal>,
    sink: &mut Sink,
    target: &FileTarget,
    rows: Arc<SharedRows>,
) -> Result<Pushed, PushError> {
    let query_error = |source| PushError::Query {
        dataset: target.dataset.to_string(),
        source,
    };
    let channel = principal.channel.clone().unwrap_or_default();
    let client = Arc::new(ClientInfo {
        protocol: Protocol::Push,
        address: None,
        application_name: Some("tollgate push channel".to_owned()),
    });
    let context = QueryContext::new(session, principal, CancellationToken::new(), client)
        .with_record_id(target.record_id)
        .with_provided_rows(ProvidedRows {
            dataset: target.dataset.clone(),
            table: rows,
        });
    let sql = format!(
        "SELECT * FROM {}.{}",
        quote(target.dataset.domain()),
        quote(target.dataset.name())
    );
    let statement = service
        .parse(&context, &sql)
        .map_err(query_error)?
        .pop()
        .ok_or_else(|| {
            query_error(PlannerError::Source {
                dataset: target.dataset.to_string(),
                message: "no statement".to_owned(),
            })
        })?;
    let planned = service
        .plan(&context, statement)
        .await
        .map_err(query_error)?;
    let mut stream = service
        .execute(&context, &planned, Vec::new())
        .await
        .map_err(query_error)?;
    let wire = stream.wire_bytes();
    let dataset = target.dataset.to_string();
    let mut messages = Messages::new(
        target.format,
        target.message_rows,
        sink.payload_limit(&dataset),
        &channel,
        &target.entry,
    );
    let mut pushed = Pushed::default();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(query_error)?;
        let encoded = messages.of(&batch).map_err(|error| match error {
            MessageError::Encode(error) => PushError::Encode {
                dataset: dataset.clone(),
                message: error.to_string(),
            },
            MessageError::TooLarge { bytes, limit } => PushError::TooLarge {
                dataset: dataset.clone(),
                bytes,
                limit,
            },
        })?;
        for message in encoded {
            let labels = Labels {
                dataset: dataset.clone(),
                version: target.version,
                sequence: pushed.messages + 1,
            };
            wire.add(message.payload.len() as u64);
            pushed.rows += message.rows as u64;
            pushed.messages += 1;
            pushed.duplicates += sink.send(message, target.format, &labels).await?;
        }
        // A batch's messages are stored before the next batch is read, so the stream
        // ends, and its record says every row went out, only once they all did.
        pushed.duplicates += sink.flush().await?;
    }
    Ok(pushed)
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
