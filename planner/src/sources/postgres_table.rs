//! A dataset in a table of a PostgreSQL source, read through its [`ReplicaSet`].
//!
//! Projections, filters and limits are pushed into the SQL sent to the replica, so only
//! the rows and columns the query needs cross the network: filters that [`filter_sql`]
//! accepts are printed in PostgreSQL's dialect and applied exactly there. Rows are read in
//! batches of [`BATCH_ROWS`] by a [`RemoteScanExec`]; the number read is the scan's
//! `output_rows`, which the usage record reports as rows scanned, and the bytes of the
//! values received are its bytes scanned.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::Count;
use datafusion::sql::unparser::dialect::PostgreSqlDialect;
use futures::{StreamExt, pin_mut};
use tokio::runtime::Handle;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql, Type};

use crate::sources::pushdown::quote;
use crate::sources::pushdown::{filter_sql, scan_sql};
use crate::sources::remote_scan::{BatchSender, RemoteQuery, RemoteScanExec};
use crate::sources::replicas::ReplicaSet;
use crate::sources::source_error::SourceFailure;

/// Rows per batch read from a replica.
const BATCH_ROWS: usize = 8192;
/// Precision and scale of `numeric` columns declared without them.
const UNCONSTRAINED_NUMERIC: (u8, i8) = (38, 10);

/// How a column's values are read from a row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reader {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Bool,
    Text,
    Bytes,
    Date,
    Timestamp,
    TimestampTz,
    /// Selected as `::text` and cast to the column's Arrow type (numeric, uuid, json, …).
    Cast,
}

#[derive(Debug, Clone)]
struct RemoteColumn {
    name: String,
    reader: Reader,
}

impl RemoteColumn {
    fn select(&self) -> String {
        match self.reader {
            Reader::Cast => format!("{}::text", quote(&self.name)),
            _ => quote(&self.name),
        }
    }
}

/// A table of a PostgreSQL source.
#[derive(Debug)]
pub(crate) struct PostgresTable {
    dataset: String,
    remote: TableReference,
    relation: String,
    schema: SchemaRef,
    columns: Vec<RemoteColumn>,
    replicas: Arc<ReplicaSet>,
}

impl PostgresTable {
    /// The table `schema.table` of `replicas`: its columns as declared, else as the first
    /// replica that answers describes them.
    ///
    /// # Errors
    /// The failure to reach every replica, or a message when the table does not exist.
    pub async fn open(
        dataset: &str,
        schema: &str,
        table: &str,
        declared: Option<Schema>,
        replicas: Arc<ReplicaSet>,
    ) -> std::result::Result<Self, String> {
        let relation = format!("{}.{}", quote(schema), quote(table));
        let remote = TableReference::partial(schema, table);
        let (fields, columns) = match declared {
            Some(declared) => {
                let columns = declared
                    .fields()
                    .iter()
                    .map(|field| RemoteColumn {
                        name: field.name().clone(),
                        reader: Reader::Cast,
                    })
                    .collect();
                (
                    declared
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .collect(),
                    columns,
                )
            }
            None => describe(&replicas, schema, table).await?,
        };
        Ok(Self {
            dataset: dataset.to_owned(),
            remote,
            relation,
            schema: Arc::new(Schema::new(fields)),
            columns,
            replicas,
        })
    }
}

impl PostgresTable {
    /// The replicas the table is read from.
    pub fn replicas(&self) -> &Arc<ReplicaSet> {
        &self.replicas
    }

    /// The table's name on the replicas (`schema.table`).
    pub fn remote_name(&self) -> &TableReference {
        &self.remote
    }
}

