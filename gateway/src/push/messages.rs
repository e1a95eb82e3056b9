//! Rows as push messages: each result batch cut into messages of at most `message_rows`
//! rows and at most the broker's largest payload, as JSON lines or an Arrow IPC stream
//! (with plain strings and binaries, as Flight SQL results), each with an id that a retry
//! of the same file gives again.
//!
//! Rows that encode larger than the broker takes are cut into fewer rows per message (in
//! proportion to the excess, then again while they are still too large); how a batch is
//! cut depends only on its rows, so a retry cuts it the same way. A single row larger
//! than the broker takes cannot be sent at all: [`MessageError::TooLarge`].
//!
//! A file's result batches are the same batches however often it is read, though not
//! always in the same order (a file read in parallel). So a message's id is made from
//! what it holds, not where it comes: channel, file, the SHA-256 of the payload, and how
//! many earlier messages of that file had the same payload.

use std::collections::HashMap;

use bytes::Bytes;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use ring::digest;
use tollgate_catalog::MessageFormat;
use tollgate_flight::portable::{portable_batch, portable_schema};

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its deduplication id.
    pub id: String,
    /// Rows it holds.
    pub rows: usize,
    /// The encoded rows.
    pub payload: Bytes,
}

/// Why rows could not be made messages.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// A value cannot be written in the format.
    #[error(transparent)]
    Encode(#[from] ArrowError),
    /// One row alone encodes larger than the broker takes in a message.
    #[error(
        "a row is {bytes} bytes encoded, more than the {limit} bytes the broker takes in one message"
    )]
    TooLarge {
        /// The row's encoded size.
        bytes: usize,
        /// The most a message's payload may hold.
        limit: usize,
    },
}

/// Cuts the batches of one file of one channel into messages.
#[derive(Debug)]
pub struct Messages {
    format: MessageFormat,
    max_rows: usize,
    max_bytes: usize,
    /// The channel and file, hashed, that every id starts with.
    prefix: String,
    /// How many messages so far had each payload digest.
    seen: HashMap<String, u32>,
}

impl Messages {
    /// The messages of `file` for `channel`, each of at most `max_rows` rows and
    /// `max_bytes` bytes of payload.
    pub fn new(
        format: MessageFormat,
        max_rows: usize,
        max_bytes: usize,
        channel: &str,
        file: &str,
    ) -> Self {
        let file = hex(&digest::digest(&digest::SHA256, file.as_bytes()).as_ref()[..12]);
        Self {
            format,
            max_rows: max_rows.max(1),
            max_bytes,
            prefix: format!("{channel}.{file}"),
            seen: HashMap::new(),
        }
    }

    /// The messages of `batch`.
    ///
    /// # Errors
    /// [`MessageError`]: a value cannot be written, or a row alone is too large.
    pub fn of(&mut self, batch: &RecordBatch) -> Result<Vec<Message>, MessageError> {
        let mut messages = Vec::new();
        let mut offset = 0;
        // Rows per message for this batch: fewer once its rows proved too large.
        let mut per_message = self.max_rows;
        while offset < batch.num_rows() {
            let mut rows = per_message.min(batch.num_rows() - offset);
            let payload = loop {
                let payload = encode(self.format, &batch.slice(offset, rows))?;
                if payload.len() <= self.max_bytes {
                    break payload;
                }
                if rows == 1 {
                    return Err(MessageError::TooLarge {
                        bytes: payload.len(),
                        limit: self.max_bytes,
                    });
                }
                rows = fewer_rows(rows, payload.len(), self.max_bytes);
                per_message = rows;
            };
            let content = hex(&digest::digest(&digest::SHA256, &payload).as_ref()[..16]);
            let occurrence = self.seen.entry(content.clone()).or_insert(0);
            let id = format!("{}.{content}.{occurrence}", self.prefix);
            *occurrence += 1;
            messages.push(Message {
                id,
                rows,
                payload: Bytes::from(payload),
            });
            offset += rows;
        }
        Ok(messages)
    }
}

/// Fewer rows than `rows`, whose encoding took `bytes`, aiming a tenth under `limit`.
fn fewer_rows(rows: usize, bytes: usize, limit: usize) -> usize {
    let scaled = u128::try_from(rows).unwrap_or(u128::MAX) * u128::try_from(limit).unwrap_or(0) * 9
        / (u128::try_from(bytes).unwrap_or(u128::MAX) * 10).max(1);
    usize::try_from(scaled).unwrap_or(1).clamp(1, rows - 1)
}

