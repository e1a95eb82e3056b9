//! Usage records as Arrow: the rows of `tollgate.usage_records` and `tollgate.usage_datasets`,
//! and of the operator's exports.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;

use super::record::UsageRecord;

/// How the `datasets` column is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetsColumn {
    /// A list of dataset ids (`text[]` over pgwire).
    List,
    /// Dataset ids joined with spaces, for flat formats such as CSV.
    Text,
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// The columns of one row per execution.
pub fn records_schema(datasets: DatasetsColumn) -> SchemaRef {
    let datasets = match datasets {
        DatasetsColumn::List => Field::new(
            "datasets",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        DatasetsColumn::Text => Field::new("datasets", DataType::Utf8, false),
    };
    Arc::new(Schema::new(vec![
        Field::new("record_id", DataType::Utf8, false),
        Field::new("query_id", DataType::Utf8, false),
        Field::new("part", DataType::Int64, false),
        Field::new("parts", DataType::Int64, false),
        Field::new("tenant", DataType::Utf8, false),
        Field::new("principal", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, true),
        Field::new("protocol", DataType::Utf8, false),
        Field::new("client_address", DataType::Utf8, true),
        Field::new("application_name", DataType::Utf8, true),
        datasets,
        Field::new("started_at", timestamp(), false),
        Field::new("finished_at", timestamp(), false),
        Field::new("planning_us", DataType::Int64, false),
        Field::new("execution_us", DataType::Int64, false),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("sqlstate", DataType::Utf8, true),
        Field::new("rows_returned", DataType::Int64, false),
        Field::new("bytes_returned", DataType::Int64, false),
        Field::new("wire_bytes", DataType::Int64, false),
        Field::new("bytes_scanned", DataType::Int64, false),
        Field::new("rows_scanned", DataType::Int64, false),
        Field::new("peak_memory", DataType::Int64, false),
        Field::new("spill_bytes", DataType::Int64, false),
        Field::new("sql_hash", DataType::Utf8, false),
        Field::new("sql_text", DataType::Utf8, true),
        Field::new("cost", DataType::Float64, false),
    ]))
}

/// The columns of one row per execution and dataset.
pub fn datasets_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("record_id", DataType::Utf8, false),
        Field::new("query_id", DataType::Utf8, false),
        Field::new("tenant", DataType::Utf8, false),
        Field::new("started_at", timestamp(), false),
        Field::new("dataset", DataType::Utf8, false),
        Field::new("bytes_scanned", DataType::Int64, false),
        Field::new("rows_scanned", DataType::Int64, false),
        Field::new("bytes_returned", DataType::Int64, false),
        Field::new("cost", DataType::Float64, false),
    ]))
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn optional_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn ints(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(values.map(int).collect::<Int64Array>())
}

fn times(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(
        values
            .map(Some)
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("+00:00"),
    )
}

/// `records` as one batch of [`records_schema`].
///
/// # Errors
/// Only if the columns disagree with the schema (a bug).
pub fn records_batch(
    records: &[UsageRecord],
    shape: DatasetsColumn,
) -> Result<RecordBatch, ArrowError> {
    let r = records;
    let datasets: ArrayRef = match shape {
        DatasetsColumn::List => {
            let mut builder = ListBuilder::new(StringBuilder::new());
            for record in r {
                for dataset in &record.datasets {
                    builder.values().append_value(dataset);
                }
                builder.append(true);
            }
            Arc::new(builder.finish())
        }
        DatasetsColumn::Text => Arc::new(StringArray::from_iter_values(
            r.iter().map(|record| record.datasets.join(" ")),
        )),
    };
    let record_ids: Vec<String> = r.iter().map(|x| x.record_id.to_string()).collect();
    let query_ids: Vec<String> = r.iter().map(|x| x.query_id.to_string()).collect();
    let columns: Vec<ArrayRef> = vec![
        strings(record_ids.iter().map(String::as_str)),
        strings(query_ids.iter().map(String::as_str)),
        ints(r.iter().map(|x| u64::from(x.part))),
        ints(r.iter().map(|x| u64::from(x.parts))),
        strings(r.iter().map(|x| x.tenant.as_str())),
        strings(r.iter().map(|x| x.principal.as_str())),
        optional_strings(r.iter().map(|x| x.channel.as_deref())),
        strings(r.iter().map(|x| x.protocol.as_str())),
        optional_strings(r.iter().map(|x| x.client_address.as_deref())),
        optional_strings(r.iter().map(|x| x.application_name.as_deref())),
        datasets,
        times(r.iter().map(|x| x.started_at.timestamp_micros())),
        times(r.iter().map(|x| x.finished_at.timestamp_micros())),
        ints(r.iter().map(|x| x.planning_us)),
        ints(r.iter().map(|x| x.execution_us)),
        strings(r.iter().map(|x| x.outcome.as_str())),
        optional_strings(r.iter().map(|x| x.sqlstate.as_deref())),
        ints(r.iter().map(|x| x.rows_returned)),
        ints(r.iter().map(|x| x.bytes_returned)),
        ints(r.iter().map(|x| x.wire_bytes)),
        ints(r.iter().map(|x| x.bytes_scanned)),
        ints(r.iter().map(|x| x.rows_scanned)),
        ints(r.iter().map(|x| x.peak_memory)),
        ints(r.iter().map(|x| x.spill_bytes)),
        strings(r.iter().map(|x| x.sql_hash.as_str())),
        optional_strings(r.iter().map(|x| x.sql_text.as_deref())),
        Arc::new(r.iter().map(|x| x.cost).collect::<Float64Array>()),
    ];
    RecordBatch::try_new(records_schema(shape), columns)
}

/// Every dataset line of `records` as one batch of [`datasets_schema`].
///
/// # Errors
/// Only if the columns disagree with the schema (a bug).
pub fn datasets_batch(records: &[UsageRecord]) -> Result<RecordBatch, ArrowError> {
    let lines: Vec<_> = records
        .iter()
        .flat_map(|record| record.scans.iter().map(move |scan| (record, scan)))
        .collect();
    let record_ids: Vec<String> = lines.iter().map(|(r, _)| r.record_id.to_string()).collect();
    let query_ids: Vec<String> = lines.iter().map(|(r, _)| r.query_id.to_string()).collect();
    let columns: Vec<ArrayRef> = vec![
        strings(record_ids.iter().map(String::as_str)),
        strings(query_ids.iter().map(String::as_str)),
        strings(lines.iter().map(|(r, _)| r.tenant.as_str())),
        times(lines.iter().map(|(r, _)| r.started_at.timestamp_micros())),
        strings(lines.iter().map(|(_, s)| s.dataset.as_str())),
        ints(lines.iter().map(|(_, s)| s.bytes_scanned)),
        ints(lines.iter().map(|(_, s)| s.rows_scanned)),
        ints(lines.iter().map(|(_, s)| s.bytes_returned)),
        Arc::new(lines.iter().map(|(_, s)| s.cost).collect::<Float64Array>()),
    ];
    RecordBatch::try_new(datasets_schema(), columns)
}
