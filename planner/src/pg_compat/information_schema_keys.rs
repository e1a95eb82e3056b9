//! The scoped `information_schema`'s constraint and view relations: the keys the tenant sees
//! ([`ShownKeys`]) and its datasets declared as views, with PostgreSQL's columns.
//!
//! `views` lists no definition (PostgreSQL shows it only to the view's owner, and a grant's
//! definition holds its row filter).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array};
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use tollgate_catalog::DatasetKind;

use crate::pg_compat::dataset_keys::{KeyColumns, ShownKeys};
use crate::pg_compat::information_schema::{
    ViewDescription, as_view, constant_column, table, text_column,
};

/// Registers `table_constraints`, `key_column_usage`, `referential_constraints`,
/// `constraint_column_usage` and `views` in `schema`.
pub(crate) fn register(
    schema: &Arc<dyn SchemaProvider>,
    catalog: &str,
    keys: &ShownKeys,
    views: &[ViewDescription<'_>],
) -> Result<()> {
    let constraints = Constraints::of(keys);
    let tables = [
        (
            "table_constraints",
            table_constraints(catalog, &constraints),
        ),
        ("key_column_usage", key_column_usage(catalog, &constraints)),
        (
            "referential_constraints",
            referential_constraints(catalog, keys),
        ),
        (
            "constraint_column_usage",
            constraint_column_usage(catalog, &constraints),
        ),
        ("views", views_of(views)),
    ];
    for (name, built) in tables {
        schema.register_table(name.to_owned(), as_view(built?)?)?;
    }
    Ok(())
}

/// One constraint as these relations list it.
struct Constraint<'a> {
    name: &'a str,
    kind: &'static str,
    columns: &'a KeyColumns,
    /// The columns a foreign key references.
    referenced: Option<&'a KeyColumns>,
}

struct Constraints<'a>(Vec<Constraint<'a>>);

impl<'a> Constraints<'a> {
    fn of(keys: &'a ShownKeys) -> Self {
        let primary = keys.primary.iter().map(|key| Constraint {
            name: &key.name,
            kind: "PRIMARY KEY",
            columns: &key.columns,
            referenced: None,
        });
        let foreign = keys.foreign.iter().map(|key| Constraint {
            name: &key.name,
            kind: "FOREIGN KEY",
            columns: &key.columns,
            referenced: Some(&key.referenced),
        });
        Self(primary.chain(foreign).collect())
    }

    fn texts(&self, value: impl Fn(&Constraint<'a>) -> Option<String>) -> ArrayRef {
        text_column(self.0.iter().map(value).collect())
    }
}

fn table_constraints(catalog: &str, constraints: &Constraints<'_>) -> Result<Arc<MemTable>> {
    let rows = constraints.0.len();
    table(
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "constraint_type",
            "is_deferrable",
            "initially_deferred",
            "enforced",
            "nulls_distinct",
        ],
        vec![
            constant_column(rows, Some(catalog)),
            constraints.texts(|c| Some(c.columns.schema.clone())),
            constraints.texts(|c| Some(c.name.to_owned())),
            constant_column(rows, Some(catalog)),
            constraints.texts(|c| Some(c.columns.schema.clone())),
            constraints.texts(|c| Some(c.columns.table.clone())),
            constraints.texts(|c| Some(c.kind.to_owned())),
            constant_column(rows, Some("NO")),
            constant_column(rows, Some("NO")),
            constant_column(rows, Some("YES")),
            constant_column(rows, None),
        ],
    )
}

