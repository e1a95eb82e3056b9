//! Wire values whose text form is PostgreSQL's where pgwire's differs (float infinities and
//! `-0`, interval fractions) or is slower (ISO dates, numerics); their binary form is the
//! wrapped value's.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use pg_interval::Interval;
use pgwire::api::Type;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::{IsNull, Kind, ToSql, to_sql_checked};
use rust_decimal::Decimal;

/// A float whose text form is PostgreSQL's: pgwire writes infinities as `inf` and loses the
/// sign of `-0`, which JDBC and other drivers cannot read back.
#[derive(Debug)]
pub(super) struct Float<T>(pub(super) T);

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
pub(super) struct IsoDate(pub(super) NaiveDate);

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

/// A `time`, `timestamp`, `timestamptz` or `interval` whose text has PostgreSQL's fraction
/// of a second: none for a whole second (`10:30:00`), else as many digits as it needs
/// (`10:30:00.5+00`, `1 day 04:05:06.5`), where pgwire always writes six.
#[derive(Debug)]
pub(super) struct TrimmedFraction<T>(pub(super) T);

impl<T: ToSqlText + std::fmt::Debug> ToSqlText for TrimmedFraction<T> {
    fn to_sql_text(
        &self,
        ty: &Type,
        out: &mut BytesMut,
        format_options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let start = out.len();
        let null = self.0.to_sql_text(ty, out, format_options)?;
        trim_fraction(out, start);
        quote_array_item(out, start, ty);
        Ok(null)
    }
}

/// Quotes the text in `out[start..]` when it is an item of an array (`ty` is an array
/// type) and holds a space, as PostgreSQL writes `{"2024-01-01 10:30:00"}`; these texts
/// hold no quote or backslash to escape.
fn quote_array_item(out: &mut BytesMut, start: usize, ty: &Type) {
    if matches!(ty.kind(), Kind::Array(_)) && out[start..].contains(&b' ') {
        let item = out.split_off(start);
        out.put_u8(b'"');
        out.extend_from_slice(&item);
        out.put_u8(b'"');
    }
}

/// Drops the trailing zeros of the fraction of a second in `out[start..]`, and its point
/// when every digit is zero; the text after the digits (a zone, ` BC`, an interval's unit)
/// stays.
fn trim_fraction(out: &mut BytesMut, start: usize) {
    let text = &out[start..];
    let Some(point) = text.iter().rposition(|b| *b == b'.') else {
        return;
    };
    let digits = text[point + 1..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len() - point - 1);
    if digits == 0 {
        return;
    }
    let fraction = &text[point + 1..point + 1 + digits];
    let kept = fraction
        .iter()
        .rposition(|b| *b != b'0')
        .map_or(0, |i| i + 1);
    let cut_from = if kept == 0 { point } else { point + 1 + kept };
    let suffix = text[point + 1 + digits..].to_vec();
    out.truncate(start + cut_from);
    out.extend_from_slice(&suffix);
}

binary_as_wrapped!(TrimmedFraction<Interval>, Interval);
binary_as_wrapped!(TrimmedFraction<NaiveDateTime>, NaiveDateTime);
binary_as_wrapped!(TrimmedFraction<DateTime<Utc>>, DateTime<Utc>);
binary_as_wrapped!(TrimmedFraction<NaiveTime>, NaiveTime);
binary_as_wrapped!(Float<f32>, f32);
binary_as_wrapped!(Float<f64>, f64);
binary_as_wrapped!(IsoDate, NaiveDate);

/// A `numeric` whose text is written from its unscaled value and scale (as PostgreSQL shows
/// it: every digit of the scale, `-0.50`), much cheaper than formatting through rust_decimal.
#[derive(Debug)]
pub(super) struct Numeric(pub(super) Decimal);

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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, Float32Array, Float64Array, IntervalMonthDayNanoArray,
    };
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano};
    use pgwire::api::results::FieldFormat;

    use crate::pgwire::encode::test_support::{binary, encode, strings, text};

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
    fn timestamp_text_has_the_fraction_it_needs() {
        use datafusion::arrow::array::TimestampMicrosecondArray;
        let micros = vec![
            Some(1_700_000_000_000_000),
            Some(1_700_000_000_500_000),
            Some(1_700_000_000_000_001),
            None,
        ];
        assert_eq!(
            text(Arc::new(TimestampMicrosecondArray::from(micros.clone()))),
            strings(&[
                Some("2023-11-14 22:13:20"),
                Some("2023-11-14 22:13:20.5"),
                Some("2023-11-14 22:13:20.000001"),
                None,
            ])
        );
        let zoned = TimestampMicrosecondArray::from(micros).with_timezone("UTC");
        assert_eq!(
            text(Arc::new(zoned)),
            strings(&[
                Some("2023-11-14 22:13:20+00"),
                Some("2023-11-14 22:13:20.5+00"),
                Some("2023-11-14 22:13:20.000001+00"),
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
}
