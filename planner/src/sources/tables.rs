//! The providers' side: every dataset's source table, in a private session no tenant can name.
//!
//! Grants are planned here, as `SELECT <granted columns> FROM <dataset> WHERE <row filter>`,
//! and the resulting plans become the tenants' views. Row filters may refer to other datasets
//! (e.g. a customer filter that looks up the tenant's region through `tpch.nation`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::file_format::options::ParquetReadOptions;
use datafusion::execution::SessionState;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use tokio::runtime::Handle;
use tollgate_catalog::{
    Catalog, Column, DatasetId, DatasetLocation, Grant, Narrowing, SourceOptions, Tenant,
};

use crate::error::PlannerError;
use crate::sources::athena::{AthenaSource, AthenaTable};
use crate::sources::postgres_table::PostgresTable;
use crate::sources::pushdown::quote;
use crate::sources::replicas::ReplicaSet;

const SOURCE_CATALOG: &str = "source";

/// Every dataset of the catalog, registered under its id in a private session.
pub(crate) struct SourceTables {
    context: SessionContext,
    unavailable: BTreeMap<String, String>,
    /// Datasets on Athena, whose grants read a table of the tenant's own (its workgroup).
    athena: HashSet<DatasetId>,
}

/// The catalog holding one tenant's tables of Athena datasets.
fn tenant_catalog(tenant: &str) -> String {
    format!("{SOURCE_CATALOG}@{tenant}")
}

/// The catalog holding a dedicated source's tables, for grants routed to it.
fn routed_catalog(source: &str) -> String {
    format!("{SOURCE_CATALOG}:{source}")
}

impl SourceTables {
    /// Opens every dataset's source, with the stores of `stores`, and infers the schema of
    /// those that declare none.
    ///
    /// A dataset whose source cannot be read at start-up and that declares no columns is
    /// left out (and logged), so the other datasets are served; see [`Self::unavailable`].
    ///
    /// # Errors
    /// [`PlannerError::Source`] for a declared column type that is not a SQL type.
    pub async fn open(
        catalog: &Catalog,
        stores: Arc<dyn ObjectStoreRegistry>,
    ) -> Result<Self, PlannerError> {
        let config = SessionConfig::new().with_default_catalog_and_schema(SOURCE_CATALOG, "public");
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(stores)
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()?;
        let context = SessionContext::new_with_config_rt(config, runtime);
        let root = context
            .catalog(SOURCE_CATALOG)
            .ok_or_else(|| PlannerError::Source {
                dataset: String::new(),
                message: "the source catalog is missing".to_owned(),
            })?;
        let mut unavailable = BTreeMap::new();
        let mut clients = SourceClients::new(catalog)?;
        for dataset in catalog.datasets() {
            let id = &dataset.id;
            if root.schema(id.domain()).is_none() {
                root.register_schema(id.domain(), Arc::new(MemorySchemaProvider::new()))?;
            }
            let (url, partition_columns) = match &dataset.location {
                DatasetLocation::Parquet {
                    url,
                    partition_columns,
                    ..
                } => (url, partition_columns),
                DatasetLocation::Postgres {
                    source,
                    schema,
                    table,
                } => {
                    let declared = match &dataset.columns {
                        Some(columns) => Some(declared_schema(&context, id, columns).await?),
                        None => None,
                    };
                    let replicas = clients.replicas(source)?;
                    let opened =
                        PostgresTable::open(&id.to_string(), schema, table, declared, replicas)
                            .await;
                    match opened {
                        Ok(table) => {
                            let name = format!("{SOURCE_CATALOG}.{}.{}", id.domain(), id.name());
                            context.register_table(name.as_str(), Arc::new(table))?;
                        }
                        Err(error) => {
                            tracing::error!(dataset = %id, %error, "cannot describe the dataset's table; it is not served");
                            unavailable.insert(id.to_string(), error);
                        }
                    }
                    continue;
                }
                DatasetLocation::Athena { .. } => continue,
            };
            let declared = match &dataset.columns {
                Some(columns) => Some(declared_schema(&context, id, columns).await?),
                None => None,
            };
            let mut partitions = Vec::new();
            for column in partition_columns {
                partitions.push((column.name.clone(), sql_type(&context, id, column).await?));
            }
            let mut options = ParquetReadOptions::default().table_partition_cols(partitions);
            if let Some(schema) = &declared {
                options = options.schema(schema);
            }
            let table = format!("{SOURCE_CATALOG}.{}.{}", id.domain(), id.name());
            if let Err(error) = context.register_parquet(table.as_str(), url, options).await {
                tracing::error!(
                    dataset = %id,
                    %error,
                    "cannot read the dataset's files to infer its schema; it is not served"
                );
                unavailable.insert(id.to_string(), error.to_string());
            }
        }
        for tenant in catalog.tenants() {
            for grant in catalog.grants(&tenant.id) {
                let (Some(source), Some(dataset)) =
                    (&grant.source, catalog.dataset(&grant.dataset))
                else {
                    continue;
                };
                let DatasetLocation::Postgres { schema, table, .. } = &dataset.location else {
                    continue;
                };
                let id = &dataset.id;
                let domain = schema_of(&context, &routed_catalog(source), id.domain())?;
                if domain.table_exist(id.name()) {
                    continue;
                }
                let declared = match &dataset.columns {
                    Some(columns) => Some(declared_schema(&context, id, columns).await?),
                    None => None,
                };
                match PostgresTable::open(
                    &id.to_string(),
                    schema,
                    table,
                    declared,
                    clients.replicas(source)?,
                )
                .await
                {
                    Ok(table) => {
                        domain.register_table(id.name().to_owned(), Arc::new(table))?;
                    }
                    Err(error) => {
                        tracing::error!(dataset = %id, source = %source, %error, "cannot describe the dataset's table on a dedicated source; grants routed there are not served");
                        unavailable.insert(format!("{id}@{source}"), error);
                    }
                }
            }
        }
        let mut athena = HashSet::new();
        for tenant in catalog.tenants() {
            for grant in catalog.grants(&tenant.id) {
                let Some(dataset) = catalog.dataset(&grant.dataset) else {
                    continue;
                };
                let DatasetLocation::Athena { source, table } = &dataset.location else {
                    continue;
                };
                athena.insert(dataset.id.clone());
                let Some(columns) = &dataset.columns else {
                    continue;
                };
                let schema = declared_schema(&context, &dataset.id, columns).await?;
                let workgroup = clients.workgroup(source, tenant);
                let table = AthenaTable::new(
                    &dataset.id.to_string(),
                    table,
                    schema,
                    clients.athena(source)?,
                    workgroup,
                );
                let domain = schema_of(&context, &tenant_catalog(&tenant.id), dataset.id.domain())?;
                domain.register_table(dataset.id.name().to_owned(), Arc::new(table))?;
            }
        }
        Ok(Self {
            context,
            unavailable,
            athena,
        })
    }

