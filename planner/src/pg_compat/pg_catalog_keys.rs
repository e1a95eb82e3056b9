//! `pg_catalog`'s rows for the keys one tenant sees ([`ShownKeys`]), as PostgreSQL keeps
//! them: a `pg_constraint` row per key, and for each primary key its unique index (a
//! `pg_class` relation of kind `i` with its `pg_attribute` columns, and a `pg_index` row).
//! The keyed tables get `relhasindex` and the tables at either end of a foreign key
//! `relhastriggers`, which psql's `\d` reads before listing indexes and foreign keys.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Int16Array, Int32Array, ListBuilder, PrimitiveBuilder,
    RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int32Type, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::{MemTable, ViewTable, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlanBuilder, col, lit, when};
use datafusion::prelude::SessionContext;

use crate::pg_compat::dataset_keys::{KeyColumns, ShownKeys};

/// PostgreSQL's btree access method, the one of every primary key's index.
const BTREE: i32 = 403;

/// The oids `pg_class` and `pg_namespace` give the tenant's relations and schemas.
struct Oids {
    relations: HashMap<(String, String), i32>,
    namespaces: HashMap<String, i32>,
}

impl Oids {
    async fn read(
        context: &SessionContext,
        pg_class: Arc<dyn TableProvider>,
        pg_namespace: Arc<dyn TableProvider>,
    ) -> Result<Self> {
        let mut namespaces = HashMap::new();
        for batch in context.read_table(pg_namespace)?.collect().await? {
            let oids = batch_column(&batch, "oid", &DataType::Int32)?;
            let names = batch_column(&batch, "nspname", &DataType::Utf8)?;
            for (oid, name) in oids
                .as_primitive::<Int32Type>()
                .iter()
                .zip(names.as_string::<i32>())
            {
                if let (Some(oid), Some(name)) = (oid, name) {
                    namespaces.insert(name.to_owned(), oid);
                }
            }
        }
        let schema_of: HashMap<i32, String> = namespaces
            .iter()
            .map(|(name, oid)| (*oid, name.clone()))
            .collect();
        let mut relations = HashMap::new();
        for batch in context.read_table(pg_class)?.collect().await? {
            let oids = batch_column(&batch, "oid", &DataType::Int32)?;
            let names = batch_column(&batch, "relname", &DataType::Utf8)?;
            let spaces = batch_column(&batch, "relnamespace", &DataType::Int32)?;
            for ((oid, name), space) in oids
                .as_primitive::<Int32Type>()
                .iter()
                .zip(names.as_string::<i32>())
                .zip(spaces.as_primitive::<Int32Type>())
            {
                if let (Some(oid), Some(name), Some(schema)) =
                    (oid, name, space.and_then(|s| schema_of.get(&s)))
                {
                    relations.insert((schema.clone(), name.to_owned()), oid);
                }
            }
        }
        Ok(Self {
            relations,
            namespaces,
        })
    }

    fn relation(&self, columns: &KeyColumns) -> Result<i32> {
        self.relations
            .get(&(columns.schema.clone(), columns.table.clone()))
            .copied()
            .ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "pg_class has no relation {}.{}",
                    columns.schema, columns.table
                ))
            })
    }

    fn namespace(&self, schema: &str) -> Result<i32> {
        self.namespaces.get(schema).copied().ok_or_else(|| {
            DataFusionError::Internal(format!("pg_namespace has no schema {schema}"))
        })
    }
}

/// Adds the rows of `keys` to the overlay's `pg_class`, `pg_attribute`, `pg_index` and
/// `pg_constraint` in `tables`.
///
/// # Errors
/// Engine errors reading `pg_class` and `pg_namespace`, or a keyed relation they lack.
pub(crate) async fn add_keys(
    tables: &mut HashMap<String, Arc<dyn TableProvider>>,
    context: &SessionContext,
    keys: &ShownKeys,
) -> Result<()> {
    if keys.primary.is_empty() {
        return Ok(());
    }
    let table = |tables: &HashMap<String, Arc<dyn TableProvider>>, name: &str| {
        tables.get(name).cloned().ok_or_else(|| {
            DataFusionError::Internal(format!("the pg_catalog overlay has no {name}"))
        })
    };
    let oids = Oids::read(
        context,
        table(tables, "pg_class")?,
        table(tables, "pg_namespace")?,
    )
    .await?;
    let pg_class = with_indexes(table(tables, "pg_class")?, keys, &oids)?;
    let pg_attribute = with_index_columns(table(tables, "pg_attribute")?, keys, &oids)?;
    let pg_index = with_rows(table(tables, "pg_index")?, |schema| {
        index_rows(schema, keys, &oids)
    })?;
    let pg_constraint = with_rows(table(tables, "pg_constraint")?, |schema| {
        constraint_rows(schema, keys, &oids)
    })?;
    tables.insert("pg_class".to_owned(), pg_class);
    tables.insert("pg_attribute".to_owned(), pg_attribute);
    tables.insert("pg_index".to_owned(), pg_index);
    tables.insert("pg_constraint".to_owned(), pg_constraint);
    Ok(())
}

