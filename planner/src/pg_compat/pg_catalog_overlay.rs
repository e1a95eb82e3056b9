//! `pg_catalog` tables whose vector and array columns have PostgreSQL's types,
//! `pg_class` with the columns it lacks, `pg_description` with the tenant's datasets'
//! descriptions, `pg_attribute` with the type modifiers of its columns (`numeric(15,2)`),
//! `pg_user` (the login roles of `pg_roles`) and `pg_settings` (the server's fixed settings);
//! the keys the tenant sees are added by [`crate::pg_compat::pg_catalog_keys`].
//!
//! `datafusion-pg-catalog` keeps `int2vector`, `oidvector` and `int2[]`/`oid[]` columns as
//! text (`'1 2'`, `'[1, 2]'`), so what clients do with them fails: SQLAlchemy's
//! `unnest(pg_index.indkey)`, pgJDBC's `conkey` arrays. The overlay serves those tables
//! with list columns, the rest of `pg_catalog` unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, ListBuilder, PrimitiveBuilder, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Int16Type, Int32Type, Schema, SchemaRef,
};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::{MemTable, ViewTable, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlanBuilder, cast, col, lit, when};
use datafusion::prelude::SessionContext;

use crate::pg_compat::dataset_keys::ShownKeys;
use crate::pg_compat::information_schema::type_modifier;
use crate::pg_compat::pg_catalog_keys;

/// The retyped columns: table, column, element type of the list it becomes.
const LIST_COLUMNS: &[(&str, &str, DataType)] = &[
    ("pg_index", "indkey", DataType::Int16),
    ("pg_index", "indcollation", DataType::Int32),
    ("pg_index", "indclass", DataType::Int32),
    ("pg_index", "indoption", DataType::Int16),
    ("pg_constraint", "conkey", DataType::Int16),
    ("pg_constraint", "confkey", DataType::Int16),
    ("pg_constraint", "conpfeqop", DataType::Int32),
    ("pg_constraint", "conppeqop", DataType::Int32),
    ("pg_constraint", "conffeqop", DataType::Int32),
    ("pg_constraint", "conexclop", DataType::Int32),
    ("pg_proc", "proargtypes", DataType::Int32),
    ("pg_proc", "proallargtypes", DataType::Int32),
];

/// `pg_catalog` tables that hold no row in any tenant's session: a tenant's datasets are
/// views, which have no column defaults, sequences, triggers, inheritance, row policies
/// or partitions. The overlay serves them empty, and catalog queries may rely on it
/// ([`crate::pg_compat::rewrite::catalog_subqueries`]).
pub(crate) const ALWAYS_EMPTY: &[&str] = &[
    "pg_attrdef",
    "pg_sequence",
    "pg_trigger",
    "pg_inherits",
    "pg_policy",
    "pg_partitioned_table",
];

/// `pg_catalog` with the tables of [`LIST_COLUMNS`] retyped and those of [`ALWAYS_EMPTY`]
/// empty.
#[derive(Debug)]
pub(crate) struct PgCatalogOverlay {
    inner: Arc<dyn SchemaProvider>,
    retyped: HashMap<String, Arc<dyn TableProvider>>,
}

