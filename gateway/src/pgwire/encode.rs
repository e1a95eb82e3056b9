//! Arrow record batches to Postgres wire rows.
//!
//! The pgwire front end streams DataFusion results to clients; this module owns the
//! translation of one result schema and its batches:
//!
//! ```text
//!   Schema ──field_infos──▶ Vec<FieldInfo>   (RowDescription: OID, typmod, text/binary)
//!   RecordBatch ──encode_batch──▶ Vec<DataRow>   (one DataRow per row)
//! ```
//!
//! Each column is downcast once per batch into a typed reader (`Source`); values are then
//! written straight from the Arrow buffers (`&str`, `&[u8]`, integers) into one reused
//! [`DataRowEncoder`]. Text output goes through pgwire's `ToSqlText`, so it follows the
//! session's `FormatOptions` (DateStyle, `bytea_output`, `extra_float_digits`), except that
//! float infinities are spelled as PostgreSQL does (`Float`); binary output goes through
//! postgres-types' `ToSql`, the layouts PostgreSQL itself sends. `timestamptz` values are
//! instants and are shown in UTC (`+00`), whatever zone the Arrow type names.
//!
//! | Arrow                                            | Postgres (OID)          |
//! |--------------------------------------------------|-------------------------|
//! | Boolean                                          | bool (16)               |
//! | Int8, UInt8, Int16                               | int2 (21)               |
//! | Int32, UInt16                                    | int4 (23)               |
//! | Int64, UInt32                                    | int8 (20)               |
//! | UInt64                                           | numeric(20,0) (1700)    |
//! | Decimal32/64/128/256(p, s)                       | numeric(p,s) (1700)     |
//! | Float16, Float32                                 | float4 (700)            |
//! | Float64                                          | float8 (701)            |
//! | Utf8, LargeUtf8, Utf8View, Null                  | text (25)               |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | bytea (17)              |
//! | Date32, Date64                                   | date (1082)             |
//! | Time32(s, ms), Time64(µs, ns)                    | time (1083)             |
//! | Timestamp(unit, None)                            | timestamp (1114)        |
//! | Timestamp(unit, Some(tz))                        | timestamptz (1184)      |
//! | Interval(MonthDayNano)                           | interval (1186)         |
//! | Dictionary(_, V)                                 | as V                    |
//! | List / LargeList of any of the above             | the matching array type |
//!
//! Anything else (other intervals, durations, structs, maps, nested lists, …) is refused with
//! SQLSTATE 0A000 when the row description is built, before any row is sent.

use std::error::Error;
use std::fmt::Display;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayAccessor, ArrayRef, BinaryArray, BinaryViewArray, BooleanArray, Date32Array,
    Date64Array, Decimal256Array, FixedSizeBinaryArray, Float16Array, Float32Array, Float64Array,
    GenericListArray, Int8Array, Int16Array, Int32Array, Int64Array, IntervalMonthDayNanoArray,
    LargeBinaryArray, LargeListArray, LargeStringArray, ListArray, OffsetSizeTrait, PrimitiveArray,
    StringArray, StringViewArray, Time32MillisecondArray, Time32SecondArray,
    Time64MicrosecondArray, Time64NanosecondArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Decimal32Type, Decimal64Type, Decimal128Type, DecimalType,
    FieldRef, IntervalUnit, Schema, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, format_decimal_str,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::temporal_conversions::{
    date32_to_datetime, date64_to_datetime, time32ms_to_time, time32s_to_time, time64ns_to_time,
    time64us_to_time,
};
use pg_interval::Interval;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{CopyEncoder, DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, ToSql, to_sql_checked};
use rust_decimal::Decimal;
use tollgate_planner::information_schema::type_modifier;

use super::errors::user_error;

/// SQLSTATE `feature_not_supported`.
const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// SQLSTATE `protocol_violation`.
const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE `numeric_value_out_of_range`.
const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
/// SQLSTATE `datetime_field_overflow`.
const DATETIME_FIELD_OVERFLOW: &str = "22008";
/// SQLSTATE `internal_error`.
const INTERNAL_ERROR: &str = "XX000";

/// The Postgres type a column of `data_type` is sent as (see the module table).
///
/// `UInt64` becomes `numeric` rather than `int8` so that values above `i64::MAX` stay exact
/// instead of failing mid-stream.
///
/// # Errors
///
/// `PgWireError::UserError` with SQLSTATE 0A000, "type X is not supported", for an Arrow
/// type without a mapping.
pub fn pg_type(data_type: &DataType) -> PgWireResult<Type> {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) => {
            scalar_types(item.data_type()).map(|(_, array)| array)
        }
        other => scalar_types(other).map(|(scalar, _)| scalar),
    }
    .ok_or_else(|| {
        user_error(
            FEATURE_NOT_SUPPORTED,
            format!("type {data_type} is not supported"),
        )
    })
}

/// The row description for `schema`, each column in the format `format` asks for.
///
/// Decimal columns carry their `numeric(p, s)` type modifier (and `UInt64` that of
/// `numeric(20, 0)`), so clients display the declared scale.
///
/// # Errors
///
/// SQLSTATE 0A000 if a column type is not supported (see [`pg_type`]); 08P01 if `format`
/// lists per-column codes for a different number of columns.
pub fn field_infos(schema: &Schema, format: &Format) -> PgWireResult<Vec<FieldInfo>> {
    let columns = schema.fields().len();
    if let Format::Individual(codes) = format
        && codes.len() != columns
    {
        return Err(user_error(
            PROTOCOL_VIOLATION,
            format!(
                "bind message has {} result formats but query has {columns} columns",
                codes.len()
            ),
        ));
    }
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let data_type = field.data_type();
            Ok(FieldInfo::new(
                field.name().clone(),
                None,
                None,
                pg_type(data_type)?,
                format.format_for(index),
            )
            .with_type_modifier(type_modifier(data_type)))
        })
        .collect()
}

/// Encodes every row of `batch` as a `DataRow`, each field in its `fields` type and format.
///
/// `fields` must come from [`field_infos`] for the batch's schema. Columns are downcast once
/// per batch and one [`DataRowEncoder`] is reused for all rows; dictionary-encoded columns are
/// decoded once per batch.
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

/// Where encoded fields go: a `DataRow` being built, or a `COPY` row.
enum RowSink {
    Data(DataRowEncoder),
    Copy(CopyEncoder),
}

impl RowSink {
    fn put<T>(
        &mut self,
        value: &T,
        data_type: &Type,
        format: FieldFormat,
        options: &FormatOptions,
    ) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        match self {
            Self::Data(encoder) => {
                encoder.encode_field_with_type_and_format(value, data_type, format, options)
            }
            Self::Copy(encoder) => encoder.encode_field(value),
        }
    }
}

