//! `arrow_encode`: Arrow columns of any type and value, as a source or an expression could
//! hand them to the pgwire encoder, encoded as rows with a format per column. Fixed-width
//! columns are built from the raw bytes (any bit pattern: decimals beyond their precision,
//! dates and times out of range, negative scales, odd time zones), so the encoder meets what
//! no well-behaved source sends.
//!
//! A type the encoder does not serve is refused when the row description is built; a value
//! it cannot represent is refused with an error. Every row it does encode must hold one
//! field per column, lengths that add up, text that is UTF-8 and fixed-width binary values of
//! their type's width.

use std::sync::Arc;

use arbitrary::{Result, Unstructured};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::messages::data::DataRow;
use tollgate_gateway::pgwire::encode::{encode_batch, field_infos};
use tollgate_planner::datafusion::arrow::array::{
    Array, ArrayData, ArrayRef, BinaryArray, BinaryViewArray, DictionaryArray, Int32Array,
    LargeBinaryArray, LargeListArray, LargeStringArray, ListArray, NullArray, StringArray,
    StringViewArray, StructArray, make_array,
};
use tollgate_planner::datafusion::arrow::buffer::{Buffer, NullBuffer, OffsetBuffer};
use tollgate_planner::datafusion::arrow::datatypes::{
    DataType, Field, Int32Type, IntervalUnit, Schema, TimeUnit,
};
use tollgate_planner::datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

/// At most this many columns and rows per input.
const MAX_COLUMNS: usize = 4;
const MAX_ROWS: usize = 8;

/// Time zones a timestamp column may name, one of them no zone at all.
const TIME_ZONES: [&str; 5] = ["UTC", "+05:30", "-12:00", "America/New_York", "Not/AZone"];

/// Encodes the columns `data` describes.
pub(super) fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok((batch, codes)) = batch(&mut input) else {
        return;
    };
    let Ok(fields) = field_infos(batch.schema_ref(), &Format::Individual(codes)) else {
        return;
    };
    let fields = Arc::new(fields);
    if let Ok(rows) = encode_batch(&fields, &batch) {
        assert_eq!(rows.len(), batch.num_rows(), "one DataRow per row");
        for row in &rows {
            check_row(&fields, row, &batch);
        }
    }
}

/// A batch of up to [`MAX_COLUMNS`] columns and a result format code per column.
fn batch(input: &mut Unstructured<'_>) -> Result<(RecordBatch, Vec<i16>)> {
    let rows = input.int_in_range(0..=MAX_ROWS)?;
    let columns = input.int_in_range(1..=MAX_COLUMNS)?;
    let mut arrays = Vec::with_capacity(columns);
    let mut codes = Vec::with_capacity(columns);
    for _ in 0..columns {
        arrays.push(column(input, rows, true)?);
        codes.push(i16::from(input.arbitrary::<bool>()?));
    }
    let fields: Vec<Field> = arrays
        .iter()
        .enumerate()
        .map(|(i, array)| Field::new(format!("c{i}"), array.data_type().clone(), true))
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    let batch = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(|_| arbitrary::Error::IncorrectFormat)?;
    Ok((batch, codes))
}