impl PgCatalogOverlay {
    /// Reads the tables to retype from `inner` (in `context`) once, and converts them.
    ///
    /// # Errors
    /// Engine errors reading the tables, or a value that is not a list of integers.
    pub async fn new(
        inner: Arc<dyn SchemaProvider>,
        context: &SessionContext,
        descriptions: &[DatasetDescription],
        modifiers: &[TypeModifier],
        keys: &ShownKeys,
    ) -> Result<Self> {
        let mut retyped = HashMap::new();
        for table in ["pg_index", "pg_constraint", "pg_proc"] {
            let Some(provider) = inner.table(table).await? else {
                continue;
            };
            let batches = context.read_table(provider)?.collect().await?;
            let columns: HashMap<&str, &DataType> = LIST_COLUMNS
                .iter()
                .filter(|(owner, ..)| *owner == table)
                .map(|(_, column, element)| (*column, element))
                .collect();
            let converted = batches
                .iter()
                .map(|batch| with_lists(batch, &columns))
                .collect::<Result<Vec<_>>>()?;
            let Some(schema) = converted.first().map(RecordBatch::schema) else {
                continue;
            };
            let memory = MemTable::try_new(schema, vec![converted])?;
            retyped.insert(table.to_owned(), Arc::new(memory) as Arc<dyn TableProvider>);
        }
        for table in ALWAYS_EMPTY {
            if let Some(provider) = inner.table(table).await? {
                let empty = MemTable::try_new(provider.schema(), vec![Vec::new()])?;
                retyped.insert(
                    (*table).to_owned(),
                    Arc::new(empty) as Arc<dyn TableProvider>,
                );
            }
        }
        if let (Some(system), Some(pg_class), Some(pg_namespace)) = (
            inner.table("pg_description").await?,
            inner.table("pg_class").await?,
            inner.table("pg_namespace").await?,
        ) {
            let described =
                with_dataset_descriptions(system, pg_class, pg_namespace, descriptions)?;
            retyped.insert("pg_description".to_owned(), described);
        }
        if let Some(pg_class) = inner.table("pg_class").await? {
            retyped.insert(
                "pg_class".to_owned(),
                with_null_columns(pg_class, PG_CLASS_NULLS)?,
            );
        }
        if let (Some(pg_attribute), Some(pg_class), Some(pg_namespace)) = (
            inner.table("pg_attribute").await?,
            inner.table("pg_class").await?,
            inner.table("pg_namespace").await?,
        ) {
            retyped.insert(
                "pg_attribute".to_owned(),
                with_type_modifiers(pg_attribute, pg_class, pg_namespace, modifiers)?,
            );
        }
        if let Some(pg_roles) = inner.table("pg_roles").await? {
            retyped.insert("pg_user".to_owned(), users(pg_roles)?);
        }
        if let Some(pg_settings) = inner.table("pg_settings").await? {
            let fixed = crate::pg_compat::pg_settings::settings(pg_settings.schema())?;
            retyped.insert("pg_settings".to_owned(), Arc::new(fixed));
        }
        if let Some(pg_namespace) = inner.table("pg_namespace").await? {
            retyped.insert("pg_namespace".to_owned(), pg_namespace);
        }
        pg_catalog_keys::add_keys(&mut retyped, context, keys).await?;
        Ok(Self { inner, retyped })
    }
}

/// A description of a granted dataset or of one of its columns, as `obj_description`,
/// `col_description` and BI tools show it.
#[derive(Debug, Clone)]
pub(crate) struct DatasetDescription {
    /// The dataset's domain (its schema).
    pub schema: String,
    /// The dataset's name (its table).
    pub table: String,
    /// 0 for the dataset itself, else the column's number in the tenant's view.
    pub column: i32,
    /// The catalog's description of it.
    pub description: String,
}

impl DatasetDescription {
    /// The descriptions of a dataset granted as a view of `columns`: the dataset's, and those
    /// of its columns the view has (numbered as `pg_attribute` numbers them).
    pub(crate) fn of(
        schema: &str,
        table: &str,
        description: &str,
        column_descriptions: &BTreeMap<String, String>,
        columns: &SchemaRef,
    ) -> Vec<Self> {
        let entry = |column: i32, description: &str| Self {
            schema: schema.to_owned(),
            table: table.to_owned(),
            column,
            description: description.to_owned(),
        };
        let itself = (!description.is_empty()).then(|| entry(0, description));
        let described_columns = columns
            .fields()
            .iter()
            .enumerate()
            .filter_map(|(i, field)| {
                let text = column_descriptions.get(field.name())?;
                let number = i32::try_from(i + 1).ok()?;
                (!text.is_empty()).then(|| entry(number, text))
            });
        itself.into_iter().chain(described_columns).collect()
    }
}