/// The scalar Postgres type of an Arrow type and its array type, if it has a mapping.
fn scalar_types(data_type: &DataType) -> Option<(Type, Type)> {
    use DataType as D;
    Some(match data_type {
        D::Null | D::Utf8 | D::LargeUtf8 | D::Utf8View => (Type::TEXT, Type::TEXT_ARRAY),
        D::Boolean => (Type::BOOL, Type::BOOL_ARRAY),
        D::Int8 | D::UInt8 | D::Int16 => (Type::INT2, Type::INT2_ARRAY),
        D::Int32 | D::UInt16 => (Type::INT4, Type::INT4_ARRAY),
        D::Int64 | D::UInt32 => (Type::INT8, Type::INT8_ARRAY),
        D::UInt64 | D::Decimal32(..) | D::Decimal64(..) | D::Decimal128(..) | D::Decimal256(..) => {
            (Type::NUMERIC, Type::NUMERIC_ARRAY)
        }
        D::Float16 | D::Float32 => (Type::FLOAT4, Type::FLOAT4_ARRAY),
        D::Float64 => (Type::FLOAT8, Type::FLOAT8_ARRAY),
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => {
            (Type::BYTEA, Type::BYTEA_ARRAY)
        }
        D::Date32 | D::Date64 => (Type::DATE, Type::DATE_ARRAY),
        D::Time32(TimeUnit::Second | TimeUnit::Millisecond)
        | D::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond) => (Type::TIME, Type::TIME_ARRAY),
        D::Timestamp(_, None) => (Type::TIMESTAMP, Type::TIMESTAMP_ARRAY),
        D::Timestamp(_, Some(_)) => (Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY),
        D::Interval(IntervalUnit::MonthDayNano) => (Type::INTERVAL, Type::INTERVAL_ARRAY),
        D::Dictionary(_, value) => return scalar_types(value),
        _ => return None,
    })
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

/// Writes one column's value of a row into the row being built.
trait ColumnEncoder {
    fn encode(&mut self, row: usize, out: &mut RowSink) -> PgWireResult<()>;
}

/// Null-aware, typed read access to the values of one Arrow array.
trait Source {
    /// A value pgwire can write in both formats; borrowed from the array where possible.
    type Value: ToSql + ToSqlText;

    /// The value at `index`, `None` for NULL.
    fn get(&self, index: usize) -> PgWireResult<Option<Self::Value>>;
}

/// A downcast array, its logical nulls and the conversion to a wire value.
struct Values<A, F> {
    array: A,
    nulls: Option<NullBuffer>,
    convert: F,
}

fn values<A, F, V>(array: A, convert: F) -> Values<A, F>
where
    A: ArrayAccessor,
    F: Fn(A::Item) -> PgWireResult<V>,
{
    Values {
        nulls: array.logical_nulls(),
        array,
        convert,
    }
}

impl<A, F, V> Source for Values<A, F>
where
    A: ArrayAccessor,
    F: Fn(A::Item) -> PgWireResult<V>,
    V: ToSql + ToSqlText,
{
    type Value = V;

    fn get(&self, index: usize) -> PgWireResult<Option<V>> {
        if self
            .nulls
            .as_ref()
            .is_some_and(|nulls| nulls.is_null(index))
        {
            return Ok(None);
        }
        (self.convert)(self.array.value(index)).map(Some)
    }
}

/// The values of a `Null` column, sent as `text`.
struct AllNull;

impl Source for AllNull {
    type Value = &'static str;

    fn get(&self, _index: usize) -> PgWireResult<Option<&'static str>> {
        Ok(None)
    }
}

/// What a [`Source`] becomes: a scalar column or the items of a list column.
trait Wrap<'a> {
    fn wrap<S>(self, source: S) -> Box<dyn ColumnEncoder + 'a>
    where
        S: Source + 'a,
        S::Value: 'a;
}

/// A scalar column.
struct Scalar<'a, S> {
    field: &'a FieldInfo,
    source: S,
}

impl<'a> Wrap<'a> for &'a FieldInfo {
    fn wrap<S>(self, source: S) -> Box<dyn ColumnEncoder + 'a>
    where
        S: Source + 'a,
        S::Value: 'a,
    {
        Box::new(Scalar {
            field: self,
            source,
        })
    }
}

impl<S: Source> ColumnEncoder for Scalar<'_, S> {
    fn encode(&mut self, row: usize, out: &mut RowSink) -> PgWireResult<()> {
        let field = self.field;
        out.put(
            &self.source.get(row)?,
            field.datatype(),
            field.format(),
            field.format_options(),
        )
    }
}

/// A list column sent as a one-dimensional Postgres array.
struct List<'a, O, S: Source> {
    field: &'a FieldInfo,
    offsets: &'a [O],
    nulls: Option<NullBuffer>,
    items: S,
    /// Reused for every row, so a row's items are gathered without allocating.
    buffer: Vec<Option<S::Value>>,
}

/// The shape of a list column, waiting for its item [`Source`].
struct ListShape<'a, O> {
    field: &'a FieldInfo,
    offsets: &'a [O],
    nulls: Option<NullBuffer>,
}

impl<'a, O: OffsetSizeTrait> Wrap<'a> for ListShape<'a, O> {
    fn wrap<S>(self, items: S) -> Box<dyn ColumnEncoder + 'a>
    where
        S: Source + 'a,
        S::Value: 'a,
    {
        Box::new(List {
            field: self.field,
            offsets: self.offsets,
            nulls: self.nulls,
            items,
            buffer: Vec::new(),
        })
    }
}

impl<O: OffsetSizeTrait, S: Source> ColumnEncoder for List<'_, O, S> {
    fn encode(&mut self, row: usize, out: &mut RowSink) -> PgWireResult<()> {
        let field = self.field;
        let (ty, format, options) = (field.datatype(), field.format(), field.format_options());
        if self.nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
            let null: Option<&[Option<S::Value>]> = None;
            return out.put(&null, ty, format, options);
        }
        // A list array holds len + 1 offsets, so row + 1 is in bounds.
        let (start, end) = (
            self.offsets[row].as_usize(),
            self.offsets[row + 1].as_usize(),
        );
        self.buffer.clear();
        for index in start..end {
            self.buffer.push(self.items.get(index)?);
        }
        out.put(&self.buffer.as_slice(), ty, format, options)
    }
}

/// The encoder for one column, after checking that `field` describes `array`.
fn column_encoder<'a>(
    field: &'a FieldInfo,
    array: &'a dyn Array,
) -> PgWireResult<Box<dyn ColumnEncoder + 'a>> {
    // postgres-types panics when an array value is written with a scalar type, so a row
    // description that does not match the data must stop here.
    if pg_type(array.data_type())? != *field.datatype() {
        return Err(mismatch());
    }
    match array.data_type() {
        DataType::List(_) => list(field, downcast::<ListArray>(array)?),
        DataType::LargeList(_) => list(field, downcast::<LargeListArray>(array)?),
        _ => with_source(array, field),
    }
}

