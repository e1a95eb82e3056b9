//! Record batches as rows: one `DataRow` (or `COPY` row) per row, each column read by its
//! encoder from [`columns`](super::columns), dictionaries decoded once per batch.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::results::{CopyEncoder, DataRowEncoder, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;

use super::columns::{RowSink, column_encoder, mismatch};

/// Encodes every row of `batch` as a `DataRow`, each field in its `fields` type and format.
///
/// `fields` must come from [`field_infos`](super::field_infos) for the batch's schema.
/// Columns are downcast once per batch and one [`DataRowEncoder`] is reused for all rows;
/// dictionary-encoded columns are decoded once per batch.
///
/// # Errors
///
/// SQLSTATE 22003 for a decimal that `numeric` cannot carry exactly through rust_decimal
/// (more than 28 significant fractional digits, or an unscaled value beyond 96 bits), 22008
/// for a date or time outside chrono's range, 0A000 for an unsupported column type, and
/// XX000 if `fields` does not describe `batch`.
pub fn encode_batch(
    fields: &Arc<Vec<FieldInfo>>,
    batch: &RecordBatch,
) -> PgWireResult<Vec<DataRow>> {
    let sink = RowSink::Data(DataRowEncoder::new(Arc::clone(fields)));
    let (_, rows) = encode_rows(fields, batch, sink, |sink| match sink {
        RowSink::Data(encoder) => Some(encoder.take_row()),
        RowSink::Copy(_) => None,
    })?;
    Ok(rows)
}

/// Encodes every row of `batch` as `COPY ... TO STDOUT` data (text, CSV or binary, as
/// `encoder` was made for `fields`), one `CopyData` message per row, and hands the encoder
/// back for the next batch.
///
/// # Errors
///
/// As [`encode_batch`].
pub fn encode_copy_batch(
    encoder: CopyEncoder,
    fields: &[FieldInfo],
    batch: &RecordBatch,
) -> PgWireResult<(CopyEncoder, Vec<CopyData>)> {
    let (sink, rows) = encode_rows(fields, batch, RowSink::Copy(encoder), |sink| match sink {
        RowSink::Copy(encoder) => Some(encoder.take_copy()),
        RowSink::Data(_) => None,
    })?;
    match sink {
        RowSink::Copy(encoder) => Ok((encoder, rows)),
        RowSink::Data(_) => Err(mismatch()),
    }
}

/// Encodes each row of `batch` into `sink` and collects what `take` makes of it.
fn encode_rows<T>(
    fields: &[FieldInfo],
    batch: &RecordBatch,
    mut sink: RowSink,
    mut take: impl FnMut(&mut RowSink) -> Option<T>,
) -> PgWireResult<(RowSink, Vec<T>)> {
    if fields.len() != batch.num_columns() {
        return Err(mismatch());
    }
    let arrays = batch
        .columns()
        .iter()
        .map(decode_dictionaries)
        .collect::<PgWireResult<Vec<_>>>()?;
    let mut columns = fields
        .iter()
        .zip(&arrays)
        .map(|(field, array)| column_encoder(field, array.as_ref()))
        .collect::<PgWireResult<Vec<_>>>()?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for column in &mut columns {
            column.encode(row, &mut sink)?;
        }
        rows.extend(take(&mut sink));
    }
    Ok((sink, rows))
}

/// `array` with dictionary encoding removed, at the top level and in list items.
///
/// Casting materializes the values once per batch; it keeps the per-row path free of key
/// lookups for every key type.
fn decode_dictionaries(array: &ArrayRef) -> PgWireResult<ArrayRef> {
    match decoded_type(array.data_type()) {
        None => Ok(Arc::clone(array)),
        Some(decoded) => cast(array, &decoded).map_err(|e| PgWireError::ApiError(Box::new(e))),
    }
}

/// The dictionary-free form of `data_type`, or `None` if it has no dictionary to decode.
fn decoded_type(data_type: &DataType) -> Option<DataType> {
    let decoded_item = |item: &FieldRef| {
        decoded_type(item.data_type())
            .map(|decoded| Arc::new(item.as_ref().clone().with_data_type(decoded)))
    };
    match data_type {
        DataType::Dictionary(_, value) => {
            Some(decoded_type(value).unwrap_or_else(|| value.as_ref().clone()))
        }
        DataType::List(item) => decoded_item(item).map(DataType::List),
        DataType::LargeList(item) => decoded_item(item).map(DataType::LargeList),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        DictionaryArray, Int32Array, LargeStringArray, ListBuilder, StringArray, StringBuilder,
        StringViewArray,
    };
    use datafusion::arrow::datatypes::{Field, Int32Type, Schema};
    use pgwire::api::portal::Format;

    use super::*;
    use crate::pgwire::encode::field_infos;
    use crate::pgwire::encode::test_support::{assert_column, cells, code, strings, text};

    #[test]
    fn strings_of_every_layout_and_dictionaries() {
        let values = vec![Some("héllo"), None, Some(""), Some("a,b {c}")];
        let owned = strings(&values);
        let arrays: [ArrayRef; 4] = [
            Arc::new(StringArray::from(values.clone())),
            Arc::new(LargeStringArray::from(values.clone())),
            Arc::new(StringViewArray::from(values.clone())),
            Arc::new(
                values
                    .iter()
                    .copied()
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
        ];
        for array in arrays {
            assert_column(array, &values, &owned);
        }
        // A valid key pointing at a NULL dictionary value is NULL too.
        let keys = Int32Array::from(vec![0, 1, 0]);
        let dictionary = StringArray::from(vec![Some("a"), None]);
        let array = DictionaryArray::try_new(keys, Arc::new(dictionary)).expect("valid");
        assert_eq!(
            text(Arc::new(array)),
            strings(&[Some("a"), None, Some("a")])
        );
    }

    #[test]
    fn mixed_formats_in_one_row() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![1, 2])),
            Arc::new(StringArray::from(vec![Some("a"), None])),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("valid");
        let fields = Arc::new(field_infos(&schema, &Format::Individual(vec![1, 0])).expect("ok"));
        let rows = encode_batch(&fields, &batch).expect("encodes");
        let rows: Vec<_> = rows.iter().map(cells).collect();
        assert_eq!(
            rows,
            [
                vec![Some(vec![0, 0, 0, 1]), Some(b"a".to_vec())],
                vec![Some(vec![0, 0, 0, 2]), None],
            ]
        );
    }

    #[test]
    fn a_row_description_that_does_not_fit_the_batch_is_an_error() {
        let described = Schema::new(vec![Field::new("c", DataType::Utf8, true)]);
        let fields = Arc::new(field_infos(&described, &Format::UnifiedBinary).expect("ok"));
        let mut builder = ListBuilder::new(StringBuilder::new());
        builder.append_value([Some("a")]);
        let list: ArrayRef = Arc::new(builder.finish());
        let batch = RecordBatch::try_from_iter([("c", list)]).expect("valid");
        let error = encode_batch(&fields, &batch).expect_err("list described as text");
        assert_eq!(code(error), "XX000");

        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        let two =
            RecordBatch::try_from_iter([("a", Arc::clone(&ints)), ("b", ints)]).expect("valid");
        let error = encode_batch(&fields, &two).expect_err("column count");
        assert_eq!(code(error), "XX000");
    }
}