    /// Whether `grant`'s dataset could not be opened at start-up, on its own source or the
    /// grant's dedicated one (and so is not served).
    pub fn is_unavailable(&self, grant: &Grant) -> bool {
        let key = match &grant.source {
            Some(source) => format!("{}@{source}", grant.dataset),
            None => grant.dataset.to_string(),
        };
        self.unavailable.contains_key(&key)
    }

    /// Plans `grant` for `tenant`: granted columns, row filter, attributes bound as values.
    ///
    /// # Errors
    /// [`PlannerError::Grant`] with the SQL error of a bad column expression or filter.
    pub async fn plan_grant(
        &self,
        tenant: &Tenant,
        grant: &Grant,
    ) -> Result<LogicalPlan, PlannerError> {
        self.try_plan_grant(tenant, grant)
            .await
            .map_err(|source| PlannerError::Grant {
                tenant: tenant.id.clone(),
                dataset: grant.dataset.to_string(),
                source: Box::new(source),
            })
    }

    async fn try_plan_grant(
        &self,
        tenant: &Tenant,
        grant: &Grant,
    ) -> Result<LogicalPlan, PlannerError> {
        let columns = match &grant.columns {
            None => "*".to_owned(),
            Some(columns) => columns
                .iter()
                .map(|column| {
                    Ok(format!(
                        "{} AS {}",
                        single_expression(&column.expr)?,
                        quote(&column.name)
                    ))
                })
                .collect::<Result<Vec<_>, PlannerError>>()?
                .join(", "),
        };
        let filter = match &grant.row_filter {
            Some(filter) => format!(" WHERE {}", single_expression(filter)?),
            None => String::new(),
        };
        let catalog = match &grant.source {
            Some(source) => format!("{}.", quote(&routed_catalog(source))),
            None if self.athena.contains(&grant.dataset) => {
                format!("{}.", quote(&tenant_catalog(&tenant.id)))
            }
            None => String::new(),
        };
        let sql = format!(
            "SELECT {columns} FROM {catalog}{}.{}{filter}",
            quote(grant.dataset.domain()),
            quote(grant.dataset.name())
        );
        let state = self.context.state();
        let plan = state.create_logical_plan(&sql).await?;
        let plan = match &grant.narrowing {
            Some(narrowing) => narrowed(&state, plan, narrowing)?,
            None => plan,
        };
        bind_attributes(plan, tenant)
    }
}