/// One column of `rows` values; lists only where `nested` (a list of lists is a type the
/// encoder refuses, so one level of nesting shows all there is).
fn column(input: &mut Unstructured<'_>, rows: usize, nested: bool) -> Result<ArrayRef> {
    let kinds = if nested { 40 } else { 36 };
    Ok(match input.choose_index(kinds)? {
        0 => fixed(input, DataType::Boolean, rows)?,
        1 => fixed(input, DataType::Int8, rows)?,
        2 => fixed(input, DataType::Int16, rows)?,
        3 => fixed(input, DataType::Int32, rows)?,
        4 => fixed(input, DataType::Int64, rows)?,
        5 => fixed(input, DataType::UInt8, rows)?,
        6 => fixed(input, DataType::UInt16, rows)?,
        7 => fixed(input, DataType::UInt32, rows)?,
        8 => fixed(input, DataType::UInt64, rows)?,
        9 => fixed(input, DataType::Float16, rows)?,
        10 => fixed(input, DataType::Float32, rows)?,
        11 => fixed(input, DataType::Float64, rows)?,
        12 => {
            let (precision, scale) = precision_and_scale(input, 38)?;
            fixed(input, DataType::Decimal128(precision, scale), rows)?
        }
        13 => {
            let (precision, scale) = precision_and_scale(input, 76)?;
            fixed(input, DataType::Decimal256(precision, scale), rows)?
        }
        14 => {
            let (precision, scale) = precision_and_scale(input, 9)?;
            fixed(input, DataType::Decimal32(precision, scale), rows)?
        }
        15 => {
            let (precision, scale) = precision_and_scale(input, 18)?;
            fixed(input, DataType::Decimal64(precision, scale), rows)?
        }
        16 => Arc::new(StringArray::from(strings(input, rows)?)),
        17 => Arc::new(LargeStringArray::from(strings(input, rows)?)),
        18 => Arc::new(StringViewArray::from(strings(input, rows)?)),
        19 => Arc::new(BinaryArray::from_iter(binaries(input, rows)?)),
        20 => Arc::new(LargeBinaryArray::from_iter(binaries(input, rows)?)),
        21 => Arc::new(BinaryViewArray::from_iter(binaries(input, rows)?)),
        22 => {
            let width = input.int_in_range(0..=20)?;
            fixed(input, DataType::FixedSizeBinary(width), rows)?
        }
        23 => fixed(input, DataType::Date32, rows)?,
        24 => fixed(input, DataType::Date64, rows)?,
        25 => fixed(input, DataType::Time32(TimeUnit::Second), rows)?,
        26 => fixed(input, DataType::Time32(TimeUnit::Millisecond), rows)?,
        27 => fixed(input, DataType::Time64(TimeUnit::Microsecond), rows)?,
        28 => fixed(input, DataType::Time64(TimeUnit::Nanosecond), rows)?,
        29 => {
            let unit = time_unit(input)?;
            let zone = if input.arbitrary()? {
                Some(Arc::from(*input.choose(&TIME_ZONES)?))
            } else {
                None
            };
            fixed(input, DataType::Timestamp(unit, zone), rows)?
        }
        30 => fixed(input, DataType::Interval(IntervalUnit::MonthDayNano), rows)?,
        31 => fixed(input, DataType::Interval(IntervalUnit::YearMonth), rows)?,
        32 => fixed(input, DataType::Interval(IntervalUnit::DayTime), rows)?,
        33 => {
            let unit = time_unit(input)?;
            fixed(input, DataType::Duration(unit), rows)?
        }
        34 => Arc::new(NullArray::new(rows)),
        35 => dictionary(input, rows)?,
        36 => {
            let lengths = lengths(input, rows)?;
            let values = column(input, lengths.iter().sum(), false)?;
            let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
            Arc::new(
                ListArray::try_new(
                    field,
                    OffsetBuffer::from_lengths(lengths),
                    values,
                    nulls(input, rows)?,
                )
                .map_err(|_| arbitrary::Error::IncorrectFormat)?,
            )
        }
        37 => {
            let lengths = lengths(input, rows)?;
            let values = column(input, lengths.iter().sum(), false)?;
            let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
            Arc::new(
                LargeListArray::try_new(
                    field,
                    OffsetBuffer::from_lengths(lengths),
                    values,
                    nulls(input, rows)?,
                )
                .map_err(|_| arbitrary::Error::IncorrectFormat)?,
            )
        }
        38 => {
            let lengths = lengths(input, rows)?;
            let inner = column(input, lengths.iter().sum(), false)?;
            let field = Arc::new(Field::new_list_field(inner.data_type().clone(), true));
            let values: ArrayRef = Arc::new(
                ListArray::try_new(field, OffsetBuffer::from_lengths(lengths), inner, None)
                    .map_err(|_| arbitrary::Error::IncorrectFormat)?,
            );
            let outer = vec![1; rows];
            let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
            Arc::new(
                ListArray::try_new(field, OffsetBuffer::from_lengths(outer), values, None)
                    .map_err(|_| arbitrary::Error::IncorrectFormat)?,
            )
        }
        _ => {
            let child = column(input, rows, false)?;
            let field = Arc::new(Field::new("f", child.data_type().clone(), true));
            Arc::new(
                StructArray::try_new(vec![field].into(), vec![child], nulls(input, rows)?)
                    .map_err(|_| arbitrary::Error::IncorrectFormat)?,
            )
        }
    })
}

