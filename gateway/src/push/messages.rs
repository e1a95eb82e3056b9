//! Rows as push messages: each result batch cut into messages of at most `message_rows`
//! rows, as JSON lines or an Arrow IPC stream, each with an id that a retry of the same
//! file gives again.
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

/// Cuts the batches of one file of one channel into messages.
#[derive(Debug)]
pub struct Messages {
    format: MessageFormat,
    max_rows: usize,
    /// The channel and file, hashed, that every id starts with.
    prefix: String,
    /// How many messages so far had each payload digest.
    seen: HashMap<String, u32>,
}

impl Messages {
    /// The messages of `file` for `channel`.
    pub fn new(format: MessageFormat, max_rows: usize, channel: &str, file: &str) -> Self {
        let file = hex(&digest::digest(&digest::SHA256, file.as_bytes()).as_ref()[..12]);
        Self {
            format,
            max_rows: max_rows.max(1),
            prefix: format!("{channel}.{file}"),
            seen: HashMap::new(),
        }
    }

    /// The messages of `batch`.
    ///
    /// # Errors
    /// The encoder's, when a value cannot be written.
    pub fn of(&mut self, batch: &RecordBatch) -> Result<Vec<Message>, ArrowError> {
        let mut messages = Vec::new();
        let mut offset = 0;
        while offset < batch.num_rows() {
            let rows = self.max_rows.min(batch.num_rows() - offset);
            let payload = encode(self.format, &batch.slice(offset, rows))?;
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
            let mut writer = StreamWriter::try_new(Vec::new(), batch.schema_ref())?;
            writer.write(batch)?;
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

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(values: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).expect("test value")
    }

    #[test]
    fn batches_are_cut_into_messages_whose_ids_repeat_on_a_retry() {
        let mut first = Messages::new(MessageFormat::Json, 2, "ch_1", "orders/part-0.parquet");
        let messages = first.of(&batch(vec![1, 2, 3, 1, 2])).expect("test value");
        assert_eq!(
            messages.iter().map(|m| m.rows).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        assert_eq!(messages[0].payload.as_ref(), b"{\"n\":1}\n{\"n\":2}\n");
        let mut again = Messages::new(MessageFormat::Json, 2, "ch_1", "orders/part-0.parquet");
        let retried = again.of(&batch(vec![1, 2, 3, 1, 2])).expect("test value");
        let ids = |messages: &[Message]| messages.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&messages), ids(&retried));
        // The same rows twice in one file are two messages.
        let mut twice = Messages::new(MessageFormat::Json, 2, "ch_1", "f");
        let a = twice.of(&batch(vec![7, 8])).expect("test value");
        let b = twice.of(&batch(vec![7, 8])).expect("test value");
        assert_ne!(a[0].id, b[0].id);
        // Another channel's messages of the same file are its own.
        let mut other = Messages::new(MessageFormat::Json, 2, "ch_2", "orders/part-0.parquet");
        assert_ne!(
            other.of(&batch(vec![1, 2])).expect("test value")[0].id,
            messages[0].id
        );
    }

    #[test]
    fn arrow_messages_are_ipc_streams() {
        let mut messages = Messages::new(MessageFormat::Arrow, 10, "ch_1", "f");
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
}