/// The columns of `schema.table` on the first replica that answers.
/// Runs `sql`, a query about one table with its schema and name as `$1` and `$2`, on the
/// first replica that answers.
///
/// # Errors
/// Why no replica answered it.
pub(crate) async fn table_query(
    replicas: &Arc<ReplicaSet>,
    sql: &'static str,
    schema: &str,
    table: &str,
) -> std::result::Result<Vec<Row>, String> {
    let (schema, table) = (schema.to_owned(), table.to_owned());
    let set = Arc::clone(replicas);
    replicas
        .io()
        .spawn(async move {
            set.with_connection(|client| {
                let (schema, table) = (schema.clone(), table.clone());
                let set = Arc::clone(&set);
                async move {
                    short_query(&set, client, async |client| {
                        client.query(sql, &[&schema, &table]).await
                    })
                    .await
                }
            })
            .await
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|failure| failure.to_string())
}

async fn describe(
    replicas: &Arc<ReplicaSet>,
    schema: &str,
    table: &str,
) -> std::result::Result<(Vec<Field>, Vec<RemoteColumn>), String> {
    const COLUMNS: &str = "SELECT a.attname, t.typname, a.atttypmod, NOT a.attnotnull \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass \
           AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";
    let rows = table_query(replicas, COLUMNS, schema, table).await?;
    if rows.is_empty() {
        return Err("the table has no columns or does not exist".to_owned());
    }
    Ok(rows
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            let type_name: String = row.get(1);
            let modifier: i32 = row.get(2);
            let nullable: bool = row.get(3);
            let (data_type, reader) = arrow_type(&type_name, modifier);
            (
                Field::new(&name, data_type, nullable),
                RemoteColumn { name, reader },
            )
        })
        .unzip())
}

/// The Arrow type of a PostgreSQL type and how to read it.
fn arrow_type(type_name: &str, modifier: i32) -> (DataType, Reader) {
    match type_name {
        "int2" => (DataType::Int16, Reader::Int16),
        "int4" => (DataType::Int32, Reader::Int32),
        "int8" => (DataType::Int64, Reader::Int64),
        "float4" => (DataType::Float32, Reader::Float32),
        "float8" => (DataType::Float64, Reader::Float64),
        "bool" => (DataType::Boolean, Reader::Bool),
        "text" | "varchar" | "bpchar" | "name" => (DataType::Utf8, Reader::Text),
        "bytea" => (DataType::Binary, Reader::Bytes),
        "date" => (DataType::Date32, Reader::Date),
        "timestamp" => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            Reader::Timestamp,
        ),
        "timestamptz" => (
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Reader::TimestampTz,
        ),
        "numeric" => {
            let (precision, scale) = if modifier >= 4 {
                let packed = modifier - 4;
                (
                    u8::try_from((packed >> 16) & 0xffff).unwrap_or(38).min(38),
                    i8::try_from(packed & 0xffff).unwrap_or(10),
                )
            } else {
                UNCONSTRAINED_NUMERIC
            };
            (DataType::Decimal128(precision, scale), Reader::Cast)
        }
        // uuid, json, time, interval, arrays, enums, …: their text form.
        _ => (DataType::Utf8, Reader::Cast),
    }
}

#[async_trait]
impl TableProvider for PostgresTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| {
                if filter_sql(filter, &PostgreSqlDialect {}).is_some() {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let indices: Vec<usize> = match projection {
            Some(indices) => indices.clone(),
            None => (0..self.columns.len()).collect(),
        };
        let columns: Vec<RemoteColumn> = indices.iter().map(|&i| self.columns[i].clone()).collect();
        let select: Vec<String> = columns.iter().map(RemoteColumn::select).collect();
        let sql = scan_sql(
            &select,
            &self.relation,
            filters,
            limit,
            &PostgreSqlDialect {},
        )?;
        let schema = Arc::new(self.schema.project(&indices)?);
        Ok(Arc::new(replica_scan(
            self.dataset.clone(),
            sql,
            schema,
            columns.iter().map(|column| column.reader).collect(),
            Arc::clone(&self.replicas),
        )))
    }
}

/// A scan running `sql` (whose result columns match `schema` in order) on `replicas`,
/// every column read from its text form and cast to the schema's type.
pub(crate) fn text_scan(
    dataset: String,
    sql: String,
    schema: SchemaRef,
    replicas: Arc<ReplicaSet>,
) -> RemoteScanExec {
    let readers = vec![Reader::Cast; schema.fields().len()];
    replica_scan(dataset, sql, schema, readers, replicas)
}

fn replica_scan(
    dataset: String,
    sql: String,
    schema: SchemaRef,
    readers: Vec<Reader>,
    replicas: Arc<ReplicaSet>,
) -> RemoteScanExec {
    let query = Query {
        dataset: dataset.clone(),
        sql,
        schema: Arc::clone(&schema),
        readers,
        replicas,
    };
    RemoteScanExec::new("PostgresScanExec", dataset, schema, Arc::new(query))
}

