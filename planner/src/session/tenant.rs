//! A tenant's session: a DataFusion session whose catalog holds exactly its granted views.
//!
//! ```text
//! catalog "tollgate"
//!   ├── <domain>            one schema per domain the tenant was granted, e.g. tpch
//!   │     └── <name>        GrantedViewProvider per grant, e.g. tpch.orders
//!   ├── public              empty: the default schema clients expect
//!   ├── tollgate            the tenant's own queries and usage (`system`, `usage`)
//!   ├── information_schema  scoped: lists only the views above
//!   └── pg_catalog          datafusion-pg-catalog, built from this same catalog
//! ```
//!
//! Nothing else is registered: base tables live in a private session (`sources`), other
//! tenants' views in their own sessions, and DataFusion's `information_schema` (which lists
//! engine settings) is off. Name resolution is therefore the policy: a dataset that is not
//! granted does not exist (42P01), exactly like a dataset that does not exist at all.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_pg_catalog::setup_pg_catalog;
use tollgate_catalog::{Catalog, DatasetId, DatasetKind, ForeignKey, Grant, Tenant};

use crate::error::PlannerError;
use crate::grants::granted_view::GrantedViewProvider;
use crate::grants::sql_pushdown::SqlPushdown;
use crate::metering::UsageLedger;
use crate::pg_compat::dataset_keys::{KeyedView, ShownKeys};
use crate::pg_compat::functions::{key_definitions, pg_functions};
use crate::pg_compat::information_schema::{self, ViewDescription};
use crate::pg_compat::information_schema_keys;
use crate::pg_compat::pg_catalog_overlay::{DatasetDescription, PgCatalogOverlay, TypeModifier};
use crate::resources::cooperative::YieldingJoins;
use crate::resources::pool::TenantPool;
use crate::resources::value_size;
use crate::session::roles::TenantRoles;
use crate::session::search_path::Relations;
use crate::session::system;
use crate::session::usage;
use crate::sources::replica_keys::replica_keys;
use crate::sources::tables::SourceTables;

/// One tenant's scoped session.
pub struct TenantSession {
    tenant: Arc<Tenant>,
    context: SessionContext,
    pool: Arc<TenantPool>,
    database: String,
    schemas: Vec<String>,
    tables: Vec<TenantTable>,
    /// Its `pg_class` relations, for `pg_table_is_visible`.
    relations: Arc<Relations>,
    /// The keys of its datasets it sees.
    keys: ShownKeys,
}

/// The keys of dataset `schema.table`: as the catalog declares them, else (for a table of
/// a `postgres` source) as its replica's own catalog does.
async fn declared_keys(
    catalog: &Catalog,
    sources: &SourceTables,
    schema: &str,
    table: &str,
) -> (Vec<String>, Vec<ForeignKey>) {
    let Some(dataset) = DatasetId::parse(&format!("{schema}.{table}"))
        .ok()
        .and_then(|id| catalog.dataset(&id))
    else {
        return (Vec::new(), Vec::new());
    };
    if !dataset.primary_key.is_empty() || !dataset.foreign_keys.is_empty() {
        return (dataset.primary_key.clone(), dataset.foreign_keys.clone());
    }
    replica_keys(sources, catalog, dataset)
        .await
        .unwrap_or_default()
}

/// A granted dataset as the tenant's catalogs list it: `schema.table` and its columns.
#[derive(Debug, Clone)]
pub struct TenantTable {
    /// The dataset's domain, e.g. `tpch`.
    pub schema: String,
    /// The dataset's name, e.g. `orders`.
    pub table: String,
    /// The granted columns.
    pub columns: SchemaRef,
    /// A table or a view, as the provider declares the dataset.
    pub kind: DatasetKind,
}

impl std::fmt::Debug for TenantSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantSession")
            .field("tenant", &self.tenant.id)
            .finish_non_exhaustive()
    }
}

