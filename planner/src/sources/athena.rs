//! Datasets on Amazon Athena: the part of a query over such a dataset (its projection,
//! pushed filters — the grant's row filter among them — and limit) is sent to Athena as
//! SQL, in the tenant's workgroup, so that Athena's own per-query scan limit of the
//! workgroup applies.
//!
//! ```text
//! StartQueryExecution ─▶ GetQueryExecution (backoff 100 ms … 2 s) ─▶ GetQueryResults pages
//!        ▲                                                               │ rows → Arrow
//!        └── StopQueryExecution when the query is dropped (cancel, timeout) before the end
//! ```
//!
//! Results arrive as text and are cast to the dataset's declared column types; Athena's
//! `DataScannedInBytes` is reported as the scan's bytes scanned.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_athena::Client;
use aws_sdk_athena::config::http::HttpResponse;
use aws_sdk_athena::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_athena::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration, Row};
use aws_smithy_http_client::{Builder, tls};
use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::Count;
use datafusion::sql::sqlparser::ast;
use datafusion::sql::unparser::dialect::{CustomDialect, CustomDialectBuilder};
use tokio::runtime::Handle;
use tollgate_catalog::AthenaOptions;

use crate::sources::pushdown::quote;
use crate::sources::pushdown::{filter_sql, scan_sql};
use crate::sources::remote_scan::{BatchSender, RemoteQuery, RemoteScanExec};
use crate::sources::source_error::SourceFailure;

/// First and longest wait between two polls of a running Athena query.
const FIRST_POLL: Duration = Duration::from_millis(100);
const LONGEST_POLL: Duration = Duration::from_secs(2);
/// Rows per `GetQueryResults` page (Athena's maximum).
const PAGE_ROWS: i32 = 1000;

/// An Athena source: a client and where its tables and results live.
pub(crate) struct AthenaSource {
    client: Client,
    options: AthenaOptions,
    io: Handle,
}

impl fmt::Debug for AthenaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AthenaSource")
            .field("region", &self.options.region)
            .field("database", &self.options.database)
            .finish_non_exhaustive()
    }
}

impl AthenaSource {
    /// A client for `options`, with its keys, else the keys of the environment; its HTTP
    /// runs on `io`.
    ///
    /// # Errors
    /// A message when no credentials are given.
    pub fn new(options: &AthenaOptions, io: Handle) -> std::result::Result<Self, String> {
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let key = options
            .access_key_id
            .clone()
            .or_else(|| from_env("AWS_ACCESS_KEY_ID"));
        let secret = options
            .secret_access_key
            .clone()
            .or_else(|| from_env("AWS_SECRET_ACCESS_KEY"));
        let (Some(key), Some(secret)) = (key, secret) else {
            return Err(
                "no credentials: set access_key_id and secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                    .to_owned(),
            );
        };
        let token = options
            .session_token
            .clone()
            .or_else(|| from_env("AWS_SESSION_TOKEN"));
        let http = Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut config = aws_sdk_athena::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(options.region.clone()))
            .credentials_provider(Credentials::new(key, secret, token, None, "tollgate"))
            .http_client(http);
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(Self {
            client: Client::from_conf(config.build()),
            options: options.clone(),
            io,
        })
    }
}

/// Athena's SQL: double-quoted identifiers, `varchar` rather than `text`.
pub(crate) fn athena_dialect() -> CustomDialect {
    CustomDialectBuilder::new()
        .with_identifier_quote_style('"')
        .with_utf8_cast_dtype(ast::DataType::Varchar(None))
        .with_large_utf8_cast_dtype(ast::DataType::Varchar(None))
        .with_supports_nulls_first_in_sort(false)
        .build()
}

/// A dataset's table on Athena, as one tenant's queries see it (in its workgroup).
#[derive(Debug)]
pub(crate) struct AthenaTable {
    dataset: String,
    relation: String,
    remote: TableReference,
    schema: SchemaRef,
    source: Arc<AthenaSource>,
    workgroup: String,
}

impl AthenaTable {
    /// Table `table` of the source's database with the dataset's declared `schema`, queried
    /// in `workgroup`.
    pub fn new(
        dataset: &str,
        table: &str,
        schema: Schema,
        source: Arc<AthenaSource>,
        workgroup: String,
    ) -> Self {
        let relation = format!("{}.{}", quote(&source.options.database), quote(table));
        Self {
            dataset: dataset.to_owned(),
            relation,
            remote: TableReference::partial(source.options.database.as_str(), table),
            schema: Arc::new(schema),
            source,
            workgroup,
        }
    }

    /// The source the table is on.
    pub fn source(&self) -> &Arc<AthenaSource> {
        &self.source
    }

    /// The workgroup the table's queries run in.
    pub fn workgroup(&self) -> &str {
        &self.workgroup
    }

    /// The table's name on Athena (`database.table`).
    pub fn remote_name(&self) -> &TableReference {
        &self.remote
    }
}

/// A scan of `dataset` running `sql` (whose result columns are `schema`'s, by name and
/// order) on `source` in `workgroup`.
pub(crate) fn athena_scan(
    source: &Arc<AthenaSource>,
    workgroup: &str,
    dataset: String,
    sql: String,
    schema: SchemaRef,
) -> RemoteScanExec {
    let run = AthenaRun {
        dataset: dataset.clone(),
        sql,
        schema: Arc::clone(&schema),
        source: Arc::clone(source),
        workgroup: workgroup.to_owned(),
    };
    RemoteScanExec::new("AthenaScanExec", dataset, schema, Arc::new(run))
}

