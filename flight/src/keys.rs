//! Flight SQL's key listings (`GetPrimaryKeys`, `GetImportedKeys`, `GetExportedKeys`,
//! `GetCrossReference`) from the keys the caller's session shows, the same ones its
//! `pg_constraint` and `information_schema` hold over pgwire.

use std::sync::Arc;

use arrow_flight::error::FlightError as WireError;
use tollgate_planner::TenantSession;
use tollgate_planner::datafusion::arrow::array::{ArrayRef, Int32Array, StringArray, UInt8Array};
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::dataset_keys::{ForeignKey, KeyColumns};

use crate::metadata::{foreign_keys_schema, primary_keys_schema};

/// The Flight SQL rule of a foreign key on update and delete: NO_ACTION, PostgreSQL's default.
const NO_ACTION: u8 = 3;

/// A table a command names: its catalog and schema when given, and its name.
pub struct TableFilter<'a> {
    /// The catalog asked for; `None` matches any.
    pub catalog: Option<&'a str>,
    /// The schema asked for; `None` matches any.
    pub db_schema: Option<&'a str>,
    /// The table's name.
    pub table: &'a str,
}

impl<'a> TableFilter<'a> {
    /// The table a command names by its optional catalog and schema and its name.
    pub fn new(catalog: Option<&'a str>, db_schema: Option<&'a str>, table: &'a str) -> Self {
        Self {
            catalog,
            db_schema,
            table,
        }
    }

    fn matches(&self, database: &str, columns: &KeyColumns) -> bool {
        self.catalog.is_none_or(|c| c == database)
            && self.db_schema.is_none_or(|s| s == columns.schema)
            && self.table == columns.table
    }
}

/// `GetPrimaryKeys` of the table `filter` names.
///
/// # Errors
/// If the batch does not build.
pub fn primary_keys(
    session: &TenantSession,
    filter: &TableFilter<'_>,
) -> Result<RecordBatch, WireError> {
    let database = session.database();
    let (mut schemas, mut tables, mut columns, mut names, mut sequences) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for key in &session.keys().primary {
        if !filter.matches(database, &key.columns) {
            continue;
        }
        for (sequence, column) in (1..).zip(&key.columns.names) {
            schemas.push(key.columns.schema.as_str());
            tables.push(key.columns.table.as_str());
            columns.push(column.as_str());
            names.push(key.name.as_str());
            sequences.push(sequence);
        }
    }
    let rows = schemas.len();
    Ok(RecordBatch::try_new(
        primary_keys_schema(),
        vec![
            Arc::new(StringArray::from(vec![database; rows])),
            Arc::new(StringArray::from(schemas)),
            Arc::new(StringArray::from(tables)),
            Arc::new(StringArray::from(columns)),
            Arc::new(StringArray::from(names)),
            Arc::new(Int32Array::from(sequences)),
        ],
    )?)
}

/// The foreign keys of the session for which `wanted` holds, a row per column pair.
///
/// # Errors
/// If the batch does not build.
pub fn foreign_keys(
    session: &TenantSession,
    wanted: impl Fn(&ForeignKey) -> bool,
) -> Result<RecordBatch, WireError> {
    let database = session.database();
    let mut rows: Vec<(&ForeignKey, usize)> = Vec::new();
    for key in session.keys().foreign.iter().filter(|key| wanted(key)) {
        rows.extend((0..key.columns.names.len()).map(|i| (key, i)));
    }
    let count = rows.len();
    let texts = |value: fn(&ForeignKey, usize) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|(key, i)| value(key, *i)),
        ))
    };
    let catalogs = || -> ArrayRef { Arc::new(StringArray::from(vec![database; count])) };
    Ok(RecordBatch::try_new(
        foreign_keys_schema(),
        vec![
            catalogs(),
            texts(|key, _| &key.referenced.schema),
            texts(|key, _| &key.referenced.table),
            texts(|key, i| &key.referenced.names[i]),
            catalogs(),
            texts(|key, _| &key.columns.schema),
            texts(|key, _| &key.columns.table),
            texts(|key, i| &key.columns.names[i]),
            Arc::new(Int32Array::from_iter_values(
                rows.iter()
                    .map(|(_, i)| i32::try_from(i + 1).unwrap_or(i32::MAX)),
            )),
            texts(|key, _| &key.name),
            texts(|key, _| &key.key.name),
            Arc::new(UInt8Array::from(vec![NO_ACTION; count])),
            Arc::new(UInt8Array::from(vec![NO_ACTION; count])),
        ],
    )?)
}

/// Whether `filter` names the referencing table of `key` (`GetImportedKeys`).
pub fn imported_by(filter: &TableFilter<'_>, database: &str, key: &ForeignKey) -> bool {
    filter.matches(database, &key.columns)
}

/// Whether `filter` names the referenced table of `key` (`GetExportedKeys`).
pub fn exported_by(filter: &TableFilter<'_>, database: &str, key: &ForeignKey) -> bool {
    filter.matches(database, &key.referenced)
}