/// `pg_description`: the system's rows and one per described dataset, on the oid
/// `pg_class` gives the dataset's table (found by schema and name when read).
fn with_dataset_descriptions(
    system: Arc<dyn TableProvider>,
    pg_class: Arc<dyn TableProvider>,
    pg_namespace: Arc<dyn TableProvider>,
    descriptions: &[DatasetDescription],
) -> Result<Arc<dyn TableProvider>> {
    let described = relation_rows(
        descriptions
            .iter()
            .map(|d| (d.schema.as_str(), d.table.as_str(), d.column)),
        "objsubid",
        (
            "description",
            Arc::new(StringArray::from_iter_values(
                descriptions.iter().map(|d| d.description.as_str()),
            )),
        ),
    )?;
    let qualified = |name: &str| Column::from_qualified_name(name);
    // The oid this `pg_class` gives itself: descriptions of relations name it as their
    // class (pgJDBC joins `pg_class dc ON dc.oid = d.classoid AND dc.relname = 'pg_class'`).
    let class_oid = LogicalPlanBuilder::scan("k", provider_as_source(Arc::clone(&pg_class)), None)?
        .join(
            LogicalPlanBuilder::scan("kn", provider_as_source(Arc::clone(&pg_namespace)), None)?
                .build()?,
            JoinType::Inner,
            (vec![qualified("k.relnamespace")], vec![qualified("kn.oid")]),
            None,
        )?
        .filter(
            col(qualified("k.relname"))
                .eq(lit("pg_class"))
                .and(col(qualified("kn.nspname")).eq(lit("pg_catalog"))),
        )?
        .project(vec![col(qualified("k.oid")).alias("class_oid")])?
        .build()?;
    let datasets = on_relations(
        LogicalPlanBuilder::scan("d", provider_as_source(Arc::new(described)), None)?,
        pg_class,
        pg_namespace,
    )?
    .cross_join(class_oid)?
    .project(vec![
        col(qualified("c.oid")).alias("objoid"),
        col("class_oid").alias("classoid"),
        col(qualified("d.objsubid")).alias("objsubid"),
        col(qualified("d.description")).alias("description"),
    ])?
    .build()?;
    let plan = LogicalPlanBuilder::scan("s", provider_as_source(system), None)?
        .union(datasets)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// A table of facts about columns of the tenant's relations: `nspname`, `relname`, the
/// column's number (named `number`, 0 for the relation itself) and `value`.
fn relation_rows<'a>(
    columns: impl Iterator<Item = (&'a str, &'a str, i32)>,
    number: &str,
    (value_name, values): (&str, ArrayRef),
) -> Result<MemTable> {
    let (mut schemas, mut tables, mut numbers) = (Vec::new(), Vec::new(), Vec::new());
    for (schema, table, column) in columns {
        schemas.push(schema);
        tables.push(table);
        numbers.push(column);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("nspname", DataType::Utf8, false),
        Field::new("relname", DataType::Utf8, false),
        Field::new(number, DataType::Int32, false),
        Field::new(value_name, values.data_type().clone(), false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(schemas)),
            Arc::new(StringArray::from(tables)),
            Arc::new(Int32Array::from(numbers)),
            values,
        ],
    )?;
    MemTable::try_new(schema, vec![vec![batch]])
}

/// `rows` (scanned as `d`, with `nspname` and `relname`) joined to the relation they name
/// in `pg_class` (as `c`, its schema as `n`).
fn on_relations(
    rows: LogicalPlanBuilder,
    pg_class: Arc<dyn TableProvider>,
    pg_namespace: Arc<dyn TableProvider>,
) -> Result<LogicalPlanBuilder> {
    let qualified = |name: &str| Column::from_qualified_name(name);
    rows.join(
        LogicalPlanBuilder::scan("c", provider_as_source(pg_class), None)?.build()?,
        JoinType::Inner,
        (vec![qualified("d.relname")], vec![qualified("c.relname")]),
        None,
    )?
    .join(
        LogicalPlanBuilder::scan("n", provider_as_source(pg_namespace), None)?.build()?,
        JoinType::Inner,
        (
            vec![qualified("c.relnamespace"), qualified("d.nspname")],
            vec![qualified("n.oid"), qualified("n.nspname")],
        ),
        None,
    )
}