#[async_trait]
impl TableProvider for AthenaTable {
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
        let dialect = athena_dialect();
        Ok(filters
            .iter()
            .map(|filter| {
                if filter_sql(filter, &dialect).is_some() {
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
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&indices)?);
        let select: Vec<String> = schema
            .fields()
            .iter()
            .map(|field| quote(field.name()))
            .collect();
        let sql = scan_sql(&select, &self.relation, filters, limit, &athena_dialect())?;
        Ok(Arc::new(athena_scan(
            &self.source,
            &self.workgroup,
            self.dataset.clone(),
            sql,
            schema,
        )))
    }
}

/// One execution of a scan on Athena.
#[derive(Debug)]
struct AthenaRun {
    dataset: String,
    sql: String,
    schema: SchemaRef,
    source: Arc<AthenaSource>,
    workgroup: String,
}

#[async_trait]
impl RemoteQuery for AthenaRun {
    fn io(&self) -> &Handle {
        &self.source.io
    }

    async fn run(
        &self,
        sender: &BatchSender,
        scanned: &Count,
    ) -> std::result::Result<(), SourceFailure> {
        let client = &self.source.client;
        let options = &self.source.options;
        let started = client
            .start_query_execution()
            .query_string(&self.sql)
            .work_group(&self.workgroup)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(&options.database)
                    .build(),
            )
            .set_result_configuration(options.output_location.as_ref().map(|location| {
                ResultConfiguration::builder()
                    .output_location(location)
                    .build()
            }))
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        let id = started
            .query_execution_id()
            .ok_or(SourceFailure::SourceQuery)?
            .to_owned();
        let mut running = StopOnDrop {
            client: client.clone(),
            io: self.source.io.clone(),
            id: Some(id.clone()),
        };

        let mut wait = FIRST_POLL;
        loop {
            let polled = client
                .get_query_execution()
                .query_execution_id(&id)
                .send()
                .await
                .map_err(|e| self.failure(e))?;
            let execution = polled.query_execution();
            let status = execution.and_then(|e| e.status());
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => {
                    let bytes = execution
                        .and_then(|e| e.statistics())
                        .and_then(|s| s.data_scanned_in_bytes())
                        .unwrap_or(0);
                    scanned.add(usize::try_from(bytes).unwrap_or(0));
                    break;
                }
                Some(QueryExecutionState::Failed | QueryExecutionState::Cancelled) => {
                    running.id = None;
                    tracing::warn!(
                        dataset = %self.dataset,
                        query_execution_id = %id,
                        reason = status.and_then(|s| s.state_change_reason()).unwrap_or(""),
                        "Athena query did not succeed"
                    );
                    return Err(SourceFailure::SourceQuery);
                }
                _ => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(LONGEST_POLL);
                }
            }
        }
        running.id = None;

        let mut token = None;
        let mut first_page = true;
        loop {
            let page = client
                .get_query_results()
                .query_execution_id(&id)
                .max_results(PAGE_ROWS)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.failure(e))?;
            let rows = page.result_set().map(|set| set.rows()).unwrap_or_default();
            // The first row of a SELECT's first page repeats the column names.
            let skip = usize::from(first_page && self.is_header(rows.first()));
            first_page = false;
            let batch = self.batch(&rows[skip.min(rows.len())..]);
            if sender.send(batch).await.is_err() {
                return Ok(());
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(());
            }
        }
    }
}

impl AthenaRun {
    fn is_header(&self, row: Option<&Row>) -> bool {
        let Some(values) = row.map(Row::data) else {
            return false;
        };
        if self.schema.fields().is_empty() {
            return values.len() == 1 && values[0].var_char_value() == Some("_col0");
        }
        values.len() == self.schema.fields().len()
            && values
                .iter()
                .zip(self.schema.fields())
                .all(|(value, field)| value.var_char_value() == Some(field.name().as_str()))
    }

    /// Athena's rows (text) as a batch of the declared types.
    fn batch(&self, rows: &[Row]) -> Result<RecordBatch> {
        let columns = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let mut text = StringBuilder::new();
                for row in rows {
                    text.append_option(row.data().get(index).and_then(|d| d.var_char_value()));
                }
                Ok(cast(&text.finish(), field.data_type())?)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?)
    }

    fn failure<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        error: SdkError<E, HttpResponse>,
    ) -> SourceFailure {
        tracing::warn!(dataset = %self.dataset, error = %aws_sdk_athena::error::DisplayErrorContext(&error), "Athena request failed");
        // An authentication failure may come as 401/403 with a body the SDK cannot parse.
        let refused_status = error
            .raw_response()
            .is_some_and(|response| matches!(response.status().as_u16(), 401 | 403));
        match &error {
            _ if refused_status => SourceFailure::CredentialsRefused,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => SourceFailure::Unreachable,
            SdkError::ServiceError(service) => match service.err().code() {
                Some(
                    "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "AccessDeniedException"
                    | "ExpiredTokenException",
                ) => SourceFailure::CredentialsRefused,
                _ => SourceFailure::SourceQuery,
            },
            _ => SourceFailure::SourceQuery,
        }
    }
}

/// Stops an Athena query that is still running when its reader goes away.
struct StopOnDrop {
    client: Client,
    io: Handle,
    id: Option<String>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let client = self.client.clone();
            self.io.spawn(async move {
                if let Err(error) = client.stop_query_execution().query_execution_id(&id).send().await {
                    tracing::warn!(query_execution_id = %id, error = %aws_sdk_athena::error::DisplayErrorContext(&error), "cannot stop an Athena query");
                }
            });
        }
    }
}