/// A column of a fixed-width type whose values are the input's raw bytes.
fn fixed(input: &mut Unstructured<'_>, data_type: DataType, rows: usize) -> Result<ArrayRef> {
    let width_in_bits = match &data_type {
        DataType::Boolean => 1,
        DataType::FixedSizeBinary(width) => usize::try_from(*width).unwrap_or(0) * 8,
        other => other.primitive_width().unwrap_or(0) * 8,
    };
    let bytes = input.bytes((width_in_bits * rows).div_ceil(8))?;
    let data = ArrayData::builder(data_type)
        .len(rows)
        .add_buffer(Buffer::from_slice_ref(bytes))
        .nulls(nulls(input, rows)?)
        .build()
        .map_err(|_| arbitrary::Error::IncorrectFormat)?;
    Ok(make_array(data))
}

/// A decimal's precision (1 to `max`) and scale (from -10 to the precision).
fn precision_and_scale(input: &mut Unstructured<'_>, max: u8) -> Result<(u8, i8)> {
    let precision = input.int_in_range(1..=max)?;
    let scale = input.int_in_range(-10..=i8::try_from(precision).unwrap_or(i8::MAX))?;
    Ok((precision, scale))
}

fn time_unit(input: &mut Unstructured<'_>) -> Result<TimeUnit> {
    input
        .choose(&[
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ])
        .cloned()
}

/// Each row null or not, or no null buffer at all.
fn nulls(input: &mut Unstructured<'_>, rows: usize) -> Result<Option<NullBuffer>> {
    if !input.arbitrary::<bool>()? {
        return Ok(None);
    }
    let valid = (0..rows)
        .map(|_| input.arbitrary::<bool>())
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(NullBuffer::from(valid)))
}

fn strings(input: &mut Unstructured<'_>, rows: usize) -> Result<Vec<Option<String>>> {
    (0..rows).map(|_| input.arbitrary()).collect()
}

fn binaries(input: &mut Unstructured<'_>, rows: usize) -> Result<Vec<Option<Vec<u8>>>> {
    (0..rows).map(|_| input.arbitrary()).collect()
}

/// The lengths of `rows` lists, 0 to 3 items each.
fn lengths(input: &mut Unstructured<'_>, rows: usize) -> Result<Vec<usize>> {
    (0..rows).map(|_| input.int_in_range(0..=3)).collect()
}

/// Strings as a dictionary with `Int32` keys, each key pointing into the values.
fn dictionary(input: &mut Unstructured<'_>, rows: usize) -> Result<ArrayRef> {
    let count = input.int_in_range(1..=4)?;
    let values = StringArray::from(strings(input, count)?);
    let keys = (0..rows)
        .map(|_| {
            let key: Option<u8> = input.arbitrary()?;
            Ok(key.map(|key| i32::from(key) % i32::try_from(values.len()).unwrap_or(1)))
        })
        .collect::<Result<Vec<_>>>()?;
    let array = DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(values))
        .map_err(|_| arbitrary::Error::IncorrectFormat)?;
    Ok(Arc::new(array))
}

/// Asserts that `row` is a well-formed DataRow of `fields`.
fn check_row(fields: &[FieldInfo], row: &DataRow, batch: &RecordBatch) {
    assert_eq!(
        usize::try_from(row.field_count).ok(),
        Some(fields.len()),
        "one field per column of {:?}",
        batch.schema()
    );
    let mut data = &row.data[..];
    for field in fields {
        let (length, rest) = data
            .split_first_chunk::<4>()
            .unwrap_or_else(|| panic!("a field length for {}", field.datatype()));
        data = rest;
        let Ok(length) = usize::try_from(i32::from_be_bytes(*length)) else {
            continue; // NULL
        };
        assert!(
            length <= data.len(),
            "a {} field of {length} bytes in a row with {} left",
            field.datatype(),
            data.len()
        );
        let (value, rest) = data.split_at(length);
        data = rest;
        match field.format() {
            FieldFormat::Text => assert!(
                std::str::from_utf8(value).is_ok(),
                "a {} field in text is UTF-8: {value:?}",
                field.datatype()
            ),
            FieldFormat::Binary => {
                if let Some(width) = binary_width(field.datatype()) {
                    assert_eq!(length, width, "a binary {} field's width", field.datatype());
                }
            }
        }
    }
    assert!(data.is_empty(), "no bytes after the last field");
}

/// The width of a fixed-width type's binary form.
fn binary_width(data_type: &Type) -> Option<usize> {
    Some(match *data_type {
        Type::BOOL => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::FLOAT4 | Type::DATE => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIME | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
        Type::INTERVAL => 16,
        _ => return None,
    })
}
