//! Writing a version of a `file` channel's dataset: its output model read through the
//! engine as the channel's login (so scoped, limited and metered like any query, with
//! protocol `delta_sharing`) and written as Parquet files, with Delta statistics, into the
//! delivery store.
//!
//! ```text
//! SELECT * FROM "schema"."table"   (the channel's session: its columns and row filter)
//!          [ORDER BY the dataset's partition columns, if the channel has them]
//!   ─▶ {tenant}/{channel}/{dataset}/v{version}-{attempt}/[col=value/…/]part-00000.parquet, …
//! ```
//!
//! Each attempt writes under a directory of its own, so two gateways refreshing the same
//! channel never overwrite each other's files; an attempt that fails deletes its files.

use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::store::records::{SharedFile, SharedTableRecord};
use tollgate_catalog::{DatasetId, DatasetLocation, Principal};
use tollgate_planner::metering::{ClientInfo, Protocol};
use tollgate_planner::{PlannedQuery, PlannerError, QueryContext, QueryService, TenantSession};
use uuid::Uuid;

use super::delta;
use super::partitions::{self, PartitionValues, Partitioning};
use super::stats::FileStats;
use super::store::DeliveryStore;

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
/// in `session`, into `store`.
///
/// # Errors
/// [`ExportError`] naming the dataset; the files of the attempt are deleted.
pub async fn write_version(
    service: &QueryService,
    session: Arc<TenantSession>,
    principal: Arc<Principal>,
    store: &DeliveryStore,
    dataset: &str,
    version: u64,
) -> Result<SharedTableRecord, ExportError> {
    let channel = principal.channel.clone().unwrap_or_default();
    let tenant = principal.tenant.clone();
    let attempt = Uuid::now_v7().simple().to_string();
    let directory = format!(
        "{tenant}/{channel}/{dataset}/v{version}-{}",
        &attempt[attempt.len() - 8..]
    );
    let mut export = Export {
        store,
        dataset,
        directory,
        started: Vec::new(),
        files: Vec::new(),
    };
    match export.run(service, session, principal).await {
        Ok(Written {
            schema_string,
            partition_columns,
            source,
        }) => Ok(SharedTableRecord {
            channel,
            tenant,
            dataset: dataset.to_owned(),
            version,
            schema_string,
            partition_columns,
            files: export.files,
            created_at: Utc::now(),
            source,
        }),
        Err(error) => {
            store.remove(export.started).await;
            Err(error)
        }
    }
}

/// What a finished attempt wrote, beside its files.
struct Written {
    schema_string: String,
    partition_columns: Vec<String>,
    /// The source's version as it was before the query read it.
    source: Option<String>,
}

/// One attempt at a version: where it writes and what it has written.
struct Export<'a> {
    store: &'a DeliveryStore,
    dataset: &'a str,
    /// Relative to the store's root.
    directory: String,
    /// Every file begun, finished or not: what a failed attempt deletes.
    started: Vec<String>,
    files: Vec<SharedFile>,
}

