//! `tollgate usage export`: every tenant's records in a time range, for billing pipelines.

use std::io::Write;

use clap::ValueEnum;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use tollgate_planner::metering::{DatasetsColumn, UsageRecord, records_batch};

use crate::error::GatewayError;

/// The file formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One row per execution; `datasets` joined with spaces.
    Csv,
    /// One row per execution; `datasets` a list.
    Parquet,
    /// One JSON object per line, with the per-dataset `scans`.
    Jsonl,
}

/// Writes `records` to `out` as `format`.
///
/// # Errors
/// [`GatewayError::Export`] if encoding or writing fails.
pub fn write(
    records: &[UsageRecord],
    format: ExportFormat,
    out: impl Write + Send,
) -> Result<(), GatewayError> {
    let failed = |e: &dyn std::fmt::Display| GatewayError::Export(e.to_string());
    match format {
        ExportFormat::Jsonl => {
            let mut out = std::io::BufWriter::new(out);
            for record in records {
                serde_json::to_writer(&mut out, record).map_err(|e| failed(&e))?;
                out.write_all(b"\n").map_err(|e| failed(&e))?;
            }
            out.flush().map_err(|e| failed(&e))
        }
        ExportFormat::Csv => {
            let batch = records_batch(records, DatasetsColumn::Text).map_err(|e| failed(&e))?;
            let mut writer = WriterBuilder::new().with_header(true).build(out);
            writer.write(&batch).map_err(|e| failed(&e))
        }
        ExportFormat::Parquet => {
            let batch = records_batch(records, DatasetsColumn::List).map_err(|e| failed(&e))?;
            let mut writer =
                ArrowWriter::try_new(out, batch.schema(), None).map_err(|e| failed(&e))?;
            writer.write(&batch).map_err(|e| failed(&e))?;
            writer.close().map_err(|e| failed(&e))?;
            Ok(())
        }
    }
}
