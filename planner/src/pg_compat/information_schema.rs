//! A scoped `information_schema`: the tenant's granted datasets and nothing else.
//!
//! Datasets are listed as base tables or views, as the provider declares them; no view
//! definitions are shown, since a grant's definition holds its row filter. The keys and
//! views are in [`crate::pg_compat::information_schema_keys`].
//!
//! DataFusion's own `information_schema` is turned off in tenant sessions because it also
//! lists engine settings (`df_settings`); this one is built once per tenant from its views.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::datasource::{MemTable, ViewTable, provider_as_source};
use datafusion::error::Result;
use datafusion::logical_expr::LogicalPlanBuilder;
use tollgate_catalog::DatasetKind;

/// Schemas every tenant's catalog holds besides its datasets' domains.
pub const SYSTEM_SCHEMAS: [&str; 3] = ["information_schema", "pg_catalog", "tollgate"];

/// One granted view as the scoped catalogs describe it.
pub(crate) struct ViewDescription<'a> {
    pub catalog: &'a str,
    pub schema: &'a str,
    pub table: &'a str,
    pub columns: SchemaRef,
    pub kind: DatasetKind,
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

/// `pg_attribute.atttypmod` for a column of `data_type`: `numeric(p, s)` for decimals, else
/// -1 (none). Row descriptions and the tenant's `pg_attribute` both give it.
pub fn type_modifier(data_type: &DataType) -> i32 {
    use DataType as D;
    // PostgreSQL packs numeric(p, s) as ((p << 16) | (s & 0x7ff)) + 4; the mask keeps the
    // negative scales PostgreSQL 15 allows.
    let numeric =
        |precision: u8, scale: i8| ((i32::from(precision) << 16) | (i32::from(scale) & 0x7ff)) + 4;
    match data_type {
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) | D::Decimal256(p, s) => {
            numeric(*p, *s)
        }
        D::UInt64 => numeric(20, 0),
        D::List(item) | D::LargeList(item) => type_modifier(item.data_type()),
        D::Dictionary(_, value) => type_modifier(value),
        _ => -1,
    }
}

/// The `pg_type.typname` of the type a column of `data_type` is sent as (`udt_name`).
fn udt_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "bool".to_owned(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "int2".to_owned(),
        DataType::Int32 | DataType::UInt16 => "int4".to_owned(),
        DataType::Int64 | DataType::UInt32 => "int8".to_owned(),
        DataType::Float16 | DataType::Float32 => "float4".to_owned(),
        DataType::Float64 => "float8".to_owned(),
        DataType::UInt64 | DataType::Decimal128(..) | DataType::Decimal256(..) => {
            "numeric".to_owned()
        }
        DataType::Date32 | DataType::Date64 => "date".to_owned(),
        DataType::Timestamp(_, None) => "timestamp".to_owned(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".to_owned(),
        DataType::Interval(_) => "interval".to_owned(),
        DataType::Dictionary(_, value) => udt_name(value),
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::FixedSizeList(field, _) => format!("_{}", udt_name(field.data_type())),
        other => match pg_type_name(other).as_str() {
            "bytea" => "bytea".to_owned(),
            _ => "text".to_owned(),
        },
    }
}

/// A column's numeric precision, its radix and scale, and its datetime precision, as
/// PostgreSQL's `information_schema.columns` gives them.
#[derive(Default)]
struct Precision {
    numeric: Option<i32>,
    radix: Option<i32>,
    scale: Option<i32>,
    datetime: Option<i32>,
}

