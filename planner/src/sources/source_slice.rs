//! A slice of a dataset's rows as its source holds them, every column and no grant applied:
//! some of its Parquet files, all of it, or the rows of a replica table between two values
//! of its watermark column. A push channel's new rows are such a slice, read once for all
//! the channels that take it (`shared_rows`).
//!
//! ```text
//! Files [f1, f2]   ─▶ Union(Filter(partition = value) ─ TableScan [f1], … [f2])
//! Whole            ─▶ TableScan
//! Range (a, b]     ─▶ Sort(w, then every column) ─ Filter(w > a AND w <= b) ─ TableScan
//!                      (the filter pushed down to the replica; the order makes a re-read
//!                       give the same messages)
//! ```

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::TableReference;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig};
use datafusion::datasource::{TableProvider, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col, lit};
use datafusion::prelude::{cast, ident};

/// Hive's name for a partition whose value is null.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Which rows of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slice {
    /// Those of some of its files: their paths in the store, as
    /// [`crate::QueryService::source_files`] lists them.
    Files(Vec<String>),
    /// All of them.
    Whole,
    /// Those whose `column` is above `after` (any, when `None`) and at most `up_to`;
    /// values as text, read as the column's type.
    Range {
        /// The watermark column.
        column: String,
        /// The lower bound, excluded.
        after: Option<String>,
        /// The upper bound, included.
        up_to: String,
    },
}

impl Slice {
    /// The plan reading this slice of `table`, the dataset's source table named `name`.
    ///
    /// # Errors
    /// A message when the slice does not fit the table: files of a table that is not a
    /// Parquet listing, a range over a column it lacks.
    pub(crate) fn plan(
        &self,
        name: &TableReference,
        table: Arc<dyn TableProvider>,
    ) -> Result<LogicalPlan, String> {
        let engine = |e: datafusion::error::DataFusionError| e.to_string();
        match self {
            Self::Whole => LogicalPlanBuilder::scan(name.clone(), provider_as_source(table), None)
                .and_then(LogicalPlanBuilder::build)
                .map_err(engine),
            Self::Files(files) => {
                let Some(listing) = table.downcast_ref::<ListingTable>() else {
                    return Err("it is not a dataset of Parquet files".to_owned());
                };
                let mut scans = Vec::with_capacity(files.len());
                for file in files {
                    scans.push(file_scan(name, listing, file).map_err(engine)?);
                }
                let mut scans = scans.into_iter();
                let mut builder = match scans.next() {
                    Some(first) => LogicalPlanBuilder::from(first),
                    None => LogicalPlanBuilder::scan(name.clone(), provider_as_source(table), None)
                        .and_then(|scan| scan.limit(0, Some(0)))
                        .map_err(engine)?,
                };
                for next in scans {
                    builder = builder.union(next).map_err(engine)?;
                }
                builder.build().map_err(engine)
            }
            Self::Range {
                column,
                after,
                up_to,
            } => {
                let schema = table.schema();
                let Ok(field) = schema.field_with_name(column) else {
                    return Err(format!("it has no column `{column}`"));
                };
                let bound = |value: &str| cast(lit(value.to_owned()), field.data_type().clone());
                let mut filter = ident(column).lt_eq(bound(up_to));
                if let Some(after) = after {
                    filter = ident(column).gt(bound(after)).and(filter);
                }
                // In one order, so that reading the same slice again (after a crash) gives
                // the same messages: by the watermark, ties by every other column.
                let order = std::iter::once(column.as_str())
                    .chain(
                        schema
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .filter(|name| name != column),
                    )
                    .map(|name| ident(name).sort(true, false))
                    .collect::<Vec<_>>();
                LogicalPlanBuilder::scan(name.clone(), provider_as_source(table), None)
                    .and_then(|scan| scan.filter(filter))
                    .and_then(|filtered| filtered.sort(order))
                    .and_then(LogicalPlanBuilder::build)
                    .map_err(engine)
            }
        }
    }
}

/// `table` (named `name`) read from `file` alone, its partition columns fixed to the
/// values the file's directories name.
fn file_scan(
    name: &TableReference,
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
    let mut builder =
        LogicalPlanBuilder::scan(name.clone(), provider_as_source(Arc::new(subset)), None)?;
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
