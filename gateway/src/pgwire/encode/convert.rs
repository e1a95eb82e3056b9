//! Arrow values that can fall outside what Postgres or rust_decimal hold: decimals kept
//! exact or refused (22003), dates, times and instants within chrono's range or refused
//! (22008). Nothing is ever rounded or clamped.

use std::fmt::Display;

use chrono::{DateTime, NaiveTime, Utc};
use datafusion::arrow::datatypes::{ArrowTimestampType, TimeUnit, format_decimal_str};
use pgwire::error::{PgWireError, PgWireResult};
use rust_decimal::Decimal;

use super::text::TrimmedFraction;
use crate::pgwire::errors::user_error;

/// SQLSTATE `numeric_value_out_of_range`.
const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
/// SQLSTATE `datetime_field_overflow`.
const DATETIME_FIELD_OVERFLOW: &str = "22008";

/// The instant `value` units of `T` after the Unix epoch.
pub(super) fn instant<T: ArrowTimestampType>(value: i64) -> PgWireResult<DateTime<Utc>> {
    let instant = match T::UNIT {
        TimeUnit::Second => DateTime::from_timestamp(value, 0),
        TimeUnit::Millisecond => DateTime::from_timestamp_millis(value),
        TimeUnit::Microsecond => DateTime::from_timestamp_micros(value),
        TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(value)),
    };
    in_range(instant, "timestamp")
}

/// A `time`, written with the fraction of a second it has.
pub(super) fn time(value: Option<NaiveTime>) -> PgWireResult<TrimmedFraction<NaiveTime>> {
    in_range(value, "time").map(TrimmedFraction)
}

pub(super) fn in_range<T>(value: Option<T>, kind: &str) -> PgWireResult<T> {
    value.ok_or_else(|| user_error(DATETIME_FIELD_OVERFLOW, format!("{kind} out of range")))
}

/// The exact `numeric` for the Arrow decimal `mantissa × 10^-scale`.
///
/// rust_decimal holds a 96-bit unscaled value with at most 28 fractional digits. A value
/// outside that is first stripped of trailing fractional zeros, which keeps it exact (so
/// `1.50` at scale 30 still encodes); if it still does not fit it is an error, never rounded.
pub(super) fn decimal(mantissa: i128, scale: i8) -> PgWireResult<Decimal> {
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
pub(super) fn numeric_out_of_range(mantissa: &dyn Display, scale: i8) -> PgWireError {
    let value = format_decimal_str(&mantissa.to_string(), usize::MAX, scale);
    user_error(
        NUMERIC_VALUE_OUT_OF_RANGE,
        format!(
            "numeric value {value} cannot be sent exactly: at most 28 digits after the decimal \
             point and 28 significant digits are supported"
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pgwire::api::results::FieldFormat;
    use pgwire::error::ErrorInfo;

    use super::*;
    use crate::pgwire::encode::test_support::{binary, decimals, text, try_encode};

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
}
