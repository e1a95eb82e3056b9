//! The providers' side: every dataset's source table, in a private session no tenant can name.
//!
//! Grants are planned here, as `SELECT <granted columns> FROM <dataset> WHERE <row filter>`,
//! and the resulting plans become the tenants' views. Row filters may refer to other datasets
//! (e.g. a customer filter that looks up the tenant's region through `tpch.nation`).
//!
//! The tables follow the catalog served: [`SourceTables::sync`] opens datasets registered
//! since, reopens changed ones and drops removed ones; unchanged tables are kept.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{
    MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::file_format::options::{ParquetReadOptions, ReadOptions};
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::SessionState;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use tollgate_catalog::{Catalog, Dataset, DatasetId, DatasetLocation, Grant, Narrowing, Tenant};

use crate::error::PlannerError;
use crate::sources::athena::AthenaTable;
use crate::sources::dataset_stats::{DatasetStats, StatsCache};
use crate::sources::key_columns::with_keys;
use crate::sources::postgres_table::PostgresTable;
use crate::sources::pushdown::quote;
use crate::sources::source_clients::{SourceClients, declared_schema, sql_type};

pub(crate) const SOURCE_CATALOG: &str = "source";

/// How long a dataset's size and freshness are kept.
const STATS_TTL: Duration = Duration::from_secs(60);

/// Every dataset of the catalog, registered under its id in a private session.
pub(crate) struct SourceTables {
    context: SessionContext,
    /// What is registered; one sync at a time.
    opened: tokio::sync::Mutex<Opened>,
    clients: tokio::sync::Mutex<SourceClients>,
    stats: StatsCache,
    /// Datasets (`id`, or `id@source` on a dedicated source) that could not be opened.
    unavailable: RwLock<BTreeMap<String, String>>,
    /// Datasets on Athena, whose grants read a table of the tenant's own (its workgroup).
    athena: RwLock<HashSet<DatasetId>>,
}

/// What opening a dataset on its own source gave.
enum Opening {
    /// Its table.
    Table(Arc<dyn TableProvider>),
    /// Its source could not be read; why.
    Unreadable(String),
    /// It has a table per tenant (Athena: each tenant's workgroup).
    PerTenant,
}

