//! Result formats chosen by `Accept`, and one encoder per format that turns batches into
//! body bytes as they come (Parquet, whose footer needs every row group, at the end).

use std::sync::Arc;

use axum::http::HeaderValue;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;

use super::errors::WebError;

/// A result format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON array of objects, one per row.
    Json,
    /// One JSON object per line.
    NdJson,
    /// CSV with a header line.
    Csv,
    /// An Arrow IPC stream.
    Arrow,
    /// A Parquet file.
    Parquet,
}

impl Format {
    /// The first offered format of an `Accept` header, in the client's order of
    /// preference (`q`); JSON when there is no header or it accepts anything.
    ///
    /// # Errors
    /// [`WebError::NotAcceptable`] when nothing it names is offered.
    pub fn negotiate(accept: Option<&HeaderValue>) -> Result<Self, WebError> {
        let Some(text) = accept.and_then(|value| value.to_str().ok()) else {
            return Ok(Self::Json);
        };
        let mut ranges: Vec<(f32, &str)> = text
            .split(',')
            .map(|range| {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or_default().trim();
                let quality = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (quality, media)
            })
            .filter(|(quality, _)| *quality > 0.0)
            .collect();
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .find_map(|(_, media)| Self::of_media(media))
            .ok_or(WebError::NotAcceptable)
    }

    fn of_media(media: &str) -> Option<Self> {
        match media.to_ascii_lowercase().as_str() {
            "application/json" | "application/*" | "*/*" => Some(Self::Json),
            "application/x-ndjson" | "application/jsonl" | "application/json-seq" => {
                Some(Self::NdJson)
            }
            "text/csv" | "text/*" => Some(Self::Csv),
            "application/vnd.apache.arrow.stream" => Some(Self::Arrow),
            "application/vnd.apache.parquet" | "application/x-parquet" => Some(Self::Parquet),
            _ => None,
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::NdJson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Arrow => "application/vnd.apache.arrow.stream",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Encodes one result in one format, batch by batch.
pub enum Encoder {
    /// JSON array or lines.
    Json(JsonEncoder),
    /// CSV; the header goes before the first batch.
    Csv { schema: SchemaRef, header: bool },
    /// Arrow IPC stream.
    Arrow(datafusion::arrow::ipc::writer::StreamWriter<Vec<u8>>),
    /// Parquet, in memory until the end.
    Parquet(ArrowWriter<Vec<u8>>),
}

/// The JSON writers of arrow-json, array or lines.
pub enum JsonEncoder {
    /// `[{…},{…}]`.
    Array(arrow_json::ArrayWriter<Vec<u8>>),
    /// `{…}\n{…}\n`.
    Lines(arrow_json::LineDelimitedWriter<Vec<u8>>),
}

impl Encoder {
    /// An encoder of `format` for batches of `schema`.
    ///
    /// # Errors
    /// [`WebError::Encode`] if the format cannot hold the schema.
    pub fn new(format: Format, schema: &SchemaRef) -> Result<Self, WebError> {
        let json = arrow_json::WriterBuilder::new().with_explicit_nulls(true);
        Ok(match format {
            Format::Json => Self::Json(JsonEncoder::Array(json.build(Vec::new()))),
            Format::NdJson => Self::Json(JsonEncoder::Lines(json.build(Vec::new()))),
            Format::Csv => Self::Csv {
                schema: Arc::clone(schema),
                header: true,
            },
            Format::Arrow => Self::Arrow(
                datafusion::arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema)
                    .map_err(WebError::Encode)?,
            ),
            Format::Parquet => Self::Parquet(
                ArrowWriter::try_new(Vec::new(), Arc::clone(schema), None)
                    .map_err(|e| WebError::Encode(ArrowError::ExternalError(Box::new(e))))?,
            ),
        })
    }

    /// The bytes of `batch`.
    ///
    /// # Errors
    /// [`WebError::Encode`] if a value cannot be written.
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, WebError> {
        match self {
            Self::Json(JsonEncoder::Array(writer)) => {
                writer.write(batch).map_err(WebError::Encode)?;
                Ok(std::mem::take(writer.get_mut()))
            }
            Self::Json(JsonEncoder::Lines(writer)) => {
                writer.write(batch).map_err(WebError::Encode)?;
                Ok(std::mem::take(writer.get_mut()))
            }
            Self::Csv { header, .. } => {
                let mut writer = arrow_csv::WriterBuilder::new()
                    .with_header(*header)
                    .build(Vec::new());
                writer.write(batch).map_err(WebError::Encode)?;
                *header = false;
                Ok(writer.into_inner())
            }
            Self::Arrow(writer) => {
                writer.write(batch).map_err(WebError::Encode)?;
                Ok(std::mem::take(writer.get_mut()))
            }
            Self::Parquet(writer) => {
                writer
                    .write(batch)
                    .map_err(|e| WebError::Encode(ArrowError::ExternalError(Box::new(e))))?;
                Ok(Vec::new())
            }
        }
    }

    /// The bytes that end the body.
    ///
    /// # Errors
    /// [`WebError::Encode`] if the end cannot be written.
    pub fn finish(self) -> Result<Vec<u8>, WebError> {
        match self {
            Self::Json(JsonEncoder::Array(mut writer)) => {
                writer.finish().map_err(WebError::Encode)?;
                Ok(writer.into_inner())
            }
            Self::Json(JsonEncoder::Lines(mut writer)) => {
                writer.finish().map_err(WebError::Encode)?;
                Ok(writer.into_inner())
            }
            Self::Csv { schema, header } => {
                if !header {
                    return Ok(Vec::new());
                }
                // No rows: the header line alone.
                let mut writer = arrow_csv::WriterBuilder::new()
                    .with_header(true)
                    .build(Vec::new());
                writer
                    .write(&RecordBatch::new_empty(schema))
                    .map_err(WebError::Encode)?;
                Ok(writer.into_inner())
            }
            Self::Arrow(mut writer) => {
                writer.finish().map_err(WebError::Encode)?;
                writer.into_inner().map_err(WebError::Encode)
            }
            Self::Parquet(writer) => writer
                .into_inner()
                .map_err(|e| WebError::Encode(ArrowError::ExternalError(Box::new(e)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a,\"b\""), None])),
            ],
        )
        .expect("batch")
    }