/// `pg_class` with each primary key's index, and `relhasindex` on the keyed tables.
fn with_indexes(
    pg_class: Arc<dyn TableProvider>,
    keys: &ShownKeys,
    oids: &Oids,
) -> Result<Arc<dyn TableProvider>> {
    let keyed: Vec<Expr> = keys
        .primary
        .iter()
        .map(|key| oids.relation(&key.columns).map(lit))
        .collect::<Result<_>>()?;
    // PostgreSQL keeps foreign keys with triggers on both ends; psql's `\d` lists them
    // only for tables with `relhastriggers`.
    let triggered: Vec<Expr> = keys
        .foreign
        .iter()
        .flat_map(|key| [&key.columns, &key.referenced])
        .map(|columns| oids.relation(columns).map(lit))
        .collect::<Result<_>>()?;
    let columns: Vec<Expr> = pg_class
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let own = col(Column::new_unqualified(field.name()));
            let set = match field.name().as_str() {
                "relhasindex" => &keyed,
                "relhastriggers" => &triggered,
                _ => return Ok(own),
            };
            if set.is_empty() {
                return Ok(own);
            }
            when(col("oid").in_list(set.clone(), false), lit(true))
                .otherwise(own)
                .map(|flag| flag.alias(field.name()))
        })
        .collect::<Result<_>>()?;
    let schema = pg_class.schema();
    let indexes = rows(
        &schema,
        keys.primary.len(),
        vec![
            ("oid", int32s(keys.primary.iter().map(|k| k.index_oid))),
            (
                "relname",
                texts(keys.primary.iter().map(|k| k.name.as_str())),
            ),
            (
                "relnamespace",
                int32s(
                    keys.primary
                        .iter()
                        .map(|k| oids.namespace(&k.columns.schema))
                        .collect::<Result<Vec<_>>>()?,
                ),
            ),
            ("relam", int32s(keys.primary.iter().map(|_| BTREE))),
            (
                "relfilenode",
                int32s(keys.primary.iter().map(|k| k.index_oid)),
            ),
            ("relpages", int32s(keys.primary.iter().map(|_| 1))),
            ("relpersistence", texts(keys.primary.iter().map(|_| "p"))),
            ("relkind", texts(keys.primary.iter().map(|_| "i"))),
            (
                "relnatts",
                Arc::new(Int16Array::from_iter_values(
                    keys.primary.iter().map(|k| key_width(&k.columns)),
                )),
            ),
            ("relreplident", texts(keys.primary.iter().map(|_| "n"))),
            ("relispopulated", booleans(keys.primary.len(), true)),
        ],
    )?;
    let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(pg_class), None)?
        .project(columns)?
        .union(memory_scan(indexes)?)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `pg_attribute` with the columns of each primary key's index: the table's attributes,