/// `batch` in `format`.
fn encode(format: MessageFormat, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    match format {
        MessageFormat::Json => {
            let mut writer = arrow_json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow_json::writer::LineDelimited>(Vec::new());
            writer.write(batch)?;
            writer.finish()?;
            Ok(writer.into_inner())
        }
        MessageFormat::Arrow => {
            // Plain strings, as Flight SQL sends them: clients read them, and a slice of a
            // view array would carry the whole batch's string buffers with it.
            let schema = portable_schema(batch.schema_ref());
            let batch = portable_batch(batch.clone(), &schema)?;
            let mut writer = StreamWriter::try_new(Vec::new(), &schema)?;
            writer.write(&batch)?;
            writer.finish()?;
            writer.into_inner()
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringViewArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(values: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).expect("test value")
    }

    #[test]
    fn batches_are_cut_into_messages_whose_ids_repeat_on_a_retry() {
        let mut first = Messages::new(
            MessageFormat::Json,
            2,
            usize::MAX,
            "ch_1",
            "orders/part-0.parquet",
        );
        let messages = first.of(&batch(vec![1, 2, 3, 1, 2])).expect("test value");
        assert_eq!(
            messages.iter().map(|m| m.rows).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert_eq!(messages[0].payload.as_ref(), b"{\"n\":1}\n{\"n\":2}\n");
        let mut again = Messages::new(
            MessageFormat::Json,
            2,
            usize::MAX,
            "ch_1",
            "orders/part-0.parquet",
        );
        let retried = again.of(&batch(vec![1, 2, 3, 1, 2])).expect("test value");
        let ids = |messages: &[Message]| messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&messages), ids(&retried));
        // The same rows twice in one file are two messages.
        let mut twice = Messages::new(MessageFormat::Json, 2, usize::MAX, "ch_1", "f");
        let a = twice.of(&batch(vec![7, 8])).expect("test value");
        let b = twice.of(&batch(vec![7, 8])).expect("test value");
        assert_ne!(a[0].id, b[0].id);
        // Another channel's messages of the same file are its own.
        let mut other = Messages::new(
            MessageFormat::Json,
            2,
            usize::MAX,
            "ch_2",
            "orders/part-0.parquet",
        );
        assert_ne!(
            other.of(&batch(vec![1, 2])).expect("test value")[0].id,
            messages[0].id
        );
    }

    #[test]
    fn arrow_messages_are_ipc_streams() {
        let mut messages = Messages::new(MessageFormat::Arrow, 10, usize::MAX, "ch_1", "f");
        let message = messages
            .of(&batch(vec![1, 2, 3]))
            .expect("test value")
            .remove(0);
        let reader =
            datafusion::arrow::ipc::reader::StreamReader::try_new(message.payload.as_ref(), None)
                .expect("test value");
        let rows: usize = reader.map(|b| b.expect("test value").num_rows()).sum();
        assert_eq!(rows, 3);
    }

    #[test]
    fn rows_larger_than_the_broker_takes_are_cut_into_smaller_messages() {
        let values: Vec<i64> = (1_000_000..1_010_000).collect();
        for format in [MessageFormat::Json, MessageFormat::Arrow] {
            let limit = 16 * 1024;
            let mut messages = Messages::new(format, 10_000, limit, "ch_1", "f");
            let cut = messages.of(&batch(values.clone())).expect("test value");
            let bytes: usize = cut.iter().map(|m| m.payload.len()).sum();
            assert!(
                cut.len() > bytes / limit,
                "{format:?}: {} messages",
                cut.len()
            );
            assert!(cut.iter().all(|m| m.payload.len() <= limit));
            assert_eq!(cut.iter().map(|m| m.rows).sum::<usize>(), values.len());
            // A retry cuts the same batch the same way.
            let mut again = Messages::new(format, 10_000, limit, "ch_1", "f");
            let retried = again.of(&batch(values.clone())).expect("test value");
            let ids =
                |messages: &[Message]| messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&cut), ids(&retried));
        }
    }

    #[test]
    fn a_row_larger_than_the_broker_takes_is_an_error() {
        let mut messages = Messages::new(MessageFormat::Json, 10, 4, "ch_1", "f");
        match messages.of(&batch(vec![123_456])) {
            Err(MessageError::TooLarge { bytes, limit }) => {
                assert_eq!((bytes, limit), ("{\"n\":123456}\n".len(), 4));
            }
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn arrow_messages_of_a_slice_carry_only_its_strings() {
        let labels: Vec<String> = (0..10_000)
            .map(|n| format!("a longer label, number {n}"))
            .collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "label",
            DataType::Utf8View,
            false,
        )]));
        let views = StringViewArray::from_iter_values(labels.iter());
        let batch = RecordBatch::try_new(schema, vec![Arc::new(views)]).expect("test value");
        let mut messages = Messages::new(MessageFormat::Arrow, 10, usize::MAX, "ch_1", "f");
        let cut = messages.of(&batch.slice(0, 10)).expect("test value");
        assert_eq!(cut.len(), 1);
        assert!(
            cut[0].payload.len() < 4_096,
            "{} bytes",
            cut[0].payload.len()
        );
        let mut reader =
            datafusion::arrow::ipc::reader::StreamReader::try_new(cut[0].payload.as_ref(), None)
                .expect("test value");
        let read = reader.next().expect("a batch").expect("test value");
        assert_eq!(read.schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(read.num_rows(), 10);
    }
}