    fn encode(format: Format, batches: &[RecordBatch]) -> Vec<u8> {
        let mut encoder = Encoder::new(format, &batch().schema()).expect("encoder");
        let mut body = Vec::new();
        for batch in batches {
            body.extend(encoder.batch(batch).expect("batch"));
        }
        body.extend(encoder.finish().expect("finish"));
        body
    }

    #[test]
    fn accept_picks_the_preferred_offered_format() {
        let pick =
            |accept: &str| Format::negotiate(Some(&HeaderValue::from_str(accept).expect("header")));
        assert_eq!(Format::negotiate(None).expect("json"), Format::Json);
        assert_eq!(pick("text/csv").expect("csv"), Format::Csv);
        assert_eq!(
            pick("application/json;q=0.5, application/vnd.apache.arrow.stream").expect("arrow"),
            Format::Arrow
        );
        assert_eq!(pick("image/png, */*;q=0.1").expect("any"), Format::Json);
        assert!(matches!(pick("image/png"), Err(WebError::NotAcceptable)));
    }

    #[test]
    fn json_keeps_nulls_and_spans_batches() {
        let body = encode(Format::Json, &[batch(), batch()]);
        let rows: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(rows.as_array().map(Vec::len), Some(4));
        assert_eq!(rows[1], serde_json::json!({"id": 2, "name": null}));
        assert_eq!(encode(Format::Json, &[]), b"[]");
        let lines = String::from_utf8(encode(Format::NdJson, &[batch()])).expect("utf-8");
        assert_eq!(lines.lines().count(), 2);
    }

    #[test]
    fn csv_writes_one_header_and_quotes_values() {
        let text = String::from_utf8(encode(Format::Csv, &[batch(), batch()])).expect("utf-8");
        assert_eq!(
            text,
            "id,name\n1,\"a,\"\"b\"\"\"\n2,\n1,\"a,\"\"b\"\"\"\n2,\n"
        );
        assert_eq!(encode(Format::Csv, &[]), b"id,name\n");
    }

    #[test]
    fn arrow_and_parquet_read_back() {
        let body = encode(Format::Arrow, &[batch(), batch()]);
        let reader =
            datafusion::arrow::ipc::reader::StreamReader::try_new(&body[..], None).expect("reader");
        let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
        assert_eq!(rows, 4);
        let body = bytes::Bytes::from(encode(Format::Parquet, &[batch()]));
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(body, 1024)
                .expect("parquet");
        let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
        assert_eq!(rows, 2);
    }
}
