//! The reference for differential tests: a configuration's Parquet datasets loaded into a
//! database of the machine's PostgreSQL, and each tenant's grants made views there.
//!
//! Each dataset `schema.table` becomes table `schema.table` (columns as the files hold them,
//! `NOT NULL` where the file says so). Each tenant gets a schema named after it holding one
//! view per grant: the granted columns (or column expressions) of the rows its row filter
//! selects, tenant attributes (`$region`) written as literals. A client of the reference with
//! `search_path` set to a tenant sees what that tenant sees through the gateway with
//! `search_path` set to the datasets' schema. The database's collation is `C`: strings sort by
//! their bytes, as the gateway sorts them.

use std::path::PathBuf;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio_postgres::Client;
use tollgate_catalog::{GrantColumnOptions, SourceOptions, TollgateOptions};
use tollgate_planner::datafusion::arrow::array::Array;
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Schema};
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use tollgate_planner::datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::machine_pg;

/// A database of the machine's PostgreSQL holding a configuration's datasets and grants.
pub struct Reference {
    database: String,
}

impl Reference {
    /// Makes database `database` afresh and loads every local Parquet dataset of `options`
    /// into it, then each tenant's grants as views.
    ///
    /// # Errors
    /// A message naming the dataset or grant that could not be loaded.
    pub async fn load(database: &str, options: &TollgateOptions) -> Result<Self, String> {
        let admin = machine_pg::connect(machine_pg::ADMIN).await;
        // Strings compare by their bytes, as the gateway compares them.
        for statement in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("CREATE DATABASE {database} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .map_err(|e| format!("making database {database}: {e}"))?;
        }
        let client = machine_pg::connect(&machine_pg::conninfo(database)).await;
        for dataset in &options.datasets {
            let Some(SourceOptions::Local { path: root }) = options.sources.get(&dataset.source)
            else {
                continue;
            };
            load_dataset(&client, &dataset.id, root.join(&dataset.path))
                .await
                .map_err(|e| format!("loading {}: {e}", dataset.id))?;
        }
        for tenant in &options.tenants {
            client
                .batch_execute(&format!("CREATE SCHEMA {}", quote(&tenant.id)))
                .await
                .map_err(|e| format!("schema of {}: {e}", tenant.id))?;
            for grant in options.grants.iter().filter(|g| g.tenant == tenant.id) {
                let view = grant_view(
                    &tenant.id,
                    &grant.dataset,
                    grant.columns.as_deref(),
                    grant.row_filter.as_deref(),
                    &tenant.attributes,
                );
                client
                    .batch_execute(&view)
                    .await
                    .map_err(|e| format!("view of {} for {}: {e}", grant.dataset, tenant.id))?;
            }
        }
        Ok(Self {
            database: database.to_owned(),
        })
    }

    /// A client of the reference database, as its owner.
    pub async fn connect(&self) -> Client {
        machine_pg::connect(&machine_pg::conninfo(&self.database)).await
    }

    /// A client that sees what `tenant` sees: its views first on the `search_path`.
    ///
    /// # Panics
    /// If the path cannot be set.
    pub async fn connect_as(&self, tenant: &str) -> Client {
        let client = self.connect().await;
        client
            .batch_execute(&format!("SET search_path = {}", quote(tenant)))
            .await
            .expect("set the tenant's search_path");
        client
    }
}

/// Creates `id`'s table from the Parquet files under `dir` and copies their rows in, batch by
/// batch.
async fn load_dataset(client: &Client, id: &str, dir: PathBuf) -> Result<(), String> {
    let ctx = SessionContext::new();
    let dir = dir.to_str().ok_or("a data path that is not UTF-8")?;
    ctx.register_parquet(
        "dataset",
        dir,
        ParquetReadOptions::default().file_extension(".parquet"),
    )
    .await
    .map_err(|e| e.to_string())?;
    let frame = ctx.table("dataset").await.map_err(|e| e.to_string())?;
    let schema = frame.schema().as_arrow().clone();
    let (namespace, _) = id.split_once('.').ok_or("a dataset id without a schema")?;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE {} ({})",
            quote(namespace),
            qualified(id),
            column_definitions(&schema)?
        ))
        .await
        .map_err(|e| e.to_string())?;
    let sink = client
        .copy_in::<_, Bytes>(&format!("COPY {} FROM STDIN", qualified(id)))
        .await
        .map_err(|e| e.to_string())?;
    let mut sink = Box::pin(sink);
    let mut batches = frame.execute_stream().await.map_err(|e| e.to_string())?;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| e.to_string())?;
        sink.send(copy_text(&batch)?)
            .await
            .map_err(|e| e.to_string())?;
    }
    sink.as_mut().finish().await.map_err(|e| e.to_string())?;
    client
        .batch_execute(&format!("ANALYZE {}", qualified(id)))
        .await
        .map_err(|e| e.to_string())
}

