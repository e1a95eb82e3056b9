//! PostgreSQL's `age(timestamp, timestamp)` and `age(timestamp)`: the difference as a
//! "symbolic" interval of years, months and days, not a count of days, as PostgreSQL's
//! `timestamp_age` computes it. Each field is subtracted, then negative fields borrow from
//! the next larger one, a month lending the days of the earlier date's month.
//! `age(timestamp)` is the age at the start of today (UTC, the session's zone).

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use datafusion::arrow::array::{Array, AsArray, IntervalMonthDayNanoBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::TypeSignature::Exact;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TIMEZONE_WILDCARD, Volatility,
};

/// The function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Age {
    signature: Signature,
}

impl Age {
    pub(crate) fn new() -> Self {
        let mut kinds = vec![DataType::Date32];
        for zone in [None, Some(TIMEZONE_WILDCARD.into())] {
            kinds.push(DataType::Timestamp(TimeUnit::Nanosecond, zone.clone()));
            kinds.push(DataType::Timestamp(TimeUnit::Microsecond, zone));
        }
        let mut accepted: Vec<_> = kinds.iter().map(|kind| Exact(vec![kind.clone()])).collect();
        for kind in &kinds {
            accepted.push(Exact(vec![kind.clone(), kind.clone()]));
        }
        Self {
            signature: Signature::one_of(accepted, Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for Age {
    fn name(&self) -> &str {
        "age"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let instants = |array| -> Result<_> {
            Ok(cast(
                array,
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )?)
        };
        let (later, earlier) = match arrays.as_slice() {
            [of] => (None, instants(of)?),
            [later, earlier] => (Some(instants(later)?), instants(earlier)?),
            _ => {
                return Err(DataFusionError::Plan(
                    "age takes one or two timestamps".to_owned(),
                ));
            }
        };
        let today = Utc::now().date_naive().and_time(chrono::NaiveTime::MIN);
        let earlier = earlier.as_primitive::<TimestampMicrosecondType>();
        let later = later
            .as_ref()
            .map(|l| l.as_primitive::<TimestampMicrosecondType>());
        let mut ages = IntervalMonthDayNanoBuilder::with_capacity(args.number_rows);
        for row in 0..args.number_rows {
            let from = earlier
                .is_valid(row)
                .then(|| earlier.value_as_datetime(row))
                .flatten();
            let to = match later {
                Some(later) => later
                    .is_valid(row)
                    .then(|| later.value_as_datetime(row))
                    .flatten(),
                None => Some(today),
            };
            match (to, from) {
                (Some(to), Some(from)) => ages.append_value(age(to, from)),
                _ => ages.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(ages.finish())))
    }
}

/// `to - from` as PostgreSQL's `age(to, from)` gives it.
fn age(to: NaiveDateTime, from: NaiveDateTime) -> IntervalMonthDayNano {
    let fields = |t: NaiveDateTime| {
        [
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
            i64::from(t.minute()),
            i64::from(t.second()),
            i64::from(t.nanosecond() / 1_000),
        ]
    };
    let (a, b) = (fields(to), fields(from));
    let negative = to < from;
    let sign = if negative { -1 } else { 1 };
    let [
        mut year,
        mut month,
        mut day,
        mut hour,
        mut minute,
        mut second,
        mut micros,
    ]: [i64; 7] = std::array::from_fn(|i| sign * (a[i] - b[i]));
    // The month lending its days is the earlier date's.
    let lender = if negative { to } else { from };
    while micros < 0 {
        micros += 1_000_000;
        second -= 1;
    }
    while second < 0 {
        second += 60;
        minute -= 1;
    }
    while minute < 0 {
        minute += 60;
        hour -= 1;
    }
    while hour < 0 {
        hour += 24;
        day -= 1;
    }
    while day < 0 {
        day += days_in_month(lender.year(), lender.month());
        month -= 1;
    }
    while month < 0 {
        month += 12;
        year -= 1;
    }
    let months = sign * (year * 12 + month);
    let days = sign * day;
    let micros = sign * (((hour * 60 + minute) * 60 + second) * 1_000_000 + micros);
    IntervalMonthDayNano::new(
        i32::try_from(months).unwrap_or(i32::MAX),
        i32::try_from(days).unwrap_or(i32::MAX),
        micros.saturating_mul(1_000),
    )
}

fn days_in_month(year: i32, month: u32) -> i64 {
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    match (first, next) {
        (Some(first), Some(next)) => (next - first).num_days(),
        _ => 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("a timestamp")
    }

    /// `(months, days, microseconds)` of `age(to, from)`.
    fn parts(to: &str, from: &str) -> (i32, i32, i64) {
        let age = age(at(to), at(from));
        (age.months, age.days, age.nanoseconds / 1_000)
    }

    #[test]
    fn ages_are_postgresqls() {
        // PostgreSQL 15's answers.
        // 1 mon 1 day 21:29:44.5
        assert_eq!(
            parts("2024-03-31 10:00:00", "2024-02-29 12:30:15.5"),
            (1, 1, ((21 * 60 + 29) * 60 + 44) * 1_000_000 + 500_000)
        );
        // -1 mons -2 days -10:00:00
        assert_eq!(
            parts("2024-02-29 00:00:00", "2024-03-31 10:00:00"),
            (-1, -2, -10 * 3_600_000_000)
        );
        // 43 years 9 mons 27 days
        assert_eq!(
            parts("2001-04-10 00:00:00", "1957-06-13 00:00:00"),
            (43 * 12 + 9, 27, 0)
        );
        // 1 year 1 mon 1 day
        assert_eq!(
            parts("2024-03-01 00:00:00", "2023-01-31 00:00:00"),
            (13, 1, 0)
        );
        // -1 years -1 mons -1 days
        assert_eq!(
            parts("2023-01-31 00:00:00", "2024-03-01 00:00:00"),
            (-13, -1, 0)
        );
        assert_eq!(
            parts("2024-01-01 00:00:00", "2024-01-01 00:00:00"),
            (0, 0, 0)
        );
    }
}