/// renumbered from 1 in key order on the index's oid.
fn with_index_columns(
    pg_attribute: Arc<dyn TableProvider>,
    keys: &ShownKeys,
    oids: &Oids,
) -> Result<Arc<dyn TableProvider>> {
    let (mut index_oids, mut index_numbers, mut table_oids, mut table_numbers) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for key in &keys.primary {
        let table = oids.relation(&key.columns)?;
        for (position, number) in (1_i16..).zip(&key.columns.numbers) {
            index_oids.push(key.index_oid);
            index_numbers.push(position);
            table_oids.push(table);
            table_numbers.push(*number);
        }
    }
    let facts_schema = Arc::new(Schema::new(vec![
        Field::new("index_oid", DataType::Int32, false),
        Field::new("index_attnum", DataType::Int16, false),
        Field::new("table_oid", DataType::Int32, false),
        Field::new("table_attnum", DataType::Int16, false),
    ]));
    let facts = RecordBatch::try_new(
        Arc::clone(&facts_schema),
        vec![
            Arc::new(Int32Array::from(index_oids)),
            Arc::new(Int16Array::from(index_numbers)),
            Arc::new(Int32Array::from(table_oids)),
            Arc::new(Int16Array::from(table_numbers)),
        ],
    )?;
    let schema = pg_attribute.schema();
    let attribute = |name: &str| col(Column::new(Some("a"), name));
    let fact = |name: &str| col(Column::new(Some("k"), name));
    let projected: Vec<Expr> = schema
        .fields()
        .iter()
        .map(|field| {
            let value = match field.name().as_str() {
                "attrelid" => fact("index_oid"),
                "attnum" => fact("index_attnum"),
                name => attribute(name),
            };
            datafusion::logical_expr::cast(value, field.data_type().clone()).alias(field.name())
        })
        .collect();
    let index_columns =
        LogicalPlanBuilder::scan("a", provider_as_source(Arc::clone(&pg_attribute)), None)?
            .join_on(
                memory_scan_as("k", facts)?,
                JoinType::Inner,
                vec![
                    attribute("attrelid")
                        .eq(datafusion::logical_expr::cast(
                            fact("table_oid"),
                            schema.field_with_name("attrelid")?.data_type().clone(),
                        ))
                        .and(attribute("attnum").eq(datafusion::logical_expr::cast(
                            fact("table_attnum"),
                            schema.field_with_name("attnum")?.data_type().clone(),
                        ))),
                ],
            )?
            .project(projected)?
            .build()?;
    let plan = LogicalPlanBuilder::scan("pg_attribute", provider_as_source(pg_attribute), None)?
        .union(index_columns)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// A `pg_index` row per primary key.
fn index_rows(schema: &SchemaRef, keys: &ShownKeys, oids: &Oids) -> Result<RecordBatch> {
    let primary = &keys.primary;
    let count = primary.len();
    let widths = || {
        Arc::new(Int16Array::from_iter_values(
            primary.iter().map(|k| key_width(&k.columns)),
        )) as ArrayRef
    };
    let zeros = |element: fn(i16) -> i32| {
        int32_lists(
            primary
                .iter()
                .map(|k| Some(k.columns.numbers.iter().map(|n| element(*n)).collect())),
        )
    };
    rows(
        schema,
        count,
        vec![
            ("indexrelid", int32s(primary.iter().map(|k| k.index_oid))),
            (
                "indrelid",
                int32s(
                    primary
                        .iter()
                        .map(|k| oids.relation(&k.columns))
                        .collect::<Result<Vec<_>>>()?,
                ),
            ),
            ("indnatts", widths()),
            ("indnkeyatts", widths()),
            ("indisunique", booleans(count, true)),
            ("indisprimary", booleans(count, true)),
            ("indimmediate", booleans(count, true)),
            ("indisvalid", booleans(count, true)),
            ("indisready", booleans(count, true)),
            ("indislive", booleans(count, true)),
            (
                "indkey",
                int16_lists(primary.iter().map(|k| Some(k.columns.numbers.clone()))),
            ),
            ("indcollation", zeros(|_| 0)),
            ("indclass", zeros(|_| 0)),
            ("indoption", zeros(|_| 0)),
        ],
    )
}

/// A `pg_constraint` row per key: `p` for primary keys, `f` for foreign keys.
fn constraint_rows(schema: &SchemaRef, keys: &ShownKeys, oids: &Oids) -> Result<RecordBatch> {
    struct Row<'a> {
        oid: i32,
        name: &'a str,
        kind: &'static str,
        columns: &'a KeyColumns,
        index: i32,
        referenced: Option<&'a KeyColumns>,
    }
    let rows_of: Vec<Row<'_>> = keys
        .primary
        .iter()
        .map(|k| Row {
            oid: k.constraint_oid,
            name: &k.name,
            kind: "p",
            columns: &k.columns,
            index: k.index_oid,
            referenced: None,
        })
        .chain(keys.foreign.iter().map(|k| Row {
            oid: k.constraint_oid,
            name: &k.name,
            kind: "f",
            columns: &k.columns,
            index: k.key.index_oid,
            referenced: Some(&k.referenced),
        }))
        .collect();
    let count = rows_of.len();
    let foreign_action = |action: &'static str| {
        texts(
            rows_of
                .iter()
                .map(move |r| if r.referenced.is_some() { action } else { " " }),
        )
    };
    rows(
        schema,
        count,
        vec![
            ("oid", int32s(rows_of.iter().map(|r| r.oid))),
            ("conname", texts(rows_of.iter().map(|r| r.name))),
            (
                "connamespace",
                int32s(
                    rows_of
                        .iter()
                        .map(|r| oids.namespace(&r.columns.schema))
                        .collect::<Result<Vec<_>>>()?,
                ),
            ),
            ("contype", texts(rows_of.iter().map(|r| r.kind))),
            ("convalidated", booleans(count, true)),
            (
                "conrelid",
                int32s(
                    rows_of
                        .iter()
                        .map(|r| oids.relation(r.columns))
                        .collect::<Result<Vec<_>>>()?,
                ),
            ),
            ("conindid", int32s(rows_of.iter().map(|r| r.index))),
            (
                "confrelid",
                int32s(
                    rows_of
                        .iter()
                        .map(|r| r.referenced.map_or(Ok(0), |c| oids.relation(c)))
                        .collect::<Result<Vec<_>>>()?,
                ),
            ),
            ("confupdtype", foreign_action("a")),
            ("confdeltype", foreign_action("a")),
            ("confmatchtype", foreign_action("s")),
            ("conislocal", booleans(count, true)),
            ("connoinherit", booleans(count, true)),
            (
                "conkey",
                int16_lists(rows_of.iter().map(|r| Some(r.columns.numbers.clone()))),
            ),
            (
                "confkey",
                int16_lists(
                    rows_of
                        .iter()
                        .map(|r| r.referenced.map(|c| c.numbers.clone())),
                ),
            ),
        ],
    )
}

