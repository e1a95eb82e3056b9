//! The providers' side: every dataset's source table, in a private session no tenant can name.
//!
//! Grants are planned here, as `SELECT <granted columns> FROM <dataset> WHERE <row filter>`,
//! and the resulting plans become the tenants' views. Row filters may refer to other datasets
//! (e.g. a customer filter that looks up the tenant's region through `tpch.nation`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::file_format::options::ParquetReadOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use tollgate_catalog::{Catalog, DatasetLocation, Grant, Tenant};

use crate::error::PlannerError;

const SOURCE_CATALOG: &str = "source";

/// Every dataset of the catalog, registered under its id in a private session.
pub(crate) struct SourceTables {
    context: SessionContext,
}

impl SourceTables {
    /// Opens every dataset's source and infers its schema.
    pub async fn open(catalog: &Catalog) -> Result<Self, PlannerError> {
        let config = SessionConfig::new().with_default_catalog_and_schema(SOURCE_CATALOG, "public");
        let context = SessionContext::new_with_config(config);
        let root = context
            .catalog(SOURCE_CATALOG)
            .ok_or_else(|| PlannerError::Source {
                dataset: String::new(),
                message: "the source catalog is missing".to_owned(),
            })?;
        for dataset in catalog.datasets() {
            let id = &dataset.id;
            if root.schema(id.domain()).is_none() {
                root.register_schema(id.domain(), Arc::new(MemorySchemaProvider::new()))?;
            }
            let DatasetLocation::LocalParquet { path } = &dataset.location;
            let mut location = path.to_string_lossy().into_owned();
            if path.is_dir() && !location.ends_with('/') {
                location.push('/');
            }
            let table = format!("{SOURCE_CATALOG}.{}.{}", id.domain(), id.name());
            context
                .register_parquet(table.as_str(), &location, ParquetReadOptions::default())
                .await
                .map_err(|e| PlannerError::Source {
                    dataset: id.to_string(),
                    message: format!("cannot open its Parquet files: {e}"),
                })?;
        }
        Ok(Self { context })
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
        let sql = format!(
            "SELECT {columns} FROM {}.{}{filter}",
            quote(grant.dataset.domain()),
            quote(grant.dataset.name())
        );
        let plan = self.context.state().create_logical_plan(&sql).await?;
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

/// Double-quotes an identifier.
pub(crate) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
