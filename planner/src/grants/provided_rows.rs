//! A granted view read from some of its dataset's files only: what a push channel sends
//! when new files land. The tenant's query is planned as usual, then the grant under it
//! is given a source table that lists just those files; columns, expressions and row
//! filters stay the grant's own.
//!
//! ```text
//! SELECT * FROM tpch.orders         (the channel's session)
//!   └─ GrantedView(tpch.orders)  ─▶ GrantedView(tpch.orders) over
//!        └─ TableScan tpch.orders      Filter(partition = value) ─ TableScan [one file]
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::datasource::listing::{ListingTable, ListingTableConfig};
use datafusion::datasource::{TableProvider, provider_as_source, source_as_provider};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableScan, col, lit};
use datafusion::prelude::cast;
use tollgate_catalog::DatasetId;

use crate::error::PlannerError;
use crate::grants::granted_view::GrantedViewProvider;

/// Hive's name for a partition whose value is null.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One dataset read from some of its files: their paths in the store, as
/// [`crate::QueryService::source_files`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSubset {
    /// The dataset.
    pub dataset: DatasetId,
    /// The files' paths (`tpch/orders/part-0.parquet`).
    pub files: Vec<String>,
}

/// `plan` with every granted view of `subset.dataset` reading only `subset.files`.
///
/// # Errors
/// [`PlannerError::Source`] when the plan reads no such view, or the dataset is not a
/// dataset of Parquet files.
pub(crate) fn restrict(
    plan: LogicalPlan,
    subset: &FileSubset,
) -> Result<LogicalPlan, PlannerError> {
    let dataset = subset.dataset.to_string();
    let mut not_files = false;
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
        let Some(inner) = restrict_source(view.plan().clone(), subset)? else {
            not_files = true;
            return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
        };
        let view = GrantedViewProvider::new(dataset.clone(), inner);
        Ok(Transformed::yes(LogicalPlan::TableScan(TableScan {
            source: provider_as_source(Arc::new(view)),
            ..scan
        })))
    })?;
    if not_files {
        return Err(source_error(subset, "it is not a dataset of Parquet files"));
    }
    if !restricted.transformed {
        return Err(source_error(subset, "the query does not read it"));
    }
    Ok(restricted.data)
}

fn source_error(subset: &FileSubset, message: &str) -> PlannerError {
    PlannerError::Source {
        dataset: subset.dataset.to_string(),
        message: message.to_owned(),
    }
}

/// The grant's plan with the dataset's listing table replaced by one over the files;
/// `None` if the grant reads no listing table of the dataset.
fn restrict_source(
    grant: LogicalPlan,
    subset: &FileSubset,
) -> datafusion::common::Result<Option<LogicalPlan>> {
    let mut found = false;
    let restricted = grant
        .transform_up(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            let is_dataset = scan.table_name.schema() == Some(subset.dataset.domain())
                && scan.table_name.table() == subset.dataset.name();
            let provider = source_as_provider(&scan.source)?;
            let Some(table) = provider.downcast_ref::<ListingTable>() else {
                return Ok(Transformed::no(node));
            };
            if !is_dataset {
                return Ok(Transformed::no(node));
            }
            found = true;
            let mut subsets = Vec::new();
            for file in &subset.files {
                subsets.push(file_scan(scan, table, file)?);
            }
            let mut files = subsets.into_iter();
            let mut builder = match files.next() {
                Some(first) => LogicalPlanBuilder::from(first),
                None => LogicalPlanBuilder::from(node.clone()).limit(0, Some(0))?,
            };
            for next in files {
                builder = builder.union(next)?;
            }
            Ok(Transformed::yes(builder.build()?))
        })?
        .data;
    Ok(found.then_some(restricted))
}

/// `scan`'s table read from `file` alone, its partition columns fixed to the values the
/// file's directories name.
fn file_scan(
    scan: &TableScan,
    table: &ListingTable,
    file: &str,
) -> datafusion::common::Result<LogicalPlan> {
    let Some(base) = table.table_paths().first() else {
        return datafusion::common::plan_err!("the dataset has no location");
    };
    let prefix = base.prefix().as_ref();
    let relative = file
        .strip_prefix(prefix)
        .map_or(file, |rest| rest.trim_start_matches('/'));
    let options = table.options().clone();
    let partition_columns = options.table_partition_cols.clone();
    let mut filters: Vec<Expr> = Vec::new();
    let mut name_segments: Vec<&str> = Vec::new();
    for segment in relative.split('/') {
        match segment.split_once('=') {
            Some((column, value)) => {
                if let Some((name, data_type)) =
                    partition_columns.iter().find(|(name, _)| name == column)
                {
                    filters.push(if value == NULL_PARTITION {
                        col(name.as_str()).is_null()
                    } else {
                        col(name.as_str()).eq(cast(lit(value.to_owned()), data_type.clone()))
                    });
                }
            }
            None => name_segments.push(segment),
        }
    }
    // The listing matches its glob against the path without `name=value` directories.
    let url = base
        .clone()
        .with_glob(&glob_escape(&name_segments.join("/")))?;
    let full = table.schema();
    let file_schema = Schema::new(
        full.fields()
            .iter()
            .filter(|field| {
                !partition_columns
                    .iter()
                    .any(|(name, _)| name == field.name())
            })
            .cloned()
            .collect::<Vec<_>>(),
    );
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(Arc::new(file_schema));
    let subset = ListingTable::try_new(config)?;
    let mut builder = LogicalPlanBuilder::scan(
        scan.table_name.clone(),
        provider_as_source(Arc::new(subset)),
        None,
    )?;
    for filter in filters {
        builder = builder.filter(filter)?;
    }
    builder.build()
}

/// `text` as a glob pattern that matches exactly it.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '?' | '*' | '[' | ']' => {
                escaped.push('[');
                escaped.push(c);
                escaped.push(']');
            }
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_escape_matches_only_the_text() {
        assert_eq!(glob_escape("part-0.parquet"), "part-0.parquet");
        assert_eq!(glob_escape("a*b?[c].parquet"), "a[*]b[?][[]c[]].parquet");
    }
}