/// `name type [NOT NULL], …` of PostgreSQL for an Arrow schema.
fn column_definitions(schema: &Schema) -> Result<String, String> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let pg_type = match field.data_type() {
                DataType::Boolean => "boolean".to_owned(),
                DataType::Int16 => "smallint".to_owned(),
                DataType::Int32 => "integer".to_owned(),
                DataType::Int64 => "bigint".to_owned(),
                DataType::Float32 => "real".to_owned(),
                DataType::Float64 => "double precision".to_owned(),
                DataType::Decimal128(precision, scale) => format!("numeric({precision},{scale})"),
                DataType::Date32 => "date".to_owned(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".to_owned(),
                other => return Err(format!("column {}: no mapping for {other}", field.name())),
            };
            let null = if field.is_nullable() { "" } else { " NOT NULL" };
            Ok(format!("{} {pg_type}{null}", quote(field.name())))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(columns.join(", "))
}

/// A batch in COPY's text format: tab-separated, `\N` for null, backslash escapes.
///
/// # Errors
/// If a column's type cannot be formatted.
pub fn copy_text(batch: &RecordBatch) -> Result<Bytes, String> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut text = String::with_capacity(batch.num_rows() * 64);
    for row in 0..batch.num_rows() {
        for (i, formatter) in formatters.iter().enumerate() {
            if i > 0 {
                text.push('\t');
            }
            if batch.column(i).is_null(row) {
                text.push_str("\\N");
                continue;
            }
            for c in formatter.value(row).to_string().chars() {
                match c {
                    '\\' => text.push_str("\\\\"),
                    '\t' => text.push_str("\\t"),
                    '\n' => text.push_str("\\n"),
                    '\r' => text.push_str("\\r"),
                    c => text.push(c),
                }
            }
        }
        text.push('\n');
    }
    Ok(Bytes::from(text))
}

/// `CREATE VIEW tenant.table AS SELECT <granted columns> FROM schema.table WHERE <row filter>`.
fn grant_view(
    tenant: &str,
    dataset: &str,
    columns: Option<&[GrantColumnOptions]>,
    row_filter: Option<&str>,
    attributes: &std::collections::BTreeMap<String, String>,
) -> String {
    let table = dataset.split_once('.').map_or(dataset, |(_, table)| table);
    let select = match columns {
        None => "*".to_owned(),
        Some(columns) => columns
            .iter()
            .map(|column| match column {
                GrantColumnOptions::Name(name) => quote(name),
                GrantColumnOptions::Expr { name, expr } => format!("({expr}) AS {}", quote(name)),
            })
            .collect::<Vec<_>>()
            .join(", "),
    };
    let filter = row_filter.map_or(String::new(), |filter| {
        format!(" WHERE {}", with_attributes(filter, attributes))
    });
    format!(
        "CREATE VIEW {}.{} AS SELECT {select} FROM {}{filter}",
        quote(tenant),
        quote(table),
        qualified(dataset)
    )
}

/// `filter` with each `$attribute` written as a string literal (longest names first, so
/// `$region` is never read as `$reg` + `ion`).
fn with_attributes(
    filter: &str,
    attributes: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut names: Vec<&String> = attributes.keys().collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.len()));
    names.into_iter().fold(filter.to_owned(), |text, name| {
        let literal = format!("'{}'", attributes[name].replace('\'', "''"));
        text.replace(&format!("${name}"), &literal)
    })
}

/// `"schema"."table"` of a dataset id.
fn qualified(id: &str) -> String {
    match id.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote(schema), quote(table)),
        None => quote(id),
    }
}

/// A quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_grant_becomes_a_view_of_its_columns_and_rows_with_attributes_as_literals() {
        let attributes = BTreeMap::from([("region".to_owned(), "O'HARE".to_owned())]);
        let columns = [
            GrantColumnOptions::Name("c_custkey".to_owned()),
            GrantColumnOptions::Expr {
                name: "masked".to_owned(),
                expr: "left(c_phone, 2)".to_owned(),
            },
        ];
        let view = grant_view(
            "acme",
            "tpch.customer",
            Some(&columns),
            Some("c_region = $region"),
            &attributes,
        );
        assert_eq!(
            view,
            "CREATE VIEW \"acme\".\"customer\" AS SELECT \"c_custkey\", (left(c_phone, 2)) AS \
             \"masked\" FROM \"tpch\".\"customer\" WHERE c_region = 'O''HARE'"
        );
    }
}