impl TenantSession {
    /// Builds a session of `tenant` with a view per grant: the tenant's own grants, or a
    /// channel's narrowed ones.
    ///
    /// # Errors
    /// [`PlannerError::Grant`] if a grant does not plan.
    pub(crate) async fn build(
        catalog: &Catalog,
        tenant: Arc<Tenant>,
        grants: &[Grant],
        sources: &SourceTables,
        stores: &Arc<dyn ObjectStoreRegistry>,
        pool: Arc<TenantPool>,
        ledger: &Arc<dyn UsageLedger>,
    ) -> Result<Self, PlannerError> {
        let database = catalog.database();
        let profile = &tenant.profile;
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(database, "public")
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false)
            .with_target_partitions(profile.parallelism);
        config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        // `184658.94` is numeric, as in PostgreSQL: read as a double, it compared unequal
        // with the numeric value it names (`price = 184658.94` found no row).
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        let memory_limit = usize::try_from(profile.memory_limit.bytes()).unwrap_or(usize::MAX);
        let disk = if profile.spill {
            let directory = catalog
                .engine()
                .spill_directory
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("tollgate-spill"))
                .join(&tenant.id);
            std::fs::create_dir_all(&directory).map_err(|e| PlannerError::Source {
                dataset: format!("spill directory of tenant {}", tenant.id),
                message: format!("cannot create {}: {e}", directory.display()),
            })?;
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![directory]))
                .with_max_temp_directory_size(profile.spill_quota.bytes())
        } else {
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled)
        };
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
            .with_disk_manager_builder(disk)
            .with_object_store_registry(Arc::clone(stores))
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()?;

        let root = Arc::new(MemoryCatalogProvider::new());
        root.register_schema("public", Arc::new(MemorySchemaProvider::new()))?;
        let mut tables = Vec::with_capacity(grants.len());
        let mut descriptions = Vec::new();
        let mut modifiers = Vec::new();
        for grant in grants {
            if sources.is_unavailable(grant) {
                continue;
            }
            let plan = sources.plan_grant(&tenant, grant).await?;
            let kind = catalog
                .dataset(&grant.dataset)
                .map(|dataset| dataset.kind)
                .unwrap_or_default();
            let view =
                Arc::new(GrantedViewProvider::new(grant.dataset.to_string(), plan).listed_as(kind));
            let domain = grant.dataset.domain();
            let schema = match root.schema(domain) {
                Some(schema) => schema,
                None => {
                    let schema: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
                    root.register_schema(domain, Arc::clone(&schema))?;
                    schema
                }
            };
            if let Some(dataset) = catalog.dataset(&grant.dataset) {
                descriptions.extend(DatasetDescription::of(
                    domain,
                    grant.dataset.name(),
                    &dataset.description,
                    &dataset.column_descriptions,
                    &view.schema(),
                ));
            }
            modifiers.extend(TypeModifier::of(
                domain,
                grant.dataset.name(),
                &view.schema(),
            ));
            tables.push(TenantTable {
                schema: domain.to_owned(),
                table: grant.dataset.name().to_owned(),
                columns: view.schema(),
                kind,
            });
            schema.register_table(grant.dataset.name().to_owned(), view)?;
        }
        let views: Vec<ViewDescription<'_>> = tables
            .iter()
            .map(|table| ViewDescription {
                catalog: database,
                schema: &table.schema,
                table: &table.table,
                columns: Arc::clone(&table.columns),
                kind: table.kind,
            })
            .collect();
        let mut keyed: Vec<KeyedView<'_>> = Vec::with_capacity(tables.len());
        for table in &tables {
            let (primary_key, foreign_keys) =
                declared_keys(catalog, sources, &table.schema, &table.table).await;
            keyed.push(KeyedView {
                schema: &table.schema,
                table: &table.table,
                columns: &table.columns,
                primary_key,
                foreign_keys,
            });
        }
        let keys = ShownKeys::of(&keyed);
        let mut domains = vec!["public"];
        for table in &tables {
            if !domains.contains(&table.schema.as_str()) {
                domains.push(&table.schema);
            }
        }
        let schemas: Vec<String> = domains.iter().map(|s| (*s).to_owned()).collect();
        let system_schema = system::schema(&pool)?;
        root.register_schema(system::SCHEMA, Arc::clone(&system_schema))?;
        let information = information_schema::build(database, &domains, &views)?;
        information_schema_keys::register(&information, database, &keys, &views)?;
        root.register_schema("information_schema", information)?;

        let catalogs = Arc::new(MemoryCatalogProviderList::new());
        catalogs.register_catalog(database.to_owned(), root);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_catalog_list(catalogs)
            .with_default_features()
            .with_optimizer_rule(Arc::new(SqlPushdown))
            .with_physical_optimizer_rule(Arc::new(YieldingJoins))
            .build();
        let context = SessionContext::new_with_state(state);
        let roles = catalog
            .principals_of(&tenant.id)
            .map(|principal| principal.user.clone())
            .collect();
        setup_pg_catalog(&context, database, TenantRoles::new(roles))
            .map_err(|e| PlannerError::Engine(*e))?;
        if let Some(catalog) = context.catalog(database)
            && let Some(pg_catalog) = catalog.schema("pg_catalog")
        {
            let overlay =
                PgCatalogOverlay::new(pg_catalog, &context, &descriptions, &modifiers, &keys)
                    .await?;
            catalog.register_schema("pg_catalog", Arc::new(overlay))?;
        }
        for function in pg_functions::all()
            .into_iter()
            .chain(key_definitions::all(&keys))
        {
            context.register_udf(function);
        }
        context.register_udf(system::cancel_udf(&pool));
        for function in value_size::bounded_functions(&context.state(), &pool) {
            context.register_udf(function);
        }
        usage::register(&context, &system_schema, ledger, &tenant.id).await?;
        let relations = Arc::new(Relations::load(&context).await?);
        Ok(Self {
            tenant,
            context,
            relations,
            pool,
            database: database.to_owned(),
            schemas,
            tables,
            keys,
        })
    }

    /// The tenant's resource pool, shared by all its sessions.
    pub fn pool(&self) -> &Arc<TenantPool> {
        &self.pool
    }

    /// The catalog (database) name clients see.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The schemas holding the tenant's datasets, `public` first.
    pub fn schemas(&self) -> &[String] {
        &self.schemas
    }

    /// The relations of the session's `pg_class`.
    pub(crate) fn relations(&self) -> &Arc<Relations> {
        &self.relations
    }

    /// The tenant's granted datasets, in grant order.
    pub fn tables(&self) -> &[TenantTable] {
        &self.tables
    }

    /// The primary and foreign keys of its datasets that the tenant sees.
    pub fn keys(&self) -> &ShownKeys {
        &self.keys
    }

    /// The tenant this session belongs to.
    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    /// A snapshot of the session's state to plan one query with.
    pub(crate) fn state(&self) -> datafusion::execution::SessionState {
        self.context.state()
    }
}