/// The tables registered, and what each was opened from.
struct Opened {
    datasets: HashMap<DatasetId, Arc<Dataset>>,
    /// Tables of grants routed to a dedicated source: (source, dataset).
    routed: HashSet<(String, DatasetId)>,
    /// Tenants' Athena tables: (tenant, dataset) → the workgroup they run in.
    tenant_tables: HashMap<(String, DatasetId), String>,
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
    /// A dataset whose source cannot be read and that declares no columns is left out (and
    /// logged), so the other datasets are served; see [`Self::is_unavailable`].
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
        let tables = Self {
            context: SessionContext::new_with_config_rt(config, runtime),
            opened: tokio::sync::Mutex::new(Opened {
                datasets: HashMap::new(),
                routed: HashSet::new(),
                tenant_tables: HashMap::new(),
            }),
            clients: tokio::sync::Mutex::new(SourceClients::new(catalog)?),
            stats: StatsCache::new(STATS_TTL),
            unavailable: RwLock::new(BTreeMap::new()),
            athena: RwLock::new(HashSet::new()),
        };
        tables.sync(catalog).await?;
        Ok(tables)
    }

    /// Brings the tables in line with `catalog`: new datasets opened, changed ones reopened,
    /// removed ones dropped, and the tables of grants routed to dedicated sources and of
    /// tenants' Athena workgroups made for new grants. Sources are those of the first
    /// catalog.
    ///
    /// # Errors
    /// [`PlannerError::Source`] for a declared column type that is not a SQL type.
    pub async fn sync(&self, catalog: &Catalog) -> Result<(), PlannerError> {
        let mut opened = self.opened.lock().await;
        let wanted: HashMap<&DatasetId, &Arc<Dataset>> =
            catalog.datasets().map(|d| (&d.id, d)).collect();
        let stale: Vec<DatasetId> = opened
            .datasets
            .iter()
            .filter(|(id, before)| {
                wanted
                    .get(id)
                    .is_none_or(|now| now.as_ref() != before.as_ref())
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.drop_dataset(&mut opened, &id);
            self.stats.forget(&id).await;
        }
        for dataset in catalog.datasets() {
            if !opened.datasets.contains_key(&dataset.id) {
                self.open_dataset(&mut opened, dataset).await?;
            }
        }
        for tenant in catalog.tenants() {
            for grant in catalog.grants(&tenant.id) {
                let Some(dataset) = catalog.dataset(&grant.dataset) else {
                    continue;
                };
                match (&grant.source, &dataset.location) {
                    (Some(source), DatasetLocation::Postgres { .. }) => {
                        self.open_routed(&mut opened, source, dataset).await?;
                    }
                    (None, DatasetLocation::Athena { .. }) => {
                        self.open_tenant_table(&mut opened, tenant, dataset).await?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Deregisters dataset `id` everywhere it is registered.
    fn drop_dataset(&self, opened: &mut Opened, id: &DatasetId) {
        opened.datasets.remove(id);
        let deregister = |catalog: &str| {
            if let Some(schema) = self
                .context
                .catalog(catalog)
                .and_then(|root| root.schema(id.domain()))
            {
                let _ = schema.deregister_table(id.name());
            }
        };
        deregister(SOURCE_CATALOG);
        opened.routed.retain(|(source, routed)| {
            let keep = routed != id;
            if !keep {
                deregister(&routed_catalog(source));
            }
            keep
        });
        opened.tenant_tables.retain(|(tenant, table), _| {
            let keep = table != id;
            if !keep {
                deregister(&tenant_catalog(tenant));
            }
            keep
        });
        let mut unavailable = self
            .unavailable
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let key = id.to_string();
        let on_source = format!("{key}@");
        unavailable.retain(|name, _| *name != key && !name.starts_with(&on_source));
        self.athena
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    fn mark_unavailable(&self, key: String, error: String) {
        self.unavailable
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, error);
    }

    /// Registers `dataset` on its own source.
    async fn open_dataset(
        &self,
        opened: &mut Opened,
        dataset: &Arc<Dataset>,
    ) -> Result<(), PlannerError> {
        let id = &dataset.id;
        opened.datasets.insert(id.clone(), Arc::clone(dataset));
        match self.table_of(dataset).await? {
            Opening::Table(table) => {
                schema_of(&self.context, SOURCE_CATALOG, id.domain())?
                    .register_table(id.name().to_owned(), table)?;
            }
            Opening::Unreadable(error) => {
                tracing::error!(dataset = %id, %error, "cannot open the dataset's source; it is not served");
                self.mark_unavailable(id.to_string(), error);
            }
            Opening::PerTenant => {
                self.athena
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id.clone());
            }
        }
        Ok(())
    }

    /// The table of `dataset` on its own source: Parquet files (schema declared or inferred
    /// from the files), or a replica table.
    async fn table_of(&self, dataset: &Dataset) -> Result<Opening, PlannerError> {
        let id = &dataset.id;
        let declared = match &dataset.columns {
            Some(columns) => Some(declared_schema(&self.context, id, columns).await?),
            None => None,
        };
        match &dataset.location {
            DatasetLocation::Parquet {
                url,
                partition_columns,
                ..
            } => {
                let mut partitions = Vec::new();
                for column in partition_columns {
                    partitions.push((
                        column.name.clone(),
                        sql_type(&self.context, id, column).await?,
                    ));
                }
                let state = self.context.state();
                let options = ParquetReadOptions::default()
                    .table_partition_cols(partitions)
                    .to_listing_options(state.config(), state.default_table_options());
                let opened = async {
                    let path = ListingTableUrl::parse(url)?;
                    let schema = match declared {
                        Some(schema) => Arc::new(schema),
                        None => with_keys(dataset, options.infer_schema(&state, &path).await?)?,
                    };
                    let config = ListingTableConfig::new(path)
                        .with_listing_options(options)
                        .with_schema(schema);
                    ListingTable::try_new(config)
                }
                .await;
                Ok(match opened {
                    Ok(table) => Opening::Table(Arc::new(table)),
                    Err(error) => Opening::Unreadable(error.to_string()),
                })
            }
            DatasetLocation::Postgres {
                source,
                schema,
                table,
            } => {
                let replicas = self.clients.lock().await.replicas(source)?;
                Ok(
                    match PostgresTable::open(&id.to_string(), schema, table, declared, replicas)
                        .await
                    {
                        Ok(table) => Opening::Table(Arc::new(table)),
                        Err(error) => Opening::Unreadable(error),
                    },
                )
            }
            DatasetLocation::Athena { .. } => Ok(Opening::PerTenant),
        }
    }

    /// The columns `dataset` would have, read from its source (its files, its replica
    /// table) without serving it; an Athena dataset's are the declared ones.
    ///
    /// # Errors
    /// [`PlannerError::Source`] if the source cannot be read, or a declared type is not
    /// a SQL type.
    pub async fn probe(&self, dataset: &Dataset) -> Result<SchemaRef, PlannerError> {
        let unreadable = |message: String| PlannerError::Source {
            dataset: dataset.id.to_string(),
            message,
        };
        match self.table_of(dataset).await? {
            Opening::Table(table) => Ok(table.schema()),
            Opening::Unreadable(error) => Err(unreadable(error)),
            Opening::PerTenant => match &dataset.columns {
                Some(columns) => Ok(Arc::new(
                    declared_schema(&self.context, &dataset.id, columns).await?,
                )),
                None => Err(unreadable(
                    "an Athena dataset declares its columns".to_owned(),
                )),
            },
        }
    }

    /// Registers postgres `dataset` on the dedicated source `source`, once.
    async fn open_routed(
        &self,
        opened: &mut Opened,
        source: &str,
        dataset: &Dataset,
    ) -> Result<(), PlannerError> {
        let DatasetLocation::Postgres { schema, table, .. } = &dataset.location else {
            return Ok(());
        };
        let id = &dataset.id;
        if !opened.routed.insert((source.to_owned(), id.clone())) {
            return Ok(());
        }
        let domain = schema_of(&self.context, &routed_catalog(source), id.domain())?;
        let declared = match &dataset.columns {
            Some(columns) => Some(declared_schema(&self.context, id, columns).await?),
            None => None,
        };
        let replicas = self.clients.lock().await.replicas(source)?;
        match PostgresTable::open(&id.to_string(), schema, table, declared, replicas).await {
            Ok(table) => {
                domain.register_table(id.name().to_owned(), Arc::new(table))?;
            }
            Err(error) => {
                tracing::error!(dataset = %id, source = %source, %error, "cannot describe the dataset's table on a dedicated source; grants routed there are not served");
                self.mark_unavailable(format!("{id}@{source}"), error);
            }
        }
        Ok(())
    }

    /// Registers Athena `dataset` in `tenant`'s catalog, run in its workgroup; again when
    /// the workgroup changed.
    async fn open_tenant_table(
        &self,
        opened: &mut Opened,
        tenant: &Tenant,
        dataset: &Dataset,
    ) -> Result<(), PlannerError> {
        let (DatasetLocation::Athena { source, table }, Some(columns)) =
            (&dataset.location, &dataset.columns)
        else {
            return Ok(());
        };
        let mut clients = self.clients.lock().await;
        let workgroup = clients.workgroup(source, tenant);
        let key = (tenant.id.clone(), dataset.id.clone());
        if opened.tenant_tables.get(&key) == Some(&workgroup) {
            return Ok(());
        }
        let schema: Schema = declared_schema(&self.context, &dataset.id, columns).await?;
        let athena = AthenaTable::new(
            &dataset.id.to_string(),
            table,
            schema,
            clients.athena(source)?,
            workgroup.clone(),
        );
        let domain = schema_of(
            &self.context,
            &tenant_catalog(&tenant.id),
            dataset.id.domain(),
        )?;
        let _ = domain.deregister_table(dataset.id.name());
        domain.register_table(dataset.id.name().to_owned(), Arc::new(athena))?;
        opened.tenant_tables.insert(key, workgroup);
        Ok(())
    }

    /// The size and freshness of `dataset`, kept for a minute; `None` if its source does
    /// not answer.
    pub async fn stats(&self, dataset: &Dataset) -> Option<DatasetStats> {
        self.stats
            .get(dataset, &self.context.state(), &self.clients)
            .await
    }

    /// The private session's state, whose object stores list the datasets' files.
    pub fn listing_state(&self) -> SessionState {
        self.context.state()
    }

    /// Whether `grant`'s dataset could not be opened, on its own source or the grant's
    /// dedicated one (and so is not served).
    pub fn is_unavailable(&self, grant: &Grant) -> bool {
        let key = match &grant.source {
            Some(source) => format!("{}@{source}", grant.dataset),
            None => grant.dataset.to_string(),
        };
        self.unavailable
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&key)
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
            None if self
                .athena
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&grant.dataset) =>
            {
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
