//! A scoped `information_schema`: the tenant's granted datasets and nothing else.
//!
//! Datasets are listed as base tables (see [`crate::granted_view`]); no view definitions
//! are shown, since a grant's definition holds its row filter.
//!
//! DataFusion's own `information_schema` is turned off in tenant sessions because it also
//! lists engine settings (`df_settings`); this one is built once per tenant from its views.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;

/// Schemas every tenant's catalog holds besides its datasets' domains.
pub const SYSTEM_SCHEMAS: [&str; 3] = ["information_schema", "pg_catalog", "tollgate"];

/// One granted view as the scoped catalogs describe it.
pub(crate) struct ViewDescription<'a> {
    pub catalog: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
    pub columns: SchemaRef,
}

/// The PostgreSQL name of the type a column of `data_type` is sent as.
pub fn pg_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".to_owned(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".to_owned(),
        DataType::Int32 | DataType::UInt16 => "integer".to_owned(),
        DataType::Int64 | DataType::UInt32 => "bigint".to_owned(),
        DataType::UInt64 => "numeric".to_owned(),
        DataType::Float16 | DataType::Float32 => "real".to_owned(),
        DataType::Float64 => "double precision".to_owned(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".to_owned(),
        DataType::Dictionary(_, value) => pg_type_name(value),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "bytea".to_owned(),
        DataType::Date32 | DataType::Date64 => "date".to_owned(),
        DataType::Timestamp(
            TimeUnit::Second | TimeUnit::Millisecond | TimeUnit::Microsecond | TimeUnit::Nanosecond,
            None,
        ) => "timestamp without time zone".to_owned(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".to_owned(),
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::FixedSizeList(field, _) => {
            format!("{}[]", pg_type_name(field.data_type()))
        }
        DataType::Null => "text".to_owned(),
        other => other.to_string(),
    }
}

/// Builds the `information_schema` schema for these views.
pub(crate) fn build(
    catalog: &str,
    schemas: &[&str],
    views: &[ViewDescription<'_>],
) -> Result<Arc<dyn SchemaProvider>> {
    let provider = MemorySchemaProvider::new();
    provider.register_table("schemata".to_owned(), schemata(catalog, schemas)?)?;
    provider.register_table("tables".to_owned(), tables(views)?)?;
    provider.register_table("columns".to_owned(), columns(views)?)?;
    Ok(Arc::new(provider))
}

fn text_column(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn table(fields: &[&str], columns: Vec<ArrayRef>) -> Result<Arc<MemTable>> {
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .zip(&columns)
            .map(|(name, column)| Field::new(*name, column.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

fn schemata(catalog: &str, schemas: &[&str]) -> Result<Arc<MemTable>> {
    let all: Vec<&str> = schemas.iter().copied().chain(SYSTEM_SCHEMAS).collect();
    table(
        &["catalog_name", "schema_name", "schema_owner"],
        vec![
            text_column(all.iter().map(|_| Some(catalog.to_owned())).collect()),
            text_column(all.iter().map(|s| Some((*s).to_owned())).collect()),
            text_column(all.iter().map(|_| Some("tollgate".to_owned())).collect()),
        ],
    )
}

fn tables(views: &[ViewDescription<'_>]) -> Result<Arc<MemTable>> {
    table(
        &["table_catalog", "table_schema", "table_name", "table_type"],
        vec![
            text_column(views.iter().map(|v| Some(v.catalog.to_owned())).collect()),
            text_column(views.iter().map(|v| Some(v.schema.to_owned())).collect()),
            text_column(views.iter().map(|v| Some(v.table.to_owned())).collect()),
            text_column(
                views
                    .iter()
                    .map(|_| Some("BASE TABLE".to_owned()))
                    .collect(),
            ),
        ],
    )
}

fn columns(views: &[ViewDescription<'_>]) -> Result<Arc<MemTable>> {
    let rows: Vec<(&ViewDescription<'_>, usize, &Field)> = views
        .iter()
        .flat_map(|v| {
            v.columns
                .fields()
                .iter()
                .enumerate()
                .map(move |(i, f)| (v, i, f.as_ref()))
        })
        .collect();
    let ordinal: Int32Array = rows
        .iter()
        .map(|(_, i, _)| i32::try_from(*i + 1).ok())
        .collect();
    table(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "is_nullable",
            "data_type",
        ],
        vec![
            text_column(
                rows.iter()
                    .map(|(v, _, _)| Some(v.catalog.to_owned()))
                    .collect(),
            ),
            text_column(
                rows.iter()
                    .map(|(v, _, _)| Some(v.schema.to_owned()))
                    .collect(),
            ),
            text_column(
                rows.iter()
                    .map(|(v, _, _)| Some(v.table.to_owned()))
                    .collect(),
            ),
            text_column(
                rows.iter()
                    .map(|(_, _, f)| Some(f.name().clone()))
                    .collect(),
            ),
            Arc::new(ordinal),
            text_column(
                rows.iter()
                    .map(|(_, _, f)| Some(if f.is_nullable() { "YES" } else { "NO" }.to_owned()))
                    .collect(),
            ),
            text_column(
                rows.iter()
                    .map(|(_, _, f)| Some(pg_type_name(f.data_type())))
                    .collect(),
            ),
        ],
    )
}