/// A granted column whose type has a modifier: `numeric(p,s)`.
#[derive(Debug, Clone)]
pub(crate) struct TypeModifier {
    /// The dataset's domain (its schema).
    pub schema: String,
    /// The dataset's name (its table).
    pub table: String,
    /// The column's number in the tenant's view.
    pub column: i32,
    /// PostgreSQL's `atttypmod`.
    pub modifier: i32,
}

impl TypeModifier {
    /// The modifiers of the columns of a view of `columns` that have one (decimals'
    /// `numeric(p,s)`).
    pub(crate) fn of(schema: &str, table: &str, columns: &SchemaRef) -> Vec<Self> {
        columns
            .fields()
            .iter()
            .enumerate()
            .filter_map(|(i, field)| {
                let modifier = type_modifier(field.data_type());
                (modifier != -1).then_some(())?;
                Some(Self {
                    schema: schema.to_owned(),
                    table: table.to_owned(),
                    column: i32::try_from(i + 1).ok()?,
                    modifier,
                })
            })
            .collect()
    }
}

/// `pg_attribute` with the type modifiers of the tenant's columns (the crate's has none), so
/// `format_type` gives `numeric(15,2)` and drivers read precision and scale.
fn with_type_modifiers(
    pg_attribute: Arc<dyn TableProvider>,
    pg_class: Arc<dyn TableProvider>,
    pg_namespace: Arc<dyn TableProvider>,
    modifiers: &[TypeModifier],
) -> Result<Arc<dyn TableProvider>> {
    let modified = relation_rows(
        modifiers
            .iter()
            .map(|m| (m.schema.as_str(), m.table.as_str(), m.column)),
        "attnum",
        (
            "atttypmod",
            Arc::new(Int32Array::from_iter_values(
                modifiers.iter().map(|m| m.modifier),
            )),
        ),
    )?;
    let qualified = |name: &str| Column::from_qualified_name(name);
    let located = on_relations(
        LogicalPlanBuilder::scan("d", provider_as_source(Arc::new(modified)), None)?,
        pg_class,
        pg_namespace,
    )?
    .project(vec![
        col(qualified("c.oid")).alias("modified_relid"),
        col(qualified("d.attnum")).alias("modified_attnum"),
        col(qualified("d.atttypmod")).alias("modified_typmod"),
    ])?
    .build()?;
    let attribute_schema = pg_attribute.schema();
    let attnum_type = attribute_schema
        .field_with_name("attnum")
        .map(|field| field.data_type().clone())?;
    let columns: Vec<Expr> = attribute_schema
        .fields()
        .iter()
        .map(|field| {
            let own = col(Column::new(Some("a"), field.name()));
            if field.name() == "atttypmod" {
                when(col("modified_typmod").is_not_null(), col("modified_typmod"))
                    .otherwise(own)
                    .map(|modifier| modifier.alias("atttypmod"))
            } else {
                Ok(own.alias(field.name()))
            }
        })
        .collect::<Result<_>>()?;
    let plan = LogicalPlanBuilder::scan("a", provider_as_source(pg_attribute), None)?
        .join_on(
            located,
            JoinType::Left,
            vec![
                col(qualified("a.attrelid"))
                    .eq(col("modified_relid"))
                    .and(col(qualified("a.attnum")).eq(cast(col("modified_attnum"), attnum_type))),
            ],
        )?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `pg_user`: the roles of `pg_roles` that can log in, under `pg_user`'s column names
/// (Npgsql's index listing joins it), the password masked as PostgreSQL masks it.
fn users(pg_roles: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
    let plan = LogicalPlanBuilder::scan("pg_roles", provider_as_source(pg_roles), None)?
        .filter(col("rolcanlogin").is_true())?
        .project(vec![
            col("rolname").alias("usename"),
            col("oid").alias("usesysid"),
            col("rolcreatedb").alias("usecreatedb"),
            col("rolsuper").alias("usesuper"),
            col("rolreplication").alias("userepl"),
            col("rolbypassrls").alias("usebypassrls"),
            lit("********").alias("passwd"),
            col("rolvaliduntil").alias("valuntil"),
            col("rolconfig").alias("useconfig"),
        ])?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `pg_class` columns of PostgreSQL the crate's table lacks, all NULL for a tenant's views:
/// storage options and access privileges (`aclitem[]`, as text).
pub(crate) const PG_CLASS_NULLS: &[&str] = &["reloptions", "relacl"];

/// `table` with the text-array columns `names` added, NULL on every row.
fn with_null_columns(
    table: Arc<dyn TableProvider>,
    names: &[&str],
) -> Result<Arc<dyn TableProvider>> {
    let text_array = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    let mut columns: Vec<Expr> = table
        .schema()
        .fields()
        .iter()
        .map(|field| col(Column::new_unqualified(field.name())))
        .collect();
    columns.extend(
        names
            .iter()
            .map(|name| cast(lit(ScalarValue::Null), text_array.clone()).alias(*name)),
    );
    let plan = LogicalPlanBuilder::scan("base", provider_as_source(table), None)?
        .project(columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

#[async_trait]
impl SchemaProvider for PgCatalogOverlay {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        for name in self.retyped.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.retyped.get(&name.to_ascii_lowercase()) {
            Some(table) => Ok(Some(Arc::clone(table))),
            None => self.inner.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.retyped.contains_key(&name.to_ascii_lowercase()) || self.inner.table_exist(name)
    }
}

/// `batch` with each text column of `columns` parsed into a list of its element type.
fn with_lists(batch: &RecordBatch, columns: &HashMap<&str, &DataType>) -> Result<RecordBatch> {
    let schema = batch.schema();
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut arrays = Vec::with_capacity(schema.fields().len());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        match columns.get(field.name().as_str()) {
            Some(element) if matches!(field.data_type(), DataType::Utf8) => {
                let list = parse_lists(array, element)?;
                fields.push(Field::new(
                    field.name(),
                    list.data_type().clone(),
                    field.is_nullable(),
                ));
                arrays.push(list);
            }
            _ => {
                fields.push(field.as_ref().clone());
                arrays.push(Arc::clone(array));
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// Text lists (`'1 2'`, `'[1, 2]'`, `'{1,2}'`) as a list array of `element`.
fn parse_lists(array: &ArrayRef, element: &DataType) -> Result<ArrayRef> {
    match element {
        DataType::Int16 => lists_of::<Int16Type>(array),
        _ => lists_of::<Int32Type>(array),
    }
}

fn lists_of<T: ArrowPrimitiveType>(array: &ArrayRef) -> Result<ArrayRef>
where
    T::Native: TryFrom<i64>,
{
    let mut builder = ListBuilder::new(PrimitiveBuilder::<T>::new());
    for value in array.as_string::<i32>().iter() {
        let Some(value) = value else {
            builder.append(false);
            continue;
        };
        for part in value
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}'))
            .filter(|part| !part.is_empty())
        {
            let item = part
                .parse::<i64>()
                .ok()
                .and_then(|item| T::Native::try_from(item).ok())
                .ok_or_else(|| {
                    DataFusionError::Internal(format!(
                        "`{value}` is not a list of {}",
                        T::DATA_TYPE
                    ))
                })?;
            builder.values().append_value(item);
        }
        builder.append(true);
    }
    Ok(Arc::new(builder.finish()))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ListArray, StringArray};

    use super::*;

    #[test]
    fn vectors_and_arrays_become_lists() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("1 2"),
            Some("[3, 20]"),
            Some("{4}"),
            Some(""),
            None,
        ]));
        let lists = parse_lists(&text, &DataType::Int16).expect("parses");
        let lists = lists.as_any().downcast_ref::<ListArray>().expect("a list");
        let values: Vec<Option<Vec<Option<i16>>>> = lists
            .iter()
            .map(|list| list.map(|items| items.as_primitive::<Int16Type>().iter().collect()))
            .collect();
        assert_eq!(
            values,
            vec![
                Some(vec![Some(1), Some(2)]),
                Some(vec![Some(3), Some(20)]),
                Some(vec![Some(4)]),
                Some(vec![]),
                None,
            ]
        );
    }
}
