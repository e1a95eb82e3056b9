//! The keys a tenant's catalogs show: the primary keys and foreign keys the provider declared
//! for its datasets, numbered by the columns of the tenant's views.
//!
//! A primary key is shown when the tenant's view has all its columns; a foreign key when the
//! tenant sees both datasets and every column of both ends. Each key is named and numbered
//! as PostgreSQL would (`orders_pkey`, an index of the same name, `orders_o_custkey_fkey`),
//! with oids from [`FIRST_KEY_OID`] up, above any the tenant's relations are given.

use std::collections::HashMap;

use datafusion::arrow::datatypes::SchemaRef;
use tollgate_catalog::ForeignKey as DeclaredForeignKey;

use crate::pg_compat::functions::format_function::quote_identifier;

/// The first oid of the keys' indexes and constraints; relations are numbered from 16384.
pub(crate) const FIRST_KEY_OID: i32 = 1_000_000_000;

/// A granted view as the key finder needs it.
pub(crate) struct KeyedView<'a> {
    /// The dataset's domain (its schema).
    pub schema: &'a str,
    /// The dataset's name (its table).
    pub table: &'a str,
    /// The view's columns.
    pub columns: &'a SchemaRef,
    /// The dataset's primary key, as declared (or as its replica declares it).
    pub primary_key: Vec<String>,
    /// The dataset's foreign keys, likewise.
    pub foreign_keys: Vec<DeclaredForeignKey>,
}

/// Columns of one relation, by name and by number in the tenant's view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumns {
    /// The relation's schema.
    pub schema: String,
    /// The relation's name.
    pub table: String,
    /// The columns' names, in key order.
    pub names: Vec<String>,
    /// Their `attnum`s in the view.
    pub numbers: Vec<i16>,
}

impl KeyColumns {
    fn of(view: &KeyedView<'_>, names: &[String]) -> Option<Self> {
        let numbers = names
            .iter()
            .map(|name| {
                let (index, _) = view.columns.fields().find(name)?;
                i16::try_from(index + 1).ok()
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            schema: view.schema.to_owned(),
            table: view.table.to_owned(),
            names: names.to_vec(),
            numbers,
        })
    }

    fn qualified_table(&self) -> String {
        format!(
            "{}.{}",
            quote_identifier(&self.schema),
            quote_identifier(&self.table)
        )
    }

    fn column_list(&self) -> String {
        self.names
            .iter()
            .map(|name| quote_identifier(name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A primary key the tenant sees, with the unique index PostgreSQL would keep for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryKey {
    /// The key's columns.
    pub columns: KeyColumns,
    /// The constraint's and its index's name, `<table>_pkey`.
    pub name: String,
    /// The index's oid (`pg_class`, `pg_index.indexrelid`).
    pub index_oid: i32,
    /// The constraint's oid (`pg_constraint`).
    pub constraint_oid: i32,
}

/// A foreign key the tenant sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referencing columns.
    pub columns: KeyColumns,
    /// The referenced primary key's columns, in the order of `columns`.
    pub referenced: KeyColumns,
    /// The referenced primary key.
    pub key: PrimaryKey,
    /// The constraint's name, `<table>_<columns>_fkey`.
    pub name: String,
    /// The constraint's oid.
    pub constraint_oid: i32,
}

/// Every key one tenant's catalogs show.
#[derive(Debug, Clone, Default)]
pub struct ShownKeys {
    /// Primary keys, in grant order.
    pub primary: Vec<PrimaryKey>,
    /// Foreign keys, in grant order.
    pub foreign: Vec<ForeignKey>,
}

impl ShownKeys {
    /// The keys of `views` that the tenant sees whole.
    pub(crate) fn of(views: &[KeyedView<'_>]) -> Self {
        let mut next_oid = FIRST_KEY_OID;
        let mut primary = Vec::new();
        for view in views {
            if view.primary_key.is_empty() {
                continue;
            }
            let Some(columns) = KeyColumns::of(view, &view.primary_key) else {
                continue;
            };
            primary.push(PrimaryKey {
                name: format!("{}_pkey", view.table),
                columns,
                index_oid: next_oid,
                constraint_oid: next_oid + 1,
            });
            next_oid += 2;
        }
        let mut foreign = Vec::new();
        for view in views {
            for declared in &view.foreign_keys {
                let target = (declared.references.domain(), declared.references.name());
                let Some(key) = primary.iter().find(|key| {
                    (key.columns.schema.as_str(), key.columns.table.as_str()) == target
                }) else {
                    continue;
                };
                let Some(referenced_view) = views.iter().find(|v| (v.schema, v.table) == target)
                else {
                    continue;
                };
                let (Some(columns), Some(referenced)) = (
                    KeyColumns::of(view, &declared.columns),
                    KeyColumns::of(referenced_view, &declared.referenced_columns),
                ) else {
                    continue;
                };
                // A key to other columns than the primary key (a replica's key to a unique
                // constraint) has no index here to reference.
                let mut wanted = referenced.names.clone();
                let mut indexed = key.columns.names.clone();
                wanted.sort();
                indexed.sort();
                if wanted != indexed || columns.names.len() != referenced.names.len() {
                    continue;
                }
                foreign.push(ForeignKey {
                    name: format!("{}_{}_fkey", view.table, declared.columns.join("_")),
                    columns,
                    referenced,
                    key: key.clone(),
                    constraint_oid: next_oid,
                });
                next_oid += 1;
            }
        }
        Self { primary, foreign }
    }

    /// `pg_get_constraintdef` of each constraint, by oid: `PRIMARY KEY (…)`,
    /// `FOREIGN KEY (…) REFERENCES schema.table(…)`.
    pub(crate) fn constraint_definitions(&self) -> HashMap<i64, String> {
        let primary = self.primary.iter().map(|key| {
            (
                i64::from(key.constraint_oid),
                format!("PRIMARY KEY ({})", key.columns.column_list()),
            )
        });
        let foreign = self.foreign.iter().map(|key| {
            (
                i64::from(key.constraint_oid),
                format!(
                    "FOREIGN KEY ({}) REFERENCES {}({})",
                    key.columns.column_list(),
                    key.referenced.qualified_table(),
                    key.referenced.column_list()
                ),
            )
        });
        primary.chain(foreign).collect()
    }

    /// `pg_get_indexdef` of each index, by oid: the whole definition, and the name of each
    /// of its columns (numbered from 1).
    pub(crate) fn index_definitions(&self) -> HashMap<i64, (String, Vec<String>)> {
        self.primary
            .iter()
            .map(|key| {
                let definition = format!(
                    "CREATE UNIQUE INDEX {} ON {} USING btree ({})",
                    quote_identifier(&key.name),
                    key.columns.qualified_table(),
                    key.columns.column_list()
                );
                let columns = key
                    .columns
                    .names
                    .iter()
                    .map(|name| quote_identifier(name))
                    .collect();
                (i64::from(key.index_oid), (definition, columns))
            })
            .collect()
    }
}
