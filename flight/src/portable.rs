//! Results in the Arrow types every Flight SQL client reads.
//!
//! DataFusion reads Parquet strings as `Utf8View` / `BinaryView`, which many clients do
//! not read yet (Spark 3.5's Arrow reader, older pyarrow and JDBC). Flight SQL results and
//! table schemas are therefore sent with `Utf8` / `Binary` instead; pgwire is unaffected.

use std::sync::Arc;

use tollgate_planner::datafusion::arrow::compute::cast;
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tollgate_planner::datafusion::arrow::error::ArrowError;
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;

/// `schema` with view types replaced by their plain counterparts.
pub fn portable_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            field
                .as_ref()
                .clone()
                .with_data_type(portable_type(field.data_type()))
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn portable_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(item) => DataType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(portable_type(item.data_type())),
        )),
        DataType::ListView(item) | DataType::LargeListView(item) => DataType::LargeList(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(portable_type(item.data_type())),
        )),
        other => other.clone(),
    }
}

/// `batch` converted to `schema` (from [`portable_schema`] of the batch's schema).
///
/// # Errors
/// If a column does not cast, which the type mapping above rules out.
pub fn portable_batch(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_planner::datafusion::arrow::array::{Array, Int32Array, StringViewArray};

    #[test]
    fn view_types_become_plain_types() {
        let schema = Schema::new(vec![
            Field::new("name", DataType::Utf8View, false),
            Field::new("n", DataType::Int32, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(StringViewArray::from(vec![
                    "a",
                    "long enough to be out of line",
                ])),
                Arc::new(Int32Array::from(vec![1, 2])),
            ],
        )
        .expect("batch");
        let portable = portable_schema(&schema);
        assert_eq!(portable.field(0).data_type(), &DataType::Utf8);
        assert!(!portable.field(0).is_nullable());
        let converted = portable_batch(batch, &portable).expect("cast");
        assert_eq!(converted.schema(), portable);
        assert_eq!(converted.column(0).len(), 2);
    }
}
