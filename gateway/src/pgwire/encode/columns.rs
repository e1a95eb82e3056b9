//! One encoder per column: the Arrow array downcast once per batch into a typed reader
//! (`Source`), whose values are written into the row being built, as a scalar or as the items
//! of a one-dimensional Postgres array.

use datafusion::arrow::array::{
    Array, ArrayAccessor, BinaryArray, BinaryViewArray, BooleanArray, Date32Array, Date64Array,
    Decimal256Array, FixedSizeBinaryArray, Float16Array, Float32Array, Float64Array,
    GenericListArray, Int8Array, Int16Array, Int32Array, Int64Array, IntervalMonthDayNanoArray,
    LargeBinaryArray, LargeListArray, LargeStringArray, ListArray, OffsetSizeTrait, PrimitiveArray,
    StringArray, StringViewArray, Time32MillisecondArray, Time32SecondArray,
    Time64MicrosecondArray, Time64NanosecondArray, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{
    ArrowTimestampType, DataType, Decimal32Type, Decimal64Type, Decimal128Type, DecimalType,
    IntervalUnit, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::temporal_conversions::{
    date32_to_datetime, date64_to_datetime, time32ms_to_time, time32s_to_time, time64ns_to_time,
    time64us_to_time,
};
use pg_interval::Interval;
use pgwire::api::Type;
use pgwire::api::results::{CopyEncoder, DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::ToSql;
use rust_decimal::Decimal;

use super::convert::{decimal, in_range, instant, numeric_out_of_range, time};
use super::text::{Float, IsoDate, Numeric, TrimmedFraction};
use super::types::{FEATURE_NOT_SUPPORTED, pg_type};
use crate::pgwire::errors::user_error;

/// SQLSTATE `internal_error`.
const INTERNAL_ERROR: &str = "XX000";

/// Where encoded fields go: a `DataRow` being built, or a `COPY` row.
pub(super) enum RowSink {
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

/// Writes one column's value of a row into the row being built.
pub(super) trait ColumnEncoder {
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
pub(super) fn column_encoder<'a>(
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
                Ok(TrimmedFraction(Interval::new(
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
        wrap.wrap(values(array, |v| instant::<T>(v).map(TrimmedFraction)))
    } else {
        wrap.wrap(values(array, |v| {
            instant::<T>(v).map(|t| TrimmedFraction(t.naive_utc()))
        }))
    })
}

fn downcast<T: Array + 'static>(array: &dyn Array) -> PgWireResult<&T> {
    array.as_any().downcast_ref::<T>().ok_or_else(mismatch)
}

pub(super) fn mismatch() -> PgWireError {
    user_error(
        INTERNAL_ERROR,
        "internal error: result batch does not match its row description",
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
    use datafusion::arrow::array::{
        ArrayRef, Decimal32Array, Decimal64Array, Decimal128Builder, LargeListBuilder, ListBuilder,
        NullArray, StringBuilder, StringDictionaryBuilder, TimestampMicrosecondBuilder,
    };
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{Int32Type, i256};
    use pgwire::api::results::FieldFormat;

    use super::*;
    use crate::pgwire::encode::test_support::{
        assert_column, binary, code, decimals, encode, strings, text, try_encode,
    };

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
        let text_form = [Some("12:30:45.5"), None];
        assert_column(Arc::new(micros), &text_form, &[half_past, None]);
        let seconds: ArrayRef = Arc::new(Time32SecondArray::from(vec![3661]));
        assert_eq!(text(seconds), strings(&[Some("01:01:01")]));
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
            let naive = NaiveDateTime::parse_from_str(
                &format!("2023-03-05 10:20:00.{micros:06}"),
                "%Y-%m-%d %H:%M:%S%.f",
            )
            .expect("valid");
            // As PostgreSQL writes it: the fraction a value has, none for whole seconds.
            let wall = if micros == 0 {
                "2023-03-05 10:20:00".to_owned()
            } else {
                "2023-03-05 10:20:00.5".to_owned()
            };
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
        let text_form = [Some(r#"{"1970-01-01 00:00:00+00",NULL}"#)];
        let binary_form = [Some(vec![Some(DateTime::<Utc>::UNIX_EPOCH), None])];
        assert_column(instants, &text_form, &binary_form);
    }
}