/// One query's SQL, the replicas it runs on and how to turn its rows into batches.
#[derive(Debug)]
struct Query {
    dataset: String,
    sql: String,
    schema: SchemaRef,
    readers: Vec<Reader>,
    replicas: Arc<ReplicaSet>,
}

#[async_trait]
impl RemoteQuery for Query {
    fn io(&self) -> &Handle {
        self.replicas.io()
    }

    async fn run(&self, sender: &BatchSender, scanned: &Count) -> Result<(), SourceFailure> {
        self.replicas
            .with_connection(|client| self.stream(client, sender.clone(), scanned))
            .await
    }
}

impl Query {
    /// Streams the rows into `sender`, adding the bytes of their values to `scanned` as
    /// each batch is sent. A connection that breaks, or a replica that stays silent past
    /// the read timeout, before the first batch was sent is reported as retryable; a
    /// silent replica's connection is dropped rather than pooled.
    async fn stream(
        &self,
        client: deadpool_postgres::Object,
        sender: BatchSender,
        scanned: &Count,
    ) -> std::result::Result<(), (bool, SourceFailure)> {
        let failed = |error: &tokio_postgres::Error, sent: bool| {
            tracing::warn!(dataset = %self.dataset, %error, "replica query failed");
            (!sent && is_broken(error), SourceFailure::SourceQuery)
        };
        let silent = |client: deadpool_postgres::Object, failure: SourceFailure, sent: bool| {
            tracing::warn!(dataset = %self.dataset, %failure, "replica went silent");
            drop(deadpool_postgres::Object::take(client));
            (!sent, failure)
        };
        // One round trip: parse, bind and execute without describing a statement first.
        let started = self.replicas.read(client.query_typed_raw(
            self.sql.as_str(),
            std::iter::empty::<(&(dyn ToSql + Sync), Type)>(),
        ));
        let rows = match started.await {
            Ok(rows) => rows.map_err(|e| failed(&e, false))?,
            Err(failure) => return Err(silent(client, failure, false)),
        };
        pin_mut!(rows);
        let mut sent = false;
        let mut batch = self.builders();
        let mut count = 0;
        let mut bytes = 0;
        loop {
            let row = match self.replicas.read(rows.next()).await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(failure) => return Err(silent(client, failure, sent)),
            };
            let row = row.map_err(|e| failed(&e, sent))?;
            for (index, builder) in batch.iter_mut().enumerate() {
                if let Err(error) = builder.append(&row, index) {
                    tracing::warn!(dataset = %self.dataset, %error, "a replica's value cannot be read");
                    return Err((false, SourceFailure::SourceQuery));
                }
            }
            bytes += (0..row.len())
                .map(|index| {
                    row.try_get::<_, ValueBytes>(index)
                        .map_or(0, |value| value.0)
                })
                .sum::<usize>();
            count += 1;
            if count == BATCH_ROWS {
                sent = true;
                scanned.add(std::mem::take(&mut bytes));
                if !self.send(&sender, &mut batch, count).await {
                    return Ok(());
                }
                count = 0;
            }
        }
        if count > 0 {
            scanned.add(bytes);
            self.send(&sender, &mut batch, count).await;
        }
        Ok(())
    }

    fn builders(&self) -> Vec<ColumnBuilder> {
        self.readers
            .iter()
            .map(|reader| ColumnBuilder::new(*reader))
            .collect()
    }

    /// Sends the rows built so far; `false` when the reader went away.
    async fn send(&self, sender: &BatchSender, batch: &mut [ColumnBuilder], rows: usize) -> bool {
        let columns: Result<Vec<ArrayRef>> = batch
            .iter_mut()
            .zip(self.schema.fields())
            .map(|(builder, field)| builder.finish(field.data_type()))
            .collect();
        let batch = columns.and_then(|columns| {
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            Ok(RecordBatch::try_new_with_options(
                Arc::clone(&self.schema),
                columns,
                &options,
            )?)
        });
        sender.send(batch).await.is_ok()
    }
}

/// The size of a value as the replica sent it, whatever its type: what a replica scan
/// reports as bytes scanned.
struct ValueBytes(usize);

impl<'a> FromSql<'a> for ValueBytes {
    fn from_sql(
        _type: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw.len()))
    }

    fn from_sql_null(
        _type: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(0))
    }

    fn accepts(_type: &Type) -> bool {
        true
    }
}