fn list<'a, O: OffsetSizeTrait>(
    field: &'a FieldInfo,
    array: &'a GenericListArray<O>,
) -> PgWireResult<Box<dyn ColumnEncoder + 'a>> {
    let shape = ListShape {
        field,
        offsets: array.value_offsets(),
        nulls: array.logical_nulls(),
    };
    with_source(array.values().as_ref(), shape)
}

/// Downcasts `array` once and hands its typed [`Source`] to `wrap`.
fn with_source<'a, W: Wrap<'a>>(
    array: &'a dyn Array,
    wrap: W,
) -> PgWireResult<Box<dyn ColumnEncoder + 'a>> {
    use DataType as D;
    Ok(match array.data_type() {
        D::Null => wrap.wrap(AllNull),
        D::Boolean => wrap.wrap(values(downcast::<BooleanArray>(array)?, Ok)),
        D::Int8 => wrap.wrap(values(downcast::<Int8Array>(array)?, |v| Ok(i16::from(v)))),
        D::Int16 => wrap.wrap(values(downcast::<Int16Array>(array)?, Ok)),
        D::Int32 => wrap.wrap(values(downcast::<Int32Array>(array)?, Ok)),
        D::Int64 => wrap.wrap(values(downcast::<Int64Array>(array)?, Ok)),
        D::UInt8 => wrap.wrap(values(downcast::<UInt8Array>(array)?, |v| Ok(i16::from(v)))),
        D::UInt16 => wrap.wrap(values(downcast::<UInt16Array>(array)?, |v| {
            Ok(i32::from(v))
        })),
        D::UInt32 => wrap.wrap(values(downcast::<UInt32Array>(array)?, |v| {
            Ok(i64::from(v))
        })),
        D::UInt64 => wrap.wrap(values(downcast::<UInt64Array>(array)?, |v| {
            Ok(Decimal::from(v))
        })),
        D::Float16 => wrap.wrap(values(downcast::<Float16Array>(array)?, |v| {
            Ok(Float(f32::from(v)))
        })),
        D::Float32 => wrap.wrap(values(downcast::<Float32Array>(array)?, |v| Ok(Float(v)))),
        D::Float64 => wrap.wrap(values(downcast::<Float64Array>(array)?, |v| Ok(Float(v)))),
        D::Decimal32(_, scale) => decimals::<Decimal32Type, W>(array, *scale, wrap)?,
        D::Decimal64(_, scale) => decimals::<Decimal64Type, W>(array, *scale, wrap)?,
        D::Decimal128(_, scale) => decimals::<Decimal128Type, W>(array, *scale, wrap)?,
        D::Decimal256(_, scale) => {
            let scale = *scale;
            let array = downcast::<Decimal256Array>(array)?;
            wrap.wrap(values(array, move |v| {
                let mantissa = v.to_i128().ok_or_else(|| numeric_out_of_range(&v, scale))?;
                decimal(mantissa, scale)
            }))
        }
        D::Utf8 => wrap.wrap(values(downcast::<StringArray>(array)?, Ok)),
        D::LargeUtf8 => wrap.wrap(values(downcast::<LargeStringArray>(array)?, Ok)),
        D::Utf8View => wrap.wrap(values(downcast::<StringViewArray>(array)?, Ok)),
        D::Binary => wrap.wrap(values(downcast::<BinaryArray>(array)?, Ok)),
        D::LargeBinary => wrap.wrap(values(downcast::<LargeBinaryArray>(array)?, Ok)),
        D::BinaryView => wrap.wrap(values(downcast::<BinaryViewArray>(array)?, Ok)),
        D::FixedSizeBinary(_) => wrap.wrap(values(downcast::<FixedSizeBinaryArray>(array)?, Ok)),
        D::Date32 => wrap.wrap(values(downcast::<Date32Array>(array)?, |v| {
            in_range(date32_to_datetime(v).map(|t| IsoDate(t.date())), "date")
        })),
        D::Date64 => wrap.wrap(values(downcast::<Date64Array>(array)?, |v| {
            in_range(date64_to_datetime(v).map(|t| IsoDate(t.date())), "date")
        })),
        D::Time32(TimeUnit::Second) => wrap
            .wrap(values(downcast::<Time32SecondArray>(array)?, |v| {
                time(time32s_to_time(v))
            })),
        D::Time32(TimeUnit::Millisecond) => {
            let array = downcast::<Time32MillisecondArray>(array)?;
            wrap.wrap(values(array, |v| time(time32ms_to_time(v))))
        }
        D::Time64(TimeUnit::Microsecond) => {
            let array = downcast::<Time64MicrosecondArray>(array)?;
            wrap.wrap(values(array, |v| time(time64us_to_time(v))))
        }
        D::Time64(TimeUnit::Nanosecond) => {
            let array = downcast::<Time64NanosecondArray>(array)?;
            wrap.wrap(values(array, |v| time(time64ns_to_time(v))))
        }
        D::Timestamp(TimeUnit::Second, tz) => {
            timestamps::<TimestampSecondType, W>(array, tz.is_some(), wrap)?
        }
        D::Timestamp(TimeUnit::Millisecond, tz) => {
            timestamps::<TimestampMillisecondType, W>(array, tz.is_some(), wrap)?
        }
        D::Timestamp(TimeUnit::Microsecond, tz) => {
            timestamps::<TimestampMicrosecondType, W>(array, tz.is_some(), wrap)?
        }
        D::Timestamp(TimeUnit::Nanosecond, tz) => {
            timestamps::<TimestampNanosecondType, W>(array, tz.is_some(), wrap)?
        }
        D::Interval(IntervalUnit::MonthDayNano) => {
            let array = downcast::<IntervalMonthDayNanoArray>(array)?;
            // PostgreSQL keeps microseconds: nanoseconds are truncated.
            wrap.wrap(values(array, |v| {
                Ok(TrimmedInterval(Interval::new(
                    v.months,
                    v.days,
                    v.nanoseconds / 1_000,
                )))
            }))
        }
        other => {
            return Err(user_error(
                FEATURE_NOT_SUPPORTED,
                format!("type {other} is not supported"),
            ));
        }
    })
}

/// Decimals whose unscaled values widen to `i128`.
fn decimals<'a, T, W>(
    array: &'a dyn Array,
    scale: i8,
    wrap: W,
) -> PgWireResult<Box<dyn ColumnEncoder + 'a>>
where
    T: DecimalType,
    T::Native: Into<i128>,
    W: Wrap<'a>,
{
    let array = downcast::<PrimitiveArray<T>>(array)?;
    Ok(wrap.wrap(values(array, move |v: T::Native| {
        decimal(v.into(), scale).map(Numeric)
    })))
}