/// `table` and the rows `added` builds for its schema.
fn with_rows(
    table: Arc<dyn TableProvider>,
    added: impl FnOnce(&SchemaRef) -> Result<RecordBatch>,
) -> Result<Arc<dyn TableProvider>> {
    let batch = added(&table.schema())?;
    let plan = LogicalPlanBuilder::scan("t", provider_as_source(table), None)?
        .union(memory_scan(batch)?)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `count` rows of `schema`: the `named` columns (cast to the schema's types), NULL in the
/// other nullable ones and zero, false, `''` or `{}` in the rest.
fn rows(schema: &SchemaRef, count: usize, named: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(
            |field| match named.iter().find(|(name, _)| name == field.name()) {
                Some((_, values)) => Ok(cast(values, field.data_type())?),
                None => filler(field, count),
            },
        )
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

fn filler(field: &Field, count: usize) -> Result<ArrayRef> {
    let data_type = field.data_type();
    if field.is_nullable() {
        return Ok(new_null_array(data_type, count));
    }
    let value = match data_type {
        DataType::Utf8 => ScalarValue::Utf8(Some(String::new())),
        DataType::Boolean => ScalarValue::Boolean(Some(false)),
        DataType::List(item) => {
            ScalarValue::List(ScalarValue::new_list(&[], item.data_type(), true))
        }
        other => ScalarValue::new_zero(other)?,
    };
    value.to_array_of_size(count)
}

fn memory_scan(batch: RecordBatch) -> Result<datafusion::logical_expr::LogicalPlan> {
    memory_scan_as("added", batch)
}

fn memory_scan_as(name: &str, batch: RecordBatch) -> Result<datafusion::logical_expr::LogicalPlan> {
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()
}

fn batch_column(batch: &RecordBatch, name: &str, data_type: &DataType) -> Result<ArrayRef> {
    let column = batch.column_by_name(name).ok_or_else(|| {
        DataFusionError::Internal(format!("a pg_catalog table has no column {name}"))
    })?;
    Ok(cast(column, data_type)?)
}

fn key_width(columns: &KeyColumns) -> i16 {
    i16::try_from(columns.numbers.len()).unwrap_or(i16::MAX)
}

fn int32s(values: impl IntoIterator<Item = i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values))
}

fn texts<'a>(values: impl IntoIterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn booleans(count: usize, value: bool) -> ArrayRef {
    Arc::new(BooleanArray::from(vec![value; count]))
}

fn int16_lists(lists: impl IntoIterator<Item = Option<Vec<i16>>>) -> ArrayRef {
    let mut builder = ListBuilder::new(PrimitiveBuilder::<Int16Type>::new());
    for list in lists {
        builder.append_option(list.map(|items| items.into_iter().map(Some)));
    }
    Arc::new(builder.finish())
}

fn int32_lists(lists: impl IntoIterator<Item = Option<Vec<i32>>>) -> ArrayRef {
    let mut builder = ListBuilder::new(PrimitiveBuilder::<Int32Type>::new());
    for list in lists {
        builder.append_option(list.map(|items| items.into_iter().map(Some)));
    }
    Arc::new(builder.finish())
}
