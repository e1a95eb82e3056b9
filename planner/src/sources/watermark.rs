//! The newest value of a replica table's watermark column: the upper bound of the slice of
//! rows a push channel takes next. Read as text in a form the column's Arrow type parses
//! back (timestamps with a time zone in UTC, `…Z`), so the bound round-trips exactly.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;

use crate::sources::postgres_table::{PostgresTable, short_query};
use crate::sources::pushdown::quote;

/// The largest value of `column` in `table`, as text; `None` while the table is empty.
///
/// # Errors
/// Why no replica answered.
pub(crate) async fn newest(table: &PostgresTable, column: &str) -> Result<Option<String>, String> {
    let schema = datafusion::catalog::TableProvider::schema(table);
    let Ok(field) = schema.field_with_name(column) else {
        return Err(format!("it has no column `{column}`"));
    };
    let remote = table.remote_name();
    let relation = format!(
        "{}.{}",
        quote(remote.schema().unwrap_or("public")),
        quote(remote.table())
    );
    let newest = format!("max({})", quote(column));
    let text = match field.data_type() {
        DataType::Timestamp(_, Some(_)) => {
            format!("to_char({newest} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        }
        _ => format!("{newest}::text"),
    };
    let sql = format!("SELECT {text} FROM {relation}");
    let replicas = Arc::clone(table.replicas());
    let set = Arc::clone(&replicas);
    replicas
        .io()
        .spawn(async move {
            set.with_connection(|client| {
                let sql = sql.clone();
                let replicas = Arc::clone(&set);
                async move {
                    short_query(&replicas, client, async |client| {
                        let row = client.query_one(&sql, &[]).await?;
                        Ok(row.get::<_, Option<String>>(0))
                    })
                    .await
                }
            })
            .await
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|failure| failure.to_string())
}
