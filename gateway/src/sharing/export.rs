//! Writing a version of a `file` channel's dataset: its output model read through the
//! engine as the channel's login (so scoped, limited and metered like any query, with
//! protocol `delta_sharing`) and written as Parquet files into the delivery directory.
//!
//! ```text
//! SELECT * FROM "schema"."table"   (the channel's session: its columns and row filter)
//!   ─▶ {delivery}/{tenant}/{channel}/{dataset}/v{version}/part-00000.parquet, part-00001, …
//! ```

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::Principal;
use tollgate_catalog::store::records::{SharedFile, SharedTableRecord};
use tollgate_planner::metering::{ClientInfo, Protocol};
use tollgate_planner::{PlannerError, QueryContext, QueryService, TenantSession};

use super::delta;

/// Rows per file.
const FILE_ROWS: usize = 1_000_000;

/// Why a version could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The query failed.
    #[error("reading `{dataset}` failed: {}", .source.client_message())]
    Query {
        /// The dataset.
        dataset: String,
        /// The planner's error.
        source: PlannerError,
    },
    /// A column has no Delta type.
    #[error("`{dataset}` cannot be shared: {message}")]
    Schema {
        /// The dataset.
        dataset: String,
        /// Which column.
        message: String,
    },
    /// The files could not be written.
    #[error("cannot write the files of `{dataset}`: {message}")]
    Write {
        /// The dataset.
        dataset: String,
        /// What failed.
        message: String,
    },
}

/// Writes version `version` of `dataset` (`schema.table`) of `principal`'s channel, read
/// in `session`, under `root`.
///
/// # Errors
/// [`ExportError`] naming the dataset; files already written stay (a retry overwrites).
pub async fn write_version(
    service: &QueryService,
    session: Arc<TenantSession>,
    principal: Arc<Principal>,
    root: &Path,
    dataset: &str,
    version: u64,
) -> Result<SharedTableRecord, ExportError> {
    let channel = principal.channel.clone().unwrap_or_default();
    let query_error = |source| ExportError::Query {
        dataset: dataset.to_owned(),
        source,
    };
    let write_error = |message: String| ExportError::Write {
        dataset: dataset.to_owned(),
        message,
    };
    let (schema_name, table) = dataset.split_once('.').unwrap_or(("", dataset));
    let sql = format!(
        "SELECT * FROM \"{}\".\"{}\"",
        schema_name.replace('"', "\"\""),
        table.replace('"', "\"\"")
    );
    let client = Arc::new(ClientInfo {
        protocol: Protocol::DeltaSharing,
        address: None,
        application_name: Some("tollgate file channel".to_owned()),
    });
    let context = QueryContext::new(
        session,
        Arc::clone(&principal),
        CancellationToken::new(),
        client,
    );
    let mut statements = service.parse(&context, &sql).map_err(query_error)?;
    let statement = statements
        .pop()
        .ok_or_else(|| write_error("no statement".to_owned()))?;
    let planned = service
        .plan(&context, statement)
        .await
        .map_err(query_error)?;
    let mut stream = service
        .execute(&context, &planned, Vec::new())
        .await
        .map_err(query_error)?;
    let file_schema: SchemaRef = Arc::new(Schema::new(
        stream
            .schema()
            .fields()
            .iter()
            .map(|field| {
                Field::new(
                    field.name(),
                    delta::file_type(field.data_type()),
                    field.is_nullable(),
                )
            })
            .collect::<Vec<_>>(),
    ));
    let schema_string =
        delta::schema_string(&file_schema).map_err(|message| ExportError::Schema {
            dataset: dataset.to_owned(),
            message,
        })?;
    let directory = format!("{}/{channel}/{dataset}/v{version}", principal.tenant);
    tokio::fs::create_dir_all(root.join(&directory))
        .await
        .map_err(|e| write_error(e.to_string()))?;
    let mut files = Vec::new();
    let mut part = FilePart::new(&file_schema).map_err(write_error)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(query_error)?;
        let batch = conform(batch, &file_schema).map_err(write_error)?;
        part.write(&batch).map_err(write_error)?;
        if part.rows >= FILE_ROWS {
            let full =
                std::mem::replace(&mut part, FilePart::new(&file_schema).map_err(write_error)?);
            files.push(
                full.finish(root, &directory, files.len())
                    .await
                    .map_err(write_error)?,
            );
        }
    }
    if part.rows > 0 || files.is_empty() {
        files.push(
            part.finish(root, &directory, files.len())
                .await
                .map_err(write_error)?,
        );
    }
    Ok(SharedTableRecord {
        channel,
        tenant: principal.tenant.clone(),
        dataset: dataset.to_owned(),
        version,
        schema_string,
        files,
        created_at: Utc::now(),
    })
}

/// `batch` with its columns cast to `schema`'s types.
fn conform(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| e.to_string())
}

/// One Parquet file being written, in memory until it is full.
struct FilePart {
    writer: ArrowWriter<Vec<u8>>,
    rows: usize,
}

impl FilePart {
    fn new(schema: &SchemaRef) -> Result<Self, String> {
        Ok(Self {
            writer: ArrowWriter::try_new(Vec::new(), Arc::clone(schema), None)
                .map_err(|e| e.to_string())?,
            rows: 0,
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        self.rows += batch.num_rows();
        self.writer.write(batch).map_err(|e| e.to_string())
    }

    /// Writes the file as part `index` of `directory`.
    async fn finish(
        self,
        root: &Path,
        directory: &str,
        index: usize,
    ) -> Result<SharedFile, String> {
        let bytes = self.writer.into_inner().map_err(|e| e.to_string())?;
        let path = format!("{directory}/part-{index:05}.parquet");
        let size = bytes.len() as u64;
        tokio::fs::write(root.join(&path), bytes)
            .await
            .map_err(|e| e.to_string())?;
        Ok(SharedFile {
            path,
            size,
            rows: self.rows as u64,
        })
    }
}