/// Runs `query`, a query with a short answer, on `client` within `replicas`' read timeout.
///
/// # Errors
/// `(retryable, failure)` for [`ReplicaSet::with_connection`]: a connection that broke or a
/// replica that went silent may be replaced by the next replica; a silent connection is
/// dropped rather than pooled.
pub(crate) async fn short_query<T>(
    replicas: &ReplicaSet,
    client: deadpool_postgres::Object,
    query: impl AsyncFnOnce(&deadpool_postgres::Object) -> Result<T, tokio_postgres::Error>,
) -> std::result::Result<T, (bool, SourceFailure)> {
    let answered = replicas.read(query(&client)).await;
    match answered {
        Ok(answer) => answer.map_err(|e| (is_broken(&e), SourceFailure::SourceQuery)),
        Err(failure) => {
            drop(deadpool_postgres::Object::take(client));
            Err((true, failure))
        }
    }
}

/// Whether `error` means the connection is gone (the replica went down), not that the
/// query was refused.
pub(crate) fn is_broken(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        // admin_shutdown, crash_shutdown, cannot_connect_now, and connection exceptions.
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => true,
    }
}

/// Builds one column of a batch.
enum ColumnBuilder {
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    TimestampTz(TimestampMicrosecondBuilder),
    Cast(StringBuilder),
}

impl ColumnBuilder {
    fn new(reader: Reader) -> Self {
        match reader {
            Reader::Int16 => Self::Int16(Int16Builder::new()),
            Reader::Int32 => Self::Int32(Int32Builder::new()),
            Reader::Int64 => Self::Int64(Int64Builder::new()),
            Reader::Float32 => Self::Float32(Float32Builder::new()),
            Reader::Float64 => Self::Float64(Float64Builder::new()),
            Reader::Bool => Self::Bool(BooleanBuilder::new()),
            Reader::Text => Self::Text(StringBuilder::new()),
            Reader::Bytes => Self::Bytes(BinaryBuilder::new()),
            Reader::Date => Self::Date(Date32Builder::new()),
            Reader::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::new()),
            Reader::TimestampTz => Self::TimestampTz(TimestampMicrosecondBuilder::new()),
            Reader::Cast => Self::Cast(StringBuilder::new()),
        }
    }

    fn append(
        &mut self,
        row: &Row,
        index: usize,
    ) -> std::result::Result<(), tokio_postgres::Error> {
        match self {
            Self::Int16(b) => b.append_option(row.try_get::<_, Option<i16>>(index)?),
            Self::Int32(b) => b.append_option(row.try_get::<_, Option<i32>>(index)?),
            Self::Int64(b) => b.append_option(row.try_get::<_, Option<i64>>(index)?),
            Self::Float32(b) => b.append_option(row.try_get::<_, Option<f32>>(index)?),
            Self::Float64(b) => b.append_option(row.try_get::<_, Option<f64>>(index)?),
            Self::Bool(b) => b.append_option(row.try_get::<_, Option<bool>>(index)?),
            Self::Text(b) | Self::Cast(b) => {
                b.append_option(row.try_get::<_, Option<&str>>(index)?)
            }
            Self::Bytes(b) => b.append_option(row.try_get::<_, Option<&[u8]>>(index)?),
            Self::Date(b) => b.append_option(
                row.try_get::<_, Option<NaiveDate>>(index)?
                    .map(|date| (date - NaiveDate::default()).num_days() as i32),
            ),
            Self::Timestamp(b) => b.append_option(
                row.try_get::<_, Option<NaiveDateTime>>(index)?
                    .map(|at| at.and_utc().timestamp_micros()),
            ),
            Self::TimestampTz(b) => b.append_option(
                row.try_get::<_, Option<DateTime<Utc>>>(index)?
                    .map(|at| at.timestamp_micros()),
            ),
        }
        Ok(())
    }

    fn finish(&mut self, data_type: &DataType) -> Result<ArrayRef> {
        let array: ArrayRef = match self {
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Bytes(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::TimestampTz(b) => Arc::new(b.finish().with_timezone("UTC")),
            Self::Cast(b) => {
                let text = b.finish();
                return Ok(cast(&text, data_type)?);
            }
        };
        Ok(array)
    }
}
