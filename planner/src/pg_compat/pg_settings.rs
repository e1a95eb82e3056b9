//! `pg_settings` with the server's fixed settings that drivers read, as PostgreSQL reports
//! them: pgJDBC reads `max_index_keys` for `getPrimaryKeys`, others the version, encoding
//! and identifier length. Settings a session can change (`TimeZone`, `search_path`, …) are
//! read with `SHOW` or `current_setting()`, which follow the session.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::error::Result;

use crate::pg_compat::functions::pg_functions::SERVER_VERSION;

/// name, setting, unit, category, vartype
type Row = (
    &'static str,
    String,
    Option<&'static str>,
    &'static str,
    &'static str,
);

/// The fixed settings, as PostgreSQL 16 has them.
fn rows() -> Vec<Row> {
    let mut version = SERVER_VERSION
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let version_num = version.next().unwrap_or(0) * 10_000 + version.next().unwrap_or(0);
    let preset = "Preset Options";
    vec![
        ("block_size", "8192".to_owned(), None, preset, "integer"),
        ("integer_datetimes", "on".to_owned(), None, preset, "bool"),
        ("lc_collate", "C".to_owned(), None, preset, "string"),
        ("lc_ctype", "C".to_owned(), None, preset, "string"),
        (
            "max_function_args",
            "100".to_owned(),
            None,
            preset,
            "integer",
        ),
        (
            "max_identifier_length",
            "63".to_owned(),
            None,
            preset,
            "integer",
        ),
        ("max_index_keys", "32".to_owned(), None, preset, "integer"),
        ("server_encoding", "UTF8".to_owned(), None, preset, "string"),
        (
            "server_version",
            SERVER_VERSION.to_owned(),
            None,
            preset,
            "string",
        ),
        (
            "server_version_num",
            version_num.to_string(),
            None,
            preset,
            "integer",
        ),
        (
            "standard_conforming_strings",
            "on".to_owned(),
            None,
            "Version and Platform Compatibility",
            "bool",
        ),
    ]
}

/// `pg_settings` of `schema` (the columns `datafusion-pg-catalog` declares) holding the
/// fixed settings; the columns not filled here are null.
///
/// # Errors
/// Arrow's, if the rows do not form a batch of `schema`.
pub(crate) fn settings(schema: SchemaRef) -> Result<MemTable> {
    let rows = rows();
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column: Vec<Option<String>> = match field.name().as_str() {
                "name" => rows.iter().map(|row| Some(row.0.to_owned())).collect(),
                "setting" | "reset_val" | "boot_val" => {
                    rows.iter().map(|row| Some(row.1.clone())).collect()
                }
                "unit" => rows.iter().map(|row| row.2.map(str::to_owned)).collect(),
                "category" => rows.iter().map(|row| Some(row.3.to_owned())).collect(),
                "context" => rows.iter().map(|_| Some("internal".to_owned())).collect(),
                "vartype" => rows.iter().map(|row| Some(row.4.to_owned())).collect(),
                "source" => rows.iter().map(|_| Some("default".to_owned())).collect(),
                _ => return new_null_array(field.data_type(), rows.len()),
            };
            if field.data_type() == &DataType::Utf8 {
                Arc::new(StringArray::from(column)) as ArrayRef
            } else {
                new_null_array(field.data_type(), rows.len())
            }
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    MemTable::try_new(schema, vec![vec![batch]])
}