/// Timestamps of unit `T`: `timestamptz` (an instant, shown in UTC) when the Arrow type has a
/// time zone, else `timestamp` (wall-clock time).
fn timestamps<'a, T: ArrowTimestampType, W: Wrap<'a>>(
    array: &'a dyn Array,
    zoned: bool,
    wrap: W,
) -> PgWireResult<Box<dyn ColumnEncoder + 'a>> {
    let array = downcast::<PrimitiveArray<T>>(array)?;
    Ok(if zoned {
        wrap.wrap(values(array, instant::<T>))
    } else {
        wrap.wrap(values(array, |v| instant::<T>(v).map(|t| t.naive_utc())))
    })
}

/// The instant `value` units of `T` after the Unix epoch.
fn instant<T: ArrowTimestampType>(value: i64) -> PgWireResult<DateTime<Utc>> {
    let instant = match T::UNIT {
        TimeUnit::Second => DateTime::from_timestamp(value, 0),
        TimeUnit::Millisecond => DateTime::from_timestamp_millis(value),
        TimeUnit::Microsecond => DateTime::from_timestamp_micros(value),
        TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(value)),
    };
    in_range(instant, "timestamp")
}

fn time(value: Option<NaiveTime>) -> PgWireResult<NaiveTime> {
    in_range(value, "time")
}

fn in_range<T>(value: Option<T>, kind: &str) -> PgWireResult<T> {
    value.ok_or_else(|| user_error(DATETIME_FIELD_OVERFLOW, format!("{kind} out of range")))
}

/// The exact `numeric` for the Arrow decimal `mantissa × 10^-scale`.
///
/// rust_decimal holds a 96-bit unscaled value with at most 28 fractional digits. A value
/// outside that is first stripped of trailing fractional zeros, which keeps it exact (so
/// `1.50` at scale 30 still encodes); if it still does not fit it is an error, never rounded.
fn decimal(mantissa: i128, scale: i8) -> PgWireResult<Decimal> {
    let out_of_range = || numeric_out_of_range(&mantissa, scale);
    let (mut unscaled, mut digits) = match u32::try_from(scale) {
        Ok(digits) => (mantissa, digits),
        Err(_) => {
            let factor = 10i128.checked_pow(u32::from(scale.unsigned_abs()));
            let scaled = factor.and_then(|factor| mantissa.checked_mul(factor));
            (scaled.ok_or_else(out_of_range)?, 0)
        }
    };
    loop {
        match Decimal::try_from_i128_with_scale(unscaled, digits) {
            Ok(decimal) => return Ok(decimal),
            Err(_) if digits > 0 && unscaled % 10 == 0 => {
                unscaled /= 10;
                digits -= 1;
            }
            Err(_) => return Err(out_of_range()),
        }
    }
}

/// SQLSTATE 22003 for the decimal `mantissa × 10^-scale`, written out in full.
fn numeric_out_of_range(mantissa: &dyn Display, scale: i8) -> PgWireError {
    let value = format_decimal_str(&mantissa.to_string(), usize::MAX, scale);
    user_error(
        NUMERIC_VALUE_OUT_OF_RANGE,
        format!(
            "numeric value {value} cannot be sent exactly: at most 28 digits after the decimal \
             point and 28 significant digits are supported"
        ),
    )
}

/// A float whose text form is PostgreSQL's: pgwire writes infinities as `inf` and loses the
/// sign of `-0`, which JDBC and other drivers cannot read back.
#[derive(Debug)]
struct Float<T>(T);

impl<T: ToSqlText + Into<f64> + Copy> ToSqlText for Float<T> {
    fn to_sql_text(
        &self,
        ty: &Type,
        out: &mut BytesMut,
        format_options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let value: f64 = self.0.into();
        match value {
            f64::INFINITY => out.put_slice(b"Infinity"),
            f64::NEG_INFINITY => out.put_slice(b"-Infinity"),
            0.0 if value.is_sign_negative() => out.put_slice(b"-0"),
            _ => return self.0.to_sql_text(ty, out, format_options),
        }
        Ok(IsNull::No)
    }
}

/// `ToSql` for a wrapper that changes only the text form: the binary form is the wrapped
/// value's.
macro_rules! binary_as_wrapped {
    ($wrapper:ty, $wrapped:ty) => {
        impl ToSql for $wrapper {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut BytesMut,
            ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
                ToSql::to_sql(&self.0, ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <$wrapped as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }
    };
}

/// A `date` whose text is written directly in ISO form (`1996-03-13`), the hot path of
/// streaming dates; other date styles and years outside 1..=9999 go through pgwire.
#[derive(Debug)]
struct IsoDate(NaiveDate);

impl ToSqlText for IsoDate {
    fn to_sql_text(
        &self,
        ty: &Type,
        out: &mut BytesMut,
        format_options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let date = self.0;
        let year = date.year();
        if !format_options.date_style.starts_with("ISO") || !(1..=9999).contains(&year) {
            return date.to_sql_text(ty, out, format_options);
        }
        let (month, day) = (date.month(), date.day());
        let digit = |n: u32| b'0' + (n % 10) as u8;
        let year = year.unsigned_abs();
        out.put_slice(&[
            digit(year / 1000),
            digit(year / 100),
            digit(year / 10),
            digit(year),
            b'-',
            digit(month / 10),
            digit(month),
            b'-',
            digit(day / 10),
            digit(day),
        ]);
        Ok(IsNull::No)
    }
}

/// An `interval` whose text has PostgreSQL's fraction of a second: as many digits as it
/// needs (`04:05:06.5`), where pgwire always writes six (`04:05:06.500000`).
#[derive(Debug)]
struct TrimmedInterval(Interval);

impl ToSqlText for TrimmedInterval {
    fn to_sql_text(
        &self,
        ty: &Type,
        out: &mut BytesMut,
        format_options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let start = out.len();
        let null = self.0.to_sql_text(ty, out, format_options)?;
        // The fraction ends the postgres style's text; where a unit follows it (verbose and
        // ISO 8601 styles) the text is kept.
        let text = &out[start..];
        if let Some(point) = text.iter().rposition(|b| *b == b'.') {
            let digits = &text[point + 1..];
            let kept = digits.iter().rposition(|b| *b != b'0').map_or(0, |i| i + 1);
            let fraction_ends_text = digits.iter().all(u8::is_ascii_digit);
            if fraction_ends_text {
                let end = if kept == 0 { point } else { point + 1 + kept };
                out.truncate(start + end);
            }
        }
        Ok(null)
    }
}

binary_as_wrapped!(TrimmedInterval, Interval);
binary_as_wrapped!(Float<f32>, f32);
binary_as_wrapped!(Float<f64>, f64);
binary_as_wrapped!(IsoDate, NaiveDate);

/// A `numeric` whose text is written from its unscaled value and scale (as PostgreSQL shows
/// it: every digit of the scale, `-0.50`), much cheaper than formatting through rust_decimal.
#[derive(Debug)]
struct Numeric(Decimal);

impl ToSqlText for Numeric {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _format_options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let mantissa = self.0.mantissa();
        let scale = self.0.scale() as usize;
        if mantissa < 0 {
            out.put_u8(b'-');
        }
        let digits = mantissa.unsigned_abs().to_string();
        if digits.len() > scale {
            let (whole, fraction) = digits.split_at(digits.len() - scale);
            out.put_slice(whole.as_bytes());
            if scale > 0 {
                out.put_u8(b'.');
                out.put_slice(fraction.as_bytes());
            }
        } else {
            out.put_slice(b"0.");
            out.put_bytes(b'0', scale - digits.len());
            out.put_slice(digits.as_bytes());
        }
        Ok(IsNull::No)
    }
}