/// A row per column of each constraint, with its position in the key and, for a foreign
/// key, the position of the column it references in the referenced key.
fn key_column_usage(catalog: &str, constraints: &Constraints<'_>) -> Result<Arc<MemTable>> {
    let rows: Vec<(&Constraint<'_>, usize)> = constraints
        .0
        .iter()
        .flat_map(|c| (0..c.columns.names.len()).map(move |i| (c, i)))
        .collect();
    let texts = |value: fn(&Constraint<'_>, usize) -> String| {
        text_column(rows.iter().map(|(c, i)| Some(value(c, *i))).collect())
    };
    let position = |i: usize| i32::try_from(i + 1).ok();
    table(
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "position_in_unique_constraint",
        ],
        vec![
            constant_column(rows.len(), Some(catalog)),
            texts(|c, _| c.columns.schema.clone()),
            texts(|c, _| c.name.to_owned()),
            constant_column(rows.len(), Some(catalog)),
            texts(|c, _| c.columns.schema.clone()),
            texts(|c, _| c.columns.table.clone()),
            texts(|c, i| c.columns.names[i].clone()),
            Arc::new(
                rows.iter()
                    .map(|(_, i)| position(*i))
                    .collect::<Int32Array>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|(c, i)| c.referenced.and_then(|_| position(*i)))
                    .collect::<Int32Array>(),
            ),
        ],
    )
}

fn referential_constraints(catalog: &str, keys: &ShownKeys) -> Result<Arc<MemTable>> {
    let rows = keys.foreign.len();
    let texts = |value: fn(&crate::pg_compat::dataset_keys::ForeignKey) -> String| {
        text_column(keys.foreign.iter().map(|k| Some(value(k))).collect())
    };
    table(
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "unique_constraint_catalog",
            "unique_constraint_schema",
            "unique_constraint_name",
            "match_option",
            "update_rule",
            "delete_rule",
        ],
        vec![
            constant_column(rows, Some(catalog)),
            texts(|k| k.columns.schema.clone()),
            texts(|k| k.name.clone()),
            constant_column(rows, Some(catalog)),
            texts(|k| k.referenced.schema.clone()),
            texts(|k| k.key.name.clone()),
            constant_column(rows, Some("NONE")),
            constant_column(rows, Some("NO ACTION")),
            constant_column(rows, Some("NO ACTION")),
        ],
    )
}

/// The columns each constraint uses: a primary key's own, a foreign key's referenced ones
/// (as PostgreSQL lists them).
fn constraint_column_usage(catalog: &str, constraints: &Constraints<'_>) -> Result<Arc<MemTable>> {
    let rows: Vec<(&Constraint<'_>, &KeyColumns, usize)> = constraints
        .0
        .iter()
        .flat_map(|c| {
            let used = c.referenced.unwrap_or(c.columns);
            (0..used.names.len()).map(move |i| (c, used, i))
        })
        .collect();
    let texts = |value: fn(&Constraint<'_>, &KeyColumns, usize) -> String| {
        text_column(rows.iter().map(|(c, u, i)| Some(value(c, u, *i))).collect())
    };
    table(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
        ],
        vec![
            constant_column(rows.len(), Some(catalog)),
            texts(|_, u, _| u.schema.clone()),
            texts(|_, u, _| u.table.clone()),
            texts(|_, u, i| u.names[i].clone()),
            constant_column(rows.len(), Some(catalog)),
            texts(|c, _, _| c.columns.schema.clone()),
            texts(|c, _, _| c.name.to_owned()),
        ],
    )
}

/// The datasets declared as views, without their definitions.
fn views_of(views: &[ViewDescription<'_>]) -> Result<Arc<MemTable>> {
    let listed: Vec<&ViewDescription<'_>> = views
        .iter()
        .filter(|v| v.kind == DatasetKind::View)
        .collect();
    let rows = listed.len();
    let texts = |value: fn(&ViewDescription<'_>) -> String| {
        text_column(listed.iter().map(|v| Some(value(v))).collect())
    };
    table(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "view_definition",
            "check_option",
            "is_updatable",
            "is_insertable_into",
            "is_trigger_updatable",
            "is_trigger_deletable",
            "is_trigger_insertable_into",
        ],
        vec![
            texts(|v| v.catalog.to_owned()),
            texts(|v| v.schema.to_owned()),
            texts(|v| v.table.to_owned()),
            constant_column(rows, None),
            constant_column(rows, Some("NONE")),
            constant_column(rows, Some("NO")),
            constant_column(rows, Some("NO")),
            constant_column(rows, Some("NO")),
            constant_column(rows, Some("NO")),
            constant_column(rows, Some("NO")),
        ],
    )
}