/// Parses `text` as exactly one SQL expression and prints it back canonically, so a grant's
/// text can never add clauses to the view's statement.
fn single_expression(text: &str) -> Result<String, PlannerError> {
    let mut parser = Parser::new(&PostgreSqlDialect {}).try_with_sql(text)?;
    let expression = parser.parse_expr()?;
    let next = parser.next_token();
    if next.token != Token::EOF {
        return Err(ParserError::ParserError(format!(
            "`{text}` must be a single SQL expression; unexpected `{next}`"
        ))
        .into());
    }
    Ok(expression.to_string())
}

/// A channel's output model over the granted view `plan`: its row filter, then its columns.
/// The expressions see only the view's columns; subqueries are refused, since they would
/// name tables outside the view.
fn narrowed(
    state: &SessionState,
    plan: LogicalPlan,
    narrowing: &Narrowing,
) -> Result<LogicalPlan, PlannerError> {
    let expression = |text: &str, schema: &DFSchema| -> Result<Expr, PlannerError> {
        let expr = state.create_logical_expr(&single_expression(text)?, schema)?;
        let subquery = expr.exists(|e| {
            Ok(matches!(
                e,
                Expr::ScalarSubquery(_)
                    | Expr::Exists(_)
                    | Expr::InSubquery(_)
                    | Expr::OuterReferenceColumn(..)
            ))
        })?;
        if subquery {
            return Err(ParserError::ParserError(format!(
                "`{text}` may use the dataset's columns only, not a subquery"
            ))
            .into());
        }
        Ok(expr)
    };
    let mut builder = LogicalPlanBuilder::from(plan);
    if let Some(filter) = &narrowing.row_filter {
        let predicate = expression(filter, builder.schema())?;
        builder = builder.filter(predicate)?;
    }
    if let Some(columns) = &narrowing.columns {
        let projection = columns
            .iter()
            .map(|column| Ok(expression(&column.expr, builder.schema())?.alias(&column.name)))
            .collect::<Result<Vec<_>, PlannerError>>()?;
        builder = builder.project(projection)?;
    }
    Ok(builder.build()?)
}

/// Replaces `$attribute` placeholders with the tenant's attribute values.
fn bind_attributes(plan: LogicalPlan, tenant: &Tenant) -> Result<LogicalPlan, PlannerError> {
    let types = plan.get_parameter_types()?;
    if types.is_empty() {
        return Ok(plan);
    }
    let mut values = HashMap::new();
    for (placeholder, data_type) in types {
        let name = placeholder.trim_start_matches('$');
        let value = tenant.attributes.get(name).ok_or_else(|| {
            PlannerError::Parameters(format!("tenant `{}` has no attribute `{name}`", tenant.id))
        })?;
        let mut scalar = ScalarValue::Utf8(Some(value.clone()));
        if let Some(data_type) = data_type {
            scalar = scalar.cast_to(&data_type)?;
        }
        values.insert(name.to_owned(), scalar.into());
    }
    Ok(plan.with_param_values(ParamValues::Map(values))?)
}

/// Schema `schema` of catalog `catalog` in `context`, both made if missing.
fn schema_of(
    context: &SessionContext,
    catalog: &str,
    schema: &str,
) -> Result<Arc<dyn SchemaProvider>, PlannerError> {
    if context.catalog(catalog).is_none() {
        context.register_catalog(catalog, Arc::new(MemoryCatalogProvider::new()));
    }
    let root = context
        .catalog(catalog)
        .ok_or_else(|| PlannerError::Source {
            dataset: String::new(),
            message: format!("catalog `{catalog}` is missing"),
        })?;
    Ok(match root.schema(schema) {
        Some(found) => found,
        None => {
            let made: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
            root.register_schema(schema, Arc::clone(&made))?;
            made
        }
    })
}

