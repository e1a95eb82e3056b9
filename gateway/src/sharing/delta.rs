//! What the Delta Sharing protocol says about a table: Delta's `schemaString` of an Arrow
//! schema, and the `protocol`, `metaData` and `file` lines of its NDJSON answers.

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use serde_json::{Value, json};
use tollgate_catalog::store::records::{SharedFile, SharedTableRecord};

/// The Delta type of an Arrow type; `None` for one Delta cannot name.
fn delta_type(data_type: &DataType) -> Option<Value> {
    Some(match data_type {
        DataType::Boolean => json!("boolean"),
        DataType::Int8 => json!("byte"),
        DataType::Int16 | DataType::UInt8 => json!("short"),
        DataType::Int32 | DataType::UInt16 => json!("integer"),
        DataType::Int64 | DataType::UInt32 => json!("long"),
        DataType::Float16 | DataType::Float32 => json!("float"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => json!("binary"),
        DataType::Date32 | DataType::Date64 => json!("date"),
        DataType::Timestamp(_, Some(_)) => json!("timestamp"),
        DataType::Timestamp(_, None) => json!("timestamp_ntz"),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => json!(format!("decimal({p},{s})")),
        DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => json!({
            "type": "array",
            "elementType": delta_type(item.data_type())?,
            "containsNull": item.is_nullable(),
        }),
        DataType::Struct(fields) => struct_type(fields.iter().map(|f| f.as_ref()))?,
        DataType::Dictionary(_, value) => delta_type(value)?,
        _ => return None,
    })
}

fn struct_type<'a>(
    fields: impl Iterator<Item = &'a datafusion::arrow::datatypes::Field>,
) -> Option<Value> {
    let fields = fields
        .map(|field| {
            Some(json!({
                "name": field.name(),
                "type": delta_type(field.data_type())?,
                "nullable": field.is_nullable(),
                "metadata": {},
            }))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(json!({ "type": "struct", "fields": fields }))
}

/// Delta's `schemaString` of `schema`, or the first column whose type it cannot name.
///
/// # Errors
/// The name and type of that column.
pub fn schema_string(schema: &Schema) -> Result<String, String> {
    if let Some(field) = schema
        .fields()
        .iter()
        .find(|field| delta_type(field.data_type()).is_none())
    {
        return Err(format!(
            "column `{}` of type {} has no Delta type",
            field.name(),
            field.data_type()
        ));
    }
    let value = struct_type(schema.fields().iter().map(|f| f.as_ref())).unwrap_or(Value::Null);
    Ok(value.to_string())
}

/// The Arrow type written to Parquet for `data_type`: timestamps in microseconds, as
/// Delta readers expect.
pub fn file_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(_, zone) => DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
        other => other.clone(),
    }
}

/// The `protocol` line.
pub fn protocol_line() -> Value {
    json!({ "protocol": { "minReaderVersion": 1 } })
}

/// The `metaData` line of `table`.
pub fn metadata_line(table: &SharedTableRecord) -> Value {
    let size: u64 = table.files.iter().map(|file| file.size).sum();
    json!({
        "metaData": {
            "id": format!("{}/{}", table.channel, table.dataset),
            "name": table.dataset,
            "format": { "provider": "parquet" },
            "schemaString": table.schema_string,
            "partitionColumns": table.partition_columns,
            "configuration": {},
            "version": table.version,
            "size": size,
            "numFiles": table.files.len(),
        }
    })
}

/// The `file` line of `file`, read at `url` until `expires` (Unix milliseconds).
pub fn file_line(
    table: &SharedTableRecord,
    file: &SharedFile,
    url: &str,
    expires_ms: u64,
) -> Value {
    json!({
        "file": {
            "url": url,
            "id": file.path,
            "partitionValues": file.partition_values,
            "size": file.size,
            "stats": stats(file).to_string(),
            "version": table.version,
            "timestamp": table.created_at.timestamp_millis(),
            "expirationTimestamp": expires_ms,
        }
    })
}

/// Delta's `stats` of `file`: its rows and, where known, its columns' bounds and nulls.
fn stats(file: &SharedFile) -> Value {
    let mut stats = match &file.stats {
        Value::Object(columns) => columns.clone(),
        _ => serde_json::Map::new(),
    };
    stats.insert("numRecords".to_owned(), json!(file.rows));
    Value::Object(stats)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Field;

    use super::*;

    #[test]
    fn arrow_schemas_become_delta_schema_strings() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::Decimal128(15, 2), true),
            Field::new("name", DataType::Utf8View, true),
            Field::new("day", DataType::Date32, true),
        ]);
        let text = schema_string(&schema).expect("a schema string");
        let value: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["type"], "struct");
        assert_eq!(
            value["fields"][0],
            json!({"name": "id", "type": "long", "nullable": false, "metadata": {}})
        );
        assert_eq!(value["fields"][1]["type"], "decimal(15,2)");
        assert_eq!(value["fields"][2]["type"], "string");
        assert_eq!(value["fields"][3]["type"], "date");
        let odd = Schema::new(vec![Field::new(
            "d",
            DataType::Duration(TimeUnit::Second),
            true,
        )]);
        assert!(schema_string(&odd).is_err());
    }
}