binary_as_wrapped!(Numeric, Decimal);

fn downcast<T: Array + 'static>(array: &dyn Array) -> PgWireResult<&T> {
    array.as_any().downcast_ref::<T>().ok_or_else(mismatch)
}

fn mismatch() -> PgWireError {
    user_error(
        INTERNAL_ERROR,
        "internal error: result batch does not match its row description",
    )
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};
    use datafusion::arrow::array::{
        Decimal32Array, Decimal64Array, Decimal128Array, Decimal128Builder, DictionaryArray,
        LargeListBuilder, ListBuilder, NullArray, StringBuilder, StringDictionaryBuilder,
        TimestampMicrosecondBuilder,
    };
    use datafusion::arrow::datatypes::{
        Field, Fields, Int32Type, IntervalMonthDayNano, IntervalUnit, i256,
    };
    use pgwire::error::ErrorInfo;
    use postgres_types::FromSqlOwned;

    use super::*;

    /// Encodes a one-column batch; each row's field, `None` for NULL.
    fn encode(array: ArrayRef, format: FieldFormat) -> Vec<Option<Vec<u8>>> {
        try_encode(array, format).expect("encodes")
    }

    fn try_encode(array: ArrayRef, format: FieldFormat) -> PgWireResult<Vec<Option<Vec<u8>>>> {
        let field = Field::new("c", array.data_type().clone(), true);
        let schema = Arc::new(Schema::new(vec![field]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![array]).expect("valid batch");
        let fields = Arc::new(field_infos(&schema, &Format::from(format.value()))?);
        let rows = encode_batch(&fields, &batch)?;
        Ok(rows
            .iter()
            .map(|row| {
                let [cell]: [_; 1] = cells(row).try_into().expect("one field");
                cell
            })
            .collect())
    }

    /// The fields of a `DataRow`: a 4-byte length (-1 for NULL) then the bytes, each.
    fn cells(row: &DataRow) -> Vec<Option<Vec<u8>>> {
        let mut data = &row.data[..];
        let cells = (0..row.field_count)
            .map(|_| {
                let (length, rest) = data.split_at(4);
                data = rest;
                let length = i32::from_be_bytes(length.try_into().expect("4 bytes"));
                usize::try_from(length).ok().map(|length| {
                    let (value, rest) = data.split_at(length);
                    data = rest;
                    value.to_vec()
                })
            })
            .collect();
        assert!(data.is_empty(), "trailing bytes in DataRow");
        cells
    }

    fn text(array: ArrayRef) -> Vec<Option<String>> {
        encode(array, FieldFormat::Text)
            .into_iter()
            .map(|cell| cell.map(|bytes| String::from_utf8(bytes).expect("utf-8")))
            .collect()
    }

    /// Binary fields decoded with postgres-types, as a client driver would.
    fn binary<T: FromSqlOwned>(array: ArrayRef) -> Vec<Option<T>> {
        let ty = pg_type(array.data_type()).expect("supported");
        encode(array, FieldFormat::Binary)
            .into_iter()
            .map(|cell| cell.map(|bytes| T::from_sql(&ty, &bytes).expect("decodes")))
            .collect()
    }

    /// Asserts a column's text fields, and its binary fields as decoded into `T`.
    #[track_caller]
    fn assert_column<T>(array: ArrayRef, text_form: &[Option<&str>], binary_form: &[Option<T>])
    where
        T: FromSqlOwned + PartialEq + std::fmt::Debug,
    {
        assert_eq!(
            text(Arc::clone(&array)),
            strings(text_form),
            "{}",
            array.data_type()
        );
        assert_eq!(binary::<T>(array), binary_form);
    }

    fn strings(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    fn code(error: PgWireError) -> String {
        ErrorInfo::from(error).code
    }

    fn item(data_type: DataType) -> FieldRef {
        Arc::new(Field::new("item", data_type, true))
    }

    #[test]
    fn arrow_types_map_to_postgres_types() {
        use DataType as D;
        let tz = Some(Arc::from("+02:00"));
        let dictionary = D::Dictionary(Box::new(D::Int32), Box::new(D::Utf8));
        let mut cases = vec![
            (D::Int8, Type::INT2),
            (D::UInt8, Type::INT2),
            (D::Int16, Type::INT2),
            (D::Int32, Type::INT4),
            (D::UInt16, Type::INT4),
            (D::Int64, Type::INT8),
            (D::UInt32, Type::INT8),
            (D::UInt64, Type::NUMERIC),
            (D::Float16, Type::FLOAT4),
            (D::Float32, Type::FLOAT4),
            (D::Float64, Type::FLOAT8),
            (D::Decimal128(10, 2), Type::NUMERIC),
            (D::Decimal256(40, 2), Type::NUMERIC),
            (D::Utf8, Type::TEXT),
            (D::LargeUtf8, Type::TEXT),
            (D::Utf8View, Type::TEXT),
            (D::Null, Type::TEXT),
            (dictionary.clone(), Type::TEXT),
            (D::Boolean, Type::BOOL),
            (D::Date32, Type::DATE),
            (D::Date64, Type::DATE),
            (D::Time32(TimeUnit::Second), Type::TIME),
            (D::Time64(TimeUnit::Nanosecond), Type::TIME),
            (D::Binary, Type::BYTEA),
            (D::LargeBinary, Type::BYTEA),
            (D::BinaryView, Type::BYTEA),
            (D::FixedSizeBinary(16), Type::BYTEA),
            (D::List(item(D::Int32)), Type::INT4_ARRAY),
            (D::List(item(D::Int8)), Type::INT2_ARRAY),
            (D::List(item(D::Int64)), Type::INT8_ARRAY),
            (D::List(item(D::Float64)), Type::FLOAT8_ARRAY),
            (D::List(item(D::Boolean)), Type::BOOL_ARRAY),
            (D::List(item(D::Date32)), Type::DATE_ARRAY),
            (D::List(item(D::Binary)), Type::BYTEA_ARRAY),
            (D::List(item(D::Decimal128(5, 1))), Type::NUMERIC_ARRAY),
            (D::List(item(dictionary)), Type::TEXT_ARRAY),
            (D::LargeList(item(D::Utf8View)), Type::TEXT_ARRAY),
        ];
        for unit in [
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ] {
            cases.push((D::Timestamp(unit, None), Type::TIMESTAMP));
            cases.push((D::Timestamp(unit, tz.clone()), Type::TIMESTAMPTZ));
            let zoned = D::Timestamp(unit, tz.clone());
            cases.push((D::List(item(zoned)), Type::TIMESTAMPTZ_ARRAY));
        }
        for (data_type, expected) in cases {
            assert_eq!(
                pg_type(&data_type).expect("supported"),
                expected,
                "{data_type}"
            );
        }
        let oids = [
            Type::INT2,
            Type::INT4_ARRAY,
            Type::NUMERIC,
            Type::TIMESTAMPTZ,
            Type::BYTEA,
        ];
        assert_eq!(oids.map(|t| t.oid()), [21, 1007, 1700, 1184, 17]);
    }

    #[test]
    fn unsupported_types_are_refused_with_0a000() {
        use DataType as D;
        for data_type in [
            D::Interval(IntervalUnit::YearMonth),
            D::Duration(TimeUnit::Second),
            D::Struct(Fields::empty()),
            D::List(item(D::List(item(D::Int32)))),
        ] {
            let info = ErrorInfo::from(pg_type(&data_type).expect_err("unsupported"));
            assert_eq!(info.code, "0A000");
            assert_eq!(info.message, format!("type {data_type} is not supported"));
            let schema = Schema::new(vec![Field::new("c", data_type, true)]);
            let error = field_infos(&schema, &Format::UnifiedText).expect_err("unsupported");
            assert_eq!(code(error), "0A000");
        }
    }

    #[test]
    fn field_infos_carry_formats_and_numeric_typmods() {
        let schema = Schema::new(vec![
            Field::new("price", DataType::Decimal128(10, 2), true),
            Field::new("n", DataType::UInt64, false),
            Field::new(
                "tags",
                DataType::List(item(DataType::Decimal128(5, 1))),
                true,
            ),
            Field::new("name", DataType::Utf8, true),
            Field::new("hundreds", DataType::Decimal128(5, -2), true),
        ]);
        let infos = field_infos(&schema, &Format::Individual(vec![0, 1, 1, 0, 1])).expect("ok");
        let names: Vec<_> = infos.iter().map(FieldInfo::name).collect();
        assert_eq!(names, ["price", "n", "tags", "name", "hundreds"]);
        let formats: Vec<_> = infos.iter().map(FieldInfo::format).collect();
        use FieldFormat::{Binary, Text};
        assert_eq!(formats, [Text, Binary, Binary, Text, Binary]);
        let types: Vec<_> = infos.iter().map(|i| i.datatype().clone()).collect();
        assert_eq!(
            types,
            [
                Type::NUMERIC,
                Type::NUMERIC,
                Type::NUMERIC_ARRAY,
                Type::TEXT,
                Type::NUMERIC
            ]
        );
        let typmods: Vec<_> = infos.iter().map(FieldInfo::type_modifier).collect();
        let negative_scale = ((5 << 16) | (-2 & 0x7ff)) + 4;
        assert_eq!(
            typmods,
            [
                (10 << 16 | 2) + 4,
                (20 << 16) + 4,
                (5 << 16 | 1) + 4,
                -1,
                negative_scale
            ]
        );

        let binary = field_infos(&schema, &Format::UnifiedBinary).expect("ok");
        assert!(binary.iter().all(|i| i.format() == Binary));
        let error = field_infos(&schema, &Format::Individual(vec![0, 1])).expect_err("count");
        assert_eq!(code(error), "08P01");
    }

    #[test]
    fn integers_widen_to_postgres_integers() {
        let int8 = Int8Array::from(vec![Some(-128), None, Some(127)]);
        let text_form = [Some("-128"), None, Some("127")];
        assert_column(
            Arc::new(int8),
            &text_form,
            &[Some(-128i16), None, Some(127)],
        );
        let uint8 = UInt8Array::from(vec![Some(255), None]);
        assert_column(Arc::new(uint8), &[Some("255"), None], &[Some(255i16), None]);
        let int16 = Int16Array::from(vec![Some(i16::MIN), None]);
        assert_column(
            Arc::new(int16),
            &[Some("-32768"), None],
            &[Some(i16::MIN), None],
        );
        let int32: ArrayRef = Arc::new(Int32Array::from(vec![Some(42), None, Some(i32::MIN)]));
        let text_form = [Some("42"), None, Some("-2147483648")];
        assert_column(
            Arc::clone(&int32),
            &text_form,
            &[Some(42), None, Some(i32::MIN)],
        );
        assert_eq!(
            encode(int32, FieldFormat::Binary)[0],
            Some(vec![0, 0, 0, 42])
        );
        let uint16 = UInt16Array::from(vec![Some(u16::MAX), None]);
        assert_column(
            Arc::new(uint16),
            &[Some("65535"), None],
            &[Some(65_535i32), None],
        );
        let int64 = Int64Array::from(vec![Some(i64::MAX), None]);
        let text_form = [Some("9223372036854775807"), None];
        assert_column(Arc::new(int64), &text_form, &[Some(i64::MAX), None]);
        let uint32 = UInt32Array::from(vec![Some(u32::MAX), None]);
        let text_form = [Some("4294967295"), None];
        assert_column(
            Arc::new(uint32),
            &text_form,
            &[Some(i64::from(u32::MAX)), None],
        );
        let uint64 = UInt64Array::from(vec![Some(u64::MAX), None, Some(0)]);
        let text_form = [Some("18446744073709551615"), None, Some("0")];
        let binary_form = [Some(Decimal::from(u64::MAX)), None, Some(Decimal::ZERO)];
        assert_column(Arc::new(uint64), &text_form, &binary_form);
    }

    #[test]
    fn interval_text_has_the_fraction_it_needs() {
        let microseconds = |us: i64| IntervalMonthDayNano::new(0, 0, us * 1_000);
        let intervals: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(14, 3, 14_706_500_000_000)),
            Some(microseconds(1_250_000)),
            Some(microseconds(3_000_000)),
            Some(microseconds(1)),
            None,
        ]));
        assert_eq!(
            text(intervals),
            strings(&[
                Some("1 year 2 mons 3 days 04:05:06.5"),
                Some("00:00:01.25"),
                Some("00:00:03"),
                Some("00:00:00.000001"),
                None,
            ])
        );
    }

    #[test]
    fn floats_in_text_and_binary() {
        let values = vec![
            Some(1.5),
            None,
            Some(f32::NAN),
            Some(f32::INFINITY),
            Some(0.1),
        ];
        let float32: ArrayRef = Arc::new(Float32Array::from(values));
        let expected = [
            Some("1.5"),
            None,
            Some("NaN"),
            Some("Infinity"),
            Some("0.1"),
        ];
        assert_eq!(text(Arc::clone(&float32)), strings(&expected));
        let decoded = binary::<f32>(float32);
        assert_eq!(decoded[0], Some(1.5));
        assert!(decoded[2].is_some_and(f32::is_nan));
        assert_eq!(decoded[4].map(f32::to_bits), Some(0.1f32.to_bits()));

        let values = vec![
            Some(0.1),
            Some(-1e300),
            None,
            Some(f64::NEG_INFINITY),
            Some(-0.0),
        ];
        let float64: ArrayRef = Arc::new(Float64Array::from(values));
        let expected = [
            Some("0.1"),
            Some("-1e300"),
            None,
            Some("-Infinity"),
            Some("-0"),
        ];
        assert_eq!(text(Arc::clone(&float64)), strings(&expected));
        let decoded = binary::<f64>(float64);
        assert_eq!(
            decoded[..4],
            [Some(0.1), Some(-1e300), None, Some(f64::NEG_INFINITY)]
        );
        assert!(decoded[4].is_some_and(|zero| zero == 0.0 && zero.is_sign_negative()));
        let bytes = encode(Arc::new(Float64Array::from(vec![0.1])), FieldFormat::Binary);
        assert_eq!(bytes[0], Some(0.1f64.to_be_bytes().to_vec()));

        let float16 = float16(vec![Some(1.5), None]);
        assert_eq!(text(Arc::clone(&float16)), strings(&[Some("1.5"), None]));
        assert_eq!(binary::<f32>(float16), [Some(1.5), None]);
    }

    /// A `Float16` column, cast by Arrow so the test needs no `half` import.
    fn float16(values: Vec<Option<f32>>) -> ArrayRef {
        let single: ArrayRef = Arc::new(Float32Array::from(values));
        cast(&single, &DataType::Float16).expect("castable")
    }

    fn decimals(values: Vec<Option<i128>>, precision: u8, scale: i8) -> ArrayRef {
        let array = Decimal128Array::from(values).with_precision_and_scale(precision, scale);
        Arc::new(array.expect("valid decimal type"))
    }

    #[test]
    fn decimals_are_exact_and_keep_their_scale() {
        let prices = decimals(vec![Some(12345), Some(-5), Some(100), None, Some(0)], 10, 2);
        let expected = [
            Some("123.45"),
            Some("-0.05"),
            Some("1.00"),
            None,
            Some("0.00"),
        ];
        assert_eq!(text(Arc::clone(&prices)), strings(&expected));
        let decoded = binary::<Decimal>(Arc::clone(&prices));
        let shown: Vec<_> = decoded.iter().map(|d| d.map(|d| d.to_string())).collect();
        assert_eq!(
            shown,
            strings(&[Some("123.45"), Some("-0.05"), Some("1.00"), None, Some("0")])
        );
        // ndigits 2, weight 0, sign +, dscale 2, base-10000 digits 123 and 4500.
        let expected = vec![0, 2, 0, 0, 0, 0, 0, 2, 0, 123, 0x11, 0x94];
        assert_eq!(encode(prices, FieldFormat::Binary)[0], Some(expected));

        let hundreds = decimals(vec![Some(123), Some(-7)], 5, -2);
        assert_eq!(text(hundreds), strings(&[Some("12300"), Some("-700")]));

        let small = Arc::new(
            Decimal32Array::from(vec![12345])
                .with_precision_and_scale(5, 2)
                .expect("valid"),
        );
        assert_eq!(text(small), strings(&[Some("123.45")]));
        let medium = Arc::new(
            Decimal64Array::from(vec![-12345])
                .with_precision_and_scale(12, 4)
                .expect("valid"),
        );
        assert_eq!(text(medium), strings(&[Some("-1.2345")]));
        let wide = |value| {
            let array = Decimal256Array::from(vec![value]).with_precision_and_scale(76, 2);
            Arc::new(array.expect("valid")) as ArrayRef
        };
        assert_eq!(
            text(wide(i256::from_i128(12345))),
            strings(&[Some("123.45")])
        );
        let too_wide = try_encode(wide(i256::MAX), FieldFormat::Text).expect_err("too wide");
        assert_eq!(code(too_wide), "22003");
    }

    #[test]
    fn decimals_beyond_rust_decimal_are_errors_not_panics() {
        // 1.5 at scale 30: trailing zeros are dropped, the value stays exact.
        let fine = decimals(vec![Some(15 * 10i128.pow(29))], 38, 30);
        assert_eq!(
            text(Arc::clone(&fine)),
            [Some(format!("1.5{}", "0".repeat(27)))]
        );
        assert_eq!(binary::<Decimal>(fine), [Some(Decimal::new(15, 1))]);

        // 1E-30 needs 30 fractional digits; 10^37 needs more than 96 bits.
        let tiny = format!("0.{}1", "0".repeat(29));
        let huge = format!("1{}", "0".repeat(37));
        for (mantissa, scale, shown) in [(1, 30, tiny), (10i128.pow(37), 0, huge)] {
            for format in [FieldFormat::Text, FieldFormat::Binary] {
                let array = decimals(vec![None, Some(mantissa)], 38, scale);
                let info = ErrorInfo::from(try_encode(array, format).expect_err("out of range"));
                assert_eq!(info.code, "22003");
                let expected = format!("numeric value {shown} cannot be sent exactly");
                assert!(info.message.starts_with(&expected), "{}", info.message);
            }
        }
        let nulls = decimals(vec![None], 38, 30);
        assert_eq!(text(nulls), [None]);
    }

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
    fn booleans_and_nulls() {
        let booleans = BooleanArray::from(vec![Some(true), None, Some(false)]);
        let text_form = [Some("t"), None, Some("f")];
        assert_column(
            Arc::new(booleans),
            &text_form,
            &[Some(true), None, Some(false)],
        );

        let nulls: ArrayRef = Arc::new(NullArray::new(2));
        assert_eq!(text(Arc::clone(&nulls)), [None, None]);
        assert_eq!(encode(nulls, FieldFormat::Binary), [None, None]);
    }

    #[test]
    fn binary_columns_are_bytea() {
        let values: Vec<Option<&[u8]>> = vec![Some(&[1, 2, 255]), None, Some(&[])];
        let fixed = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            [Some([1u8, 2, 255]), None, Some([0, 0, 0])].into_iter(),
            3,
        )
        .expect("valid");
        let arrays: [ArrayRef; 3] = [
            Arc::new(BinaryArray::from(values.clone())),
            Arc::new(LargeBinaryArray::from(values.clone())),
            Arc::new(BinaryViewArray::from(values.clone())),
        ];
        for array in arrays {
            let expected = strings(&[Some("\\x0102ff"), None, Some("\\x")]);
            assert_eq!(text(Arc::clone(&array)), expected, "{}", array.data_type());
            let raw = vec![Some(vec![1, 2, 255]), None, Some(vec![])];
            assert_eq!(encode(array, FieldFormat::Binary), raw);
        }
        let fixed: ArrayRef = Arc::new(fixed);
        let expected = strings(&[Some("\\x0102ff"), None, Some("\\x000000")]);
        assert_eq!(text(Arc::clone(&fixed)), expected);
        assert_eq!(binary::<Vec<u8>>(fixed)[0], Some(vec![1, 2, 255]));
    }

    #[test]
    fn dates_and_times() {
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![Some(0), None, Some(-1)]));
        let text_form = [Some("1970-01-01"), None, Some("1969-12-31")];
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1);
        let binary_form = [epoch, None, epoch.and_then(|d| d.pred_opt())];
        assert_column(Arc::clone(&dates), &text_form, &binary_form);
        // Binary dates count days from 2000-01-01.
        let since_2000 = (-10_957i32).to_be_bytes().to_vec();
        assert_eq!(encode(dates, FieldFormat::Binary)[0], Some(since_2000));
        let date64: ArrayRef = Arc::new(Date64Array::from(vec![86_400_000]));
        assert_eq!(text(date64), strings(&[Some("1970-01-02")]));
        let beyond: ArrayRef = Arc::new(Date32Array::from(vec![i32::MAX]));
        let error = try_encode(beyond, FieldFormat::Text).expect_err("out of range");
        assert_eq!(code(error), "22008");

        let micros = Time64MicrosecondArray::from(vec![Some(45_045_500_000), None]);
        let half_past = NaiveTime::from_hms_milli_opt(12, 30, 45, 500);
        let text_form = [Some("12:30:45.500000"), None];
        assert_column(Arc::new(micros), &text_form, &[half_past, None]);
        let seconds: ArrayRef = Arc::new(Time32SecondArray::from(vec![3661]));
        assert_eq!(text(seconds), strings(&[Some("01:01:01.000000")]));
    }

    /// A timestamp column holding `value` and a NULL.
    fn timestamps(unit: TimeUnit, tz: Option<&str>, value: i64) -> ArrayRef {
        let raw: ArrayRef = Arc::new(Int64Array::from(vec![Some(value), None]));
        cast(&raw, &DataType::Timestamp(unit, tz.map(Arc::from))).expect("castable")
    }

    #[test]
    fn timestamps_in_every_unit_with_and_without_time_zone() {
        // 2023-03-05 10:20:00.5 UTC; whole seconds drop the half.
        let seconds = 1_678_011_600;
        let cases = [
            (TimeUnit::Second, seconds, 0),
            (TimeUnit::Millisecond, seconds * 1_000 + 500, 500_000),
            (
                TimeUnit::Microsecond,
                seconds * 1_000_000 + 500_000,
                500_000,
            ),
            (
                TimeUnit::Nanosecond,
                seconds * 1_000_000_000 + 500_000_000,
                500_000,
            ),
        ];
        for (unit, value, micros) in cases {
            let wall = format!("2023-03-05 10:20:00.{micros:06}");
            let naive =
                NaiveDateTime::parse_from_str(&wall, "%Y-%m-%d %H:%M:%S%.f").expect("valid");
            // Binary timestamps count microseconds from 2000-01-01 00:00:00.
            let since_2000 = (731_326_800_000_000i64 + micros).to_be_bytes().to_vec();

            let plain = timestamps(unit, None, value);
            assert_column(
                Arc::clone(&plain),
                &[Some(&wall), None],
                &[Some(naive), None],
            );
            assert_eq!(
                encode(plain, FieldFormat::Binary)[0].as_ref(),
                Some(&since_2000)
            );

            // A zoned timestamp is an instant, shown in UTC whatever its Arrow zone.
            let zoned = timestamps(unit, Some("+02:00"), value);
            let instant = naive.and_utc();
            let shown = format!("{wall}+00");
            assert_column(
                Arc::clone(&zoned),
                &[Some(&shown), None],
                &[Some(instant), None],
            );
            assert_eq!(encode(zoned, FieldFormat::Binary)[0], Some(since_2000));
        }
    }

    #[test]
    fn lists_become_arrays_with_null_items() {
        let ints = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None, Some(3)]),
            None,
            Some(vec![]),
        ]);
        let ints: ArrayRef = Arc::new(ints);
        let text_form = [Some("{1,NULL,3}"), None, Some("{}")];
        let binary_form = [Some(vec![Some(1), None, Some(3)]), None, Some(vec![])];
        assert_column(Arc::clone(&ints), &text_form, &binary_form);
        // ndim 1, has-nulls 1, element OID 23, length 3, lower bound 1, then the items.
        let words = [1, 1, 23, 3, 1, 4, 1, -1, 4, 3];
        let expected = words
            .iter()
            .flat_map(|word: &i32| word.to_be_bytes())
            .collect();
        assert_eq!(
            encode(Arc::clone(&ints), FieldFormat::Binary)[0],
            Some(expected)
        );
        // A slice keeps its own offsets.
        assert_eq!(text(ints.slice(1, 2)), strings(&[None, Some("{}")]));

        let items = [Some("a b"), None, Some("x"), Some("\"q\""), Some("")];
        let mut builder = ListBuilder::new(StringBuilder::new());
        builder.append_value(items);
        builder.append_null();
        let text_form = [Some(r#"{"a b",NULL,x,"\"q\"",""}"#), None];
        assert_column(
            Arc::new(builder.finish()),
            &text_form,
            &[Some(strings(&items)), None],
        );

        let mut builder = ListBuilder::new(StringDictionaryBuilder::<Int32Type>::new());
        builder.append_value([Some("a"), Some("b"), Some("a")]);
        let words = vec![
            Some("a".to_owned()),
            Some("b".to_owned()),
            Some("a".to_owned()),
        ];
        assert_column(
            Arc::new(builder.finish()),
            &[Some("{a,b,a}")],
            &[Some(words)],
        );

        let decimals = Decimal128Builder::new().with_precision_and_scale(5, 2);
        let mut builder = ListBuilder::new(decimals.expect("valid"));
        builder.append_value([Some(150), None]);
        let binary_form = [Some(vec![Some(Decimal::new(150, 2)), None])];
        assert_column(
            Arc::new(builder.finish()),
            &[Some("{1.50,NULL}")],
            &binary_form,
        );

        let zoned = DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")));
        let instants = TimestampMicrosecondBuilder::new().with_data_type(zoned);
        let mut builder = LargeListBuilder::new(instants);
        builder.append_value([Some(0), None]);
        let instants: ArrayRef = Arc::new(builder.finish());
        let ty = pg_type(instants.data_type()).expect("supported");
        assert_eq!(ty, Type::TIMESTAMPTZ_ARRAY);
        let text_form = [Some("{1970-01-01 00:00:00.000000+00,NULL}")];
        let binary_form = [Some(vec![Some(DateTime::<Utc>::UNIX_EPOCH), None])];
        assert_column(instants, &text_form, &binary_form);
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