/// Clients of the catalog's postgres and Athena sources, made on first use.
struct SourceClients<'a> {
    catalog: &'a Catalog,
    sets: BTreeMap<String, Arc<ReplicaSet>>,
    athena: BTreeMap<String, Arc<AthenaSource>>,
    io: Handle,
}

impl<'a> SourceClients<'a> {
    fn new(catalog: &'a Catalog) -> Result<Self, PlannerError> {
        let io = Handle::try_current().map_err(|e| PlannerError::SourceStore {
            source_name: String::new(),
            message: format!("source clients need a Tokio runtime for their I/O: {e}"),
        })?;
        Ok(Self {
            catalog,
            sets: BTreeMap::new(),
            athena: BTreeMap::new(),
            io,
        })
    }

    /// The client of Athena source `name`.
    fn athena(&mut self, name: &str) -> Result<Arc<AthenaSource>, PlannerError> {
        if let Some(source) = self.athena.get(name) {
            return Ok(Arc::clone(source));
        }
        let error = |message: String| PlannerError::SourceStore {
            source_name: name.to_owned(),
            message,
        };
        let Some(SourceOptions::Athena(options)) = self.catalog.sources().get(name) else {
            return Err(error("is not an athena source".to_owned()));
        };
        let source = Arc::new(AthenaSource::new(options, self.io.clone()).map_err(error)?);
        self.athena.insert(name.to_owned(), Arc::clone(&source));
        Ok(source)
    }

    /// The workgroup `tenant`'s queries on Athena source `name` run in.
    fn workgroup(&self, name: &str, tenant: &Tenant) -> String {
        match (
            &tenant.profile.athena_workgroup,
            self.catalog.sources().get(name),
        ) {
            (Some(workgroup), _) => workgroup.clone(),
            (None, Some(SourceOptions::Athena(options))) => options.workgroup.clone(),
            (None, _) => String::new(),
        }
    }

    /// The replicas of postgres source `name`.
    fn replicas(&mut self, name: &str) -> Result<Arc<ReplicaSet>, PlannerError> {
        if let Some(set) = self.sets.get(name) {
            return Ok(Arc::clone(set));
        }
        let error = |message: String| PlannerError::SourceStore {
            source_name: name.to_owned(),
            message,
        };
        let Some(SourceOptions::Postgres {
            replicas,
            max_connections,
            connect_timeout,
            tls,
        }) = self.catalog.sources().get(name)
        else {
            return Err(error("is not a postgres source".to_owned()));
        };
        let set = Arc::new(
            ReplicaSet::new(
                name,
                replicas,
                *max_connections,
                connect_timeout.duration(),
                tls.as_ref(),
                self.io.clone(),
            )
            .map_err(error)?,
        );
        self.sets.insert(name.to_owned(), Arc::clone(&set));
        Ok(set)
    }
}

/// The file schema a dataset declares: its columns with their SQL types as Arrow types.
async fn declared_schema(
    context: &SessionContext,
    dataset: &DatasetId,
    columns: &[Column],
) -> Result<Schema, PlannerError> {
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        fields.push(Field::new(
            &column.name,
            sql_type(context, dataset, column).await?,
            true,
        ));
    }
    Ok(Schema::new(fields))
}

/// The Arrow type DataFusion gives the SQL type of `column` (`bigint`, `decimal(15,2)`, …),
/// found by planning a cast to it.
async fn sql_type(
    context: &SessionContext,
    dataset: &DatasetId,
    column: &Column,
) -> Result<DataType, PlannerError> {
    let invalid = |message: String| PlannerError::Source {
        dataset: dataset.to_string(),
        message: format!(
            "column `{}` has type `{}`: {message}",
            column.name, column.data_type
        ),
    };
    let mut parser = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&column.data_type)
        .map_err(|e| invalid(e.to_string()))?;
    let parsed = parser
        .parse_data_type()
        .map_err(|e| invalid(e.to_string()))?;
    if parser.next_token().token != Token::EOF {
        return Err(invalid("not a single SQL type".to_owned()));
    }
    let plan = context
        .state()
        .create_logical_plan(&format!("SELECT CAST(NULL AS {parsed})"))
        .await
        .map_err(|e| invalid(e.to_string()))?;
    // Results use plain strings and binaries: some clients (Spark 3.5) cannot read views.
    Ok(match plan.schema().field(0).data_type() {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    })
}