impl Precision {
    fn of(data_type: &DataType) -> Self {
        let binary = |bits: i32, scale: Option<i32>| Self {
            numeric: Some(bits),
            radix: Some(2),
            scale,
            datetime: None,
        };
        let datetime = |digits: i32| Self {
            datetime: Some(digits),
            ..Self::default()
        };
        match data_type {
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => binary(16, Some(0)),
            DataType::Int32 | DataType::UInt16 => binary(32, Some(0)),
            DataType::Int64 | DataType::UInt32 => binary(64, Some(0)),
            DataType::Float16 | DataType::Float32 => binary(24, None),
            DataType::Float64 => binary(53, None),
            DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => Self {
                numeric: Some(i32::from(*p)),
                radix: Some(10),
                scale: Some(i32::from(*s)),
                datetime: None,
            },
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(TimeUnit::Second, _) => {
                datetime(0)
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => datetime(3),
            DataType::Timestamp(_, _) => datetime(6),
            DataType::Dictionary(_, value) => Self::of(value),
            _ => Self::default(),
        }
    }
}

/// Builds the `information_schema` schema for these views.
pub(crate) fn build(
    catalog: &str,
    schemas: &[&str],
    views: &[ViewDescription<'_>],
) -> Result<Arc<dyn SchemaProvider>> {
    let provider = MemorySchemaProvider::new();
    provider.register_table("schemata".to_owned(), as_view(schemata(catalog, schemas)?)?)?;
    provider.register_table("tables".to_owned(), as_view(tables(views)?)?)?;
    provider.register_table("columns".to_owned(), as_view(columns(views)?)?)?;
    Ok(Arc::new(provider))
}

/// `table` served as a view, as PostgreSQL's `information_schema` relations are: `pg_class`
/// lists them with `relkind` `v`, so clients listing tables (SQLAlchemy's
/// `get_table_names`, psql's `\dt`) leave them out.
pub(crate) fn as_view(table: Arc<MemTable>) -> Result<Arc<dyn TableProvider>> {
    let plan =
        LogicalPlanBuilder::scan("information_schema", provider_as_source(table), None)?.build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

pub(crate) fn text_column(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

/// The same text on each of `rows` rows (NULL for `None`).
pub(crate) fn constant_column(rows: usize, value: Option<&str>) -> ArrayRef {
    text_column(vec![value.map(str::to_owned); rows])
}

pub(crate) fn table(fields: &[&str], columns: Vec<ArrayRef>) -> Result<Arc<MemTable>> {
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
    let rows = views.len();
    table(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "table_type",
            "self_referencing_column_name",
            "reference_generation",
            "user_defined_type_catalog",
            "user_defined_type_schema",
            "user_defined_type_name",
            "is_insertable_into",
            "is_typed",
            "commit_action",
        ],
        vec![
            text_column(views.iter().map(|v| Some(v.catalog.to_owned())).collect()),
            text_column(views.iter().map(|v| Some(v.schema.to_owned())).collect()),
            text_column(views.iter().map(|v| Some(v.table.to_owned())).collect()),
            text_column(
                views
                    .iter()
                    .map(|v| Some(table_type(v.kind).to_owned()))
                    .collect(),
            ),
            constant_column(rows, None),
            constant_column(rows, None),
            constant_column(rows, None),
            constant_column(rows, None),
            constant_column(rows, None),
            constant_column(rows, Some("NO")),
            constant_column(rows, Some("NO")),
            constant_column(rows, None),
        ],
    )
}

/// `tables.table_type` of a dataset of `kind`.
fn table_type(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Table => "BASE TABLE",
        DatasetKind::View => "VIEW",
    }
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
    let count = rows.len();
    let ordinal: Int32Array = rows
        .iter()
        .map(|(_, i, _)| i32::try_from(*i + 1).ok())
        .collect();
    let precisions: Vec<Precision> = rows
        .iter()
        .map(|(_, _, f)| Precision::of(f.data_type()))
        .collect();
    let integers = |pick: fn(&Precision) -> Option<i32>| {
        Arc::new(precisions.iter().map(pick).collect::<Int32Array>()) as ArrayRef
    };
    let texts = |value: fn(&ViewDescription<'_>, usize, &Field) -> Option<String>| {
        text_column(rows.iter().map(|(v, i, f)| value(v, *i, f)).collect())
    };
    table(
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "column_default",
            "is_nullable",
            "data_type",
            "character_maximum_length",
            "character_octet_length",
            "numeric_precision",
            "numeric_precision_radix",
            "numeric_scale",
            "datetime_precision",
            "interval_type",
            "character_set_catalog",
            "character_set_schema",
            "character_set_name",
            "collation_catalog",
            "collation_schema",
            "collation_name",
            "domain_catalog",
            "domain_schema",
            "domain_name",
            "udt_catalog",
            "udt_schema",
            "udt_name",
            "dtd_identifier",
            "is_self_referencing",
            "is_identity",
            "identity_generation",
            "is_generated",
            "generation_expression",
            "is_updatable",
        ],
        vec![
            texts(|v, _, _| Some(v.catalog.to_owned())),
            texts(|v, _, _| Some(v.schema.to_owned())),
            texts(|v, _, _| Some(v.table.to_owned())),
            texts(|_, _, f| Some(f.name().clone())),
            Arc::new(ordinal),
            constant_column(count, None),
            texts(|_, _, f| Some(if f.is_nullable() { "YES" } else { "NO" }.to_owned())),
            texts(|_, _, f| Some(pg_type_name(f.data_type()))),
            Arc::new(Int32Array::new_null(count)),
            Arc::new(Int32Array::new_null(count)),
            integers(|p| p.numeric),
            integers(|p| p.radix),
            integers(|p| p.scale),
            integers(|p| p.datetime),
            constant_column(count, None),
            constant_column(count, None),
            constant_column(count, None),
            constant_column(count, None),
            constant_column(count, None),
            constant_column(count, None),
            constant_column(count, None),
            constant_column(count, None),
            constant_column(count, None),
            constant_column(count, None),
            texts(|v, _, _| Some(v.catalog.to_owned())),
            constant_column(count, Some("pg_catalog")),
            texts(|_, _, f| Some(udt_name(f.data_type()))),
            texts(|_, i, _| Some((i + 1).to_string())),
            constant_column(count, Some("NO")),
            constant_column(count, Some("NO")),
            constant_column(count, None),
            constant_column(count, Some("NEVER")),
            constant_column(count, None),
            constant_column(count, Some("NO")),
        ],
    )
}