impl Export<'_> {
    fn query_error(&self, source: PlannerError) -> ExportError {
        ExportError::Query {
            dataset: self.dataset.to_owned(),
            source,
        }
    }

    fn write_error(&self, message: impl ToString) -> ExportError {
        ExportError::Write {
            dataset: self.dataset.to_owned(),
            message: message.to_string(),
        }
    }

    /// Runs the query and writes its rows.
    async fn run(
        &mut self,
        service: &QueryService,
        session: Arc<TenantSession>,
        principal: Arc<Principal>,
    ) -> Result<Written, ExportError> {
        let id = DatasetId::parse(self.dataset).map_err(|e| self.write_error(e))?;
        let source = service
            .source_version(&id)
            .await
            .map_err(|e| self.query_error(e))?;
        let client = Arc::new(ClientInfo {
            protocol: Protocol::DeltaSharing,
            address: None,
            application_name: Some("tollgate file channel".to_owned()),
        });
        let context = QueryContext::new(session, principal, CancellationToken::new(), client);
        let table = format!("{}.{}", quote(id.domain()), quote(id.name()));
        let everything = format!("SELECT * FROM {table}");
        let mut planned = self.plan(service, &context, &everything).await?;
        // The dataset's partition columns the channel has, in the order of its rows.
        let partition_names: Vec<String> = match service.catalog().dataset(&id).map(|d| &d.location)
        {
            Some(DatasetLocation::Parquet {
                partition_columns, ..
            }) => planned
                .schema()
                .fields()
                .iter()
                .map(|field| field.name().clone())
                .filter(|name| partition_columns.iter().any(|column| &column.name == name))
                .collect(),
            _ => Vec::new(),
        };
        if !partition_names.is_empty() {
            let order: Vec<String> = partition_names.iter().map(|name| quote(name)).collect();
            let sql = format!("{everything} ORDER BY {}", order.join(", "));
            planned = self.plan(service, &context, &sql).await?;
        }
        let mut stream = service
            .execute(&context, &planned, Vec::new())
            .await
            .map_err(|e| self.query_error(e))?;
        let table_schema: SchemaRef = Arc::new(Schema::new(
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
            delta::schema_string(&table_schema).map_err(|message| ExportError::Schema {
                dataset: self.dataset.to_owned(),
                message,
            })?;
        let partitioning = Partitioning::new(&table_schema, &partition_names);
        let mut part: Option<FilePart> = None;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| self.query_error(e))?;
            let batch = conform(batch, &table_schema).map_err(|e| self.write_error(e))?;
            let runs = partitioning
                .split(&batch)
                .map_err(|e| self.write_error(e))?;
            for (values, rows) in runs {
                let writing = match part.take() {
                    Some(writing) if writing.values == values => writing,
                    Some(other) => {
                        self.finish_part(other).await?;
                        self.start_part(partitioning.file_schema(), values)?
                    }
                    None => self.start_part(partitioning.file_schema(), values)?,
                };
                let writing = writing.write(rows).await.map_err(|e| self.write_error(e))?;
                if writing.rows >= FILE_ROWS {
                    self.finish_part(writing).await?;
                } else {
                    part = Some(writing);
                }
            }
        }
        match part {
            Some(last) => self.finish_part(last).await?,
            // A version of no rows still has a file, with the schema.
            None if self.files.is_empty() => {
                let empty = self.start_part(partitioning.file_schema(), Vec::new())?;
                self.finish_part(empty).await?;
            }
            None => {}
        }
        Ok(Written {
            schema_string,
            partition_columns: partition_names,
            source,
        })
    }

    /// `sql` parsed and planned in `context`.
    async fn plan(
        &self,
        service: &QueryService,
        context: &QueryContext,
        sql: &str,
    ) -> Result<PlannedQuery, ExportError> {
        let statement = service
            .parse(context, sql)
            .map_err(|e| self.query_error(e))?
            .pop()
            .ok_or_else(|| self.write_error("no statement"))?;
        service
            .plan(context, statement)
            .await
            .map_err(|e| self.query_error(e))
    }

    /// A new file of the partition of `values`, the next part of the version.
    fn start_part(
        &mut self,
        schema: &SchemaRef,
        values: PartitionValues,
    ) -> Result<FilePart, ExportError> {
        let name = format!("part-{:05}.parquet", self.files.len());
        let path = if values.is_empty() {
            format!("{}/{name}", self.directory)
        } else {
            format!(
                "{}/{}/{name}",
                self.directory,
                partitions::directory(&values)
            )
        };
        self.started.push(path.clone());
        let sink = BufWriter::new(Arc::clone(self.store.objects()), self.store.location(&path));
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = AsyncArrowWriter::try_new(sink, Arc::clone(schema), Some(properties))
            .map_err(|e| self.write_error(e))?;
        Ok(FilePart {
            path,
            values,
            writer,
            rows: 0,
            stats: FileStats::new(schema),
        })
    }

    async fn finish_part(&mut self, part: FilePart) -> Result<(), ExportError> {
        let file = part.finish().await.map_err(|e| self.write_error(e))?;
        self.files.push(file);
        Ok(())
    }
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

/// One Parquet file being written to the store.
struct FilePart {
    /// Relative to the store's root.
    path: String,
    /// The partition its rows are of.
    values: PartitionValues,
    writer: AsyncArrowWriter<BufWriter>,
    rows: usize,
    stats: FileStats,
}

impl FilePart {
    async fn write(mut self, batch: RecordBatch) -> Result<Self, String> {
        self.rows += batch.num_rows();
        self.stats.add(&batch);
        self.writer.write(&batch).await.map_err(|e| e.to_string())?;
        Ok(self)
    }

    /// Closes the file: its footer written and its upload completed.
    async fn finish(mut self) -> Result<SharedFile, String> {
        self.writer.finish().await.map_err(|e| e.to_string())?;
        Ok(SharedFile {
            path: self.path,
            size: self.writer.bytes_written() as u64,
            rows: self.rows as u64,
            stats: self.stats.finish(),
            partition_values: partitions::value_map(&self.values),
        })
    }
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
