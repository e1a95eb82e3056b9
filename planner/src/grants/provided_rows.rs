//! A granted view reading rows it is given instead of its dataset's source table: what a
//! push channel sends when new rows land (a slice read once for every channel, see
//! `sources::shared_rows`). The tenant's query is planned as usual, then the grant under
//! it reads the given table; columns, expressions and row filters stay the grant's own.
//!
//! ```text
//! SELECT * FROM tpch.orders         (the channel's session)
//!   └─ GrantedView(tpch.orders)  ─▶ GrantedView(tpch.orders) over
//!        └─ TableScan tpch.orders      TableScan [the given rows] (same columns)
//! ```

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::{TableProvider, provider_as_source, source_as_provider};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, TableScan, TableScanBuilder};
use tollgate_catalog::DatasetId;

use crate::error::PlannerError;
use crate::grants::granted_view::GrantedViewProvider;

/// Rows of one dataset, in its source table's schema, that its grants read instead.
#[derive(Debug, Clone)]
pub struct ProvidedRows {
    /// The dataset.
    pub dataset: DatasetId,
    /// The rows.
    pub table: Arc<dyn TableProvider>,
}

/// `plan` with every granted view of `provided.dataset` reading `provided.table`.
///
/// # Errors
/// [`PlannerError::Source`] when the plan reads no such view.
pub(crate) fn restrict(
    plan: LogicalPlan,
    provided: &ProvidedRows,
) -> Result<LogicalPlan, PlannerError> {
    let dataset = provided.dataset.to_string();
    let restricted = plan.transform_up(|node| {
        let LogicalPlan::TableScan(scan) = node else {
            return Ok(Transformed::no(node));
        };
        let provider = source_as_provider(&scan.source)?;
        let Some(view) = provider.downcast_ref::<GrantedViewProvider>() else {
            return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
        };
        if view.dataset() != dataset {
            return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
        }
        let inner = view.plan().clone().transform_up(|node| {
            let LogicalPlan::TableScan(source) = &node else {
                return Ok(Transformed::no(node));
            };
            let is_dataset = source.table_name.schema() == Some(provided.dataset.domain())
                && source.table_name.table() == provided.dataset.name();
            if !is_dataset {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(given_rows(source, &provided.table)?))
        })?;
        let view = GrantedViewProvider::new(dataset.clone(), inner.data);
        Ok(Transformed::yes(LogicalPlan::TableScan(TableScan {
            source: provider_as_source(Arc::new(view)),
            ..scan
        })))
    })?;
    if !restricted.transformed {
        return Err(PlannerError::Source {
            dataset,
            message: "the query does not read it".to_owned(),
        });
    }
    Ok(restricted.data)
}

/// `source` reading `table` instead: the same columns, and the filters and limit the
/// source table would have applied itself applied above it.
fn given_rows(
    source: &TableScan,
    table: &Arc<dyn TableProvider>,
) -> datafusion::common::Result<LogicalPlan> {
    let scan = TableScanBuilder::new(
        source.table_name.clone(),
        provider_as_source(Arc::clone(table)),
    )
    .with_projection(source.projection.clone())
    .build()?;
    let mut builder = LogicalPlanBuilder::from(LogicalPlan::TableScan(scan));
    if let Some(filter) = conjunction(source.filters.iter().cloned()) {
        builder = builder.filter(filter)?;
    }
    if let Some(fetch) = source.fetch {
        builder = builder.limit(0, Some(fetch))?;
    }
    builder.build()
}
