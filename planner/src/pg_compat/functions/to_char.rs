//! PostgreSQL's `to_char(timestamp | timestamptz | date, template)`, in place of the
//! engine's, which reads chrono's `%Y-%m` where BI tools send PostgreSQL's `YYYY-MM`.
//!
//! The template patterns are PostgreSQL's (its documentation's "Template Patterns for
//! Date/Time Formatting"): `HH HH12 HH24 MI SS MS US SSSSS AM PM A.M. P.M. Y,YYY YYYY YYY YY
//! Y IYYY IYY IY I MONTH Month month MON Mon mon MM DAY Day day DY Dy dy DDD IDDD DD D ID W
//! WW IW CC J Q RM TZ OF`, each optionally prefixed by `FM` (no padding) and followed by `TH`
//! or `th` (ordinal suffix). Text in double quotes is copied, a backslash copies the next
//! character, anything else is copied as is. Names are English; time zones are the
//! session's, UTC.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::TypeSignature::Exact;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TIMEZONE_WILDCARD, Volatility,
};

/// The function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ToChar {
    signature: Signature,
}

impl ToChar {
    pub(crate) fn new() -> Self {
        let mut accepted = vec![
            Exact(vec![DataType::Date32, DataType::Utf8]),
            Exact(vec![DataType::Date64, DataType::Utf8]),
        ];
        for unit in [
            TimeUnit::Second,
            TimeUnit::Millisecond,
            TimeUnit::Microsecond,
            TimeUnit::Nanosecond,
        ] {
            accepted.push(Exact(vec![DataType::Timestamp(unit, None), DataType::Utf8]));
            accepted.push(Exact(vec![
                DataType::Timestamp(unit, Some(TIMEZONE_WILDCARD.into())),
                DataType::Utf8,
            ]));
        }
        Self {
            signature: Signature::one_of(accepted, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [values, templates] = arrays.as_slice() else {
            return Err(DataFusionError::Plan(
                "to_char takes a value and a template".to_owned(),
            ));
        };
        let zoned = matches!(values.data_type(), DataType::Timestamp(_, Some(_)));
        // A zoned value as the session's zone (UTC) sees it: its UTC wall clock.
        let instants = cast(values, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
        let instants = instants.as_primitive::<TimestampMicrosecondType>();
        let templates = templates.as_string::<i32>();
        let mut formatted = StringBuilder::new();
        for row in 0..args.number_rows {
            let at = instants
                .is_valid(row)
                .then(|| instants.value_as_datetime(row))
                .flatten();
            match (at, templates.is_valid(row)) {
                (Some(at), true) => formatted.append_value(format(at, templates.value(row), zoned)),
                _ => formatted.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(formatted.finish())))
    }
}

/// How a pattern is matched: letters in any case, or exactly as written (the patterns whose
/// output follows their case).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Any,
    Exact,
}

/// The patterns, longer ones before those they begin with.
const PATTERNS: &[(&str, Case)] = &[
    ("HH24", Case::Any),
    ("HH12", Case::Any),
    ("HH", Case::Any),
    ("MI", Case::Any),
    ("SSSSS", Case::Any),
    ("SS", Case::Any),
    ("MS", Case::Any),
    ("US", Case::Any),
    ("A.M.", Case::Exact),
    ("P.M.", Case::Exact),
    ("a.m.", Case::Exact),
    ("p.m.", Case::Exact),
    ("AM", Case::Exact),
    ("PM", Case::Exact),
    ("am", Case::Exact),
    ("pm", Case::Exact),
    ("Y,YYY", Case::Any),
    ("YYYY", Case::Any),
    ("YYY", Case::Any),
    ("YY", Case::Any),
    ("Y", Case::Any),
    ("IYYY", Case::Any),
    ("IYY", Case::Any),
    ("IY", Case::Any),
    ("IDDD", Case::Any),
    ("ID", Case::Any),
    ("IW", Case::Any),
    ("I", Case::Any),
    ("MONTH", Case::Exact),
    ("Month", Case::Exact),
    ("month", Case::Exact),
    ("MON", Case::Exact),
    ("Mon", Case::Exact),
    ("mon", Case::Exact),
    ("MM", Case::Any),
    ("DAY", Case::Exact),
    ("Day", Case::Exact),
    ("day", Case::Exact),
    ("DY", Case::Exact),
    ("Dy", Case::Exact),
    ("dy", Case::Exact),
    ("DDD", Case::Any),
    ("DD", Case::Any),
    ("D", Case::Any),
    ("WW", Case::Any),
    ("W", Case::Any),
    ("CC", Case::Any),
    ("J", Case::Any),
    ("Q", Case::Any),
    ("RM", Case::Exact),
    ("rm", Case::Exact),
    ("TZ", Case::Exact),
    ("tz", Case::Exact),
    ("OF", Case::Any),
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const ROMAN_MONTHS: [&str; 12] = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII",
];

/// `at` written by `template`; `zoned` when it was a `timestamptz` (its zone is printed).
fn format(at: NaiveDateTime, template: &str, zoned: bool) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(first) = rest.chars().next() {
        let (fill, after_fm) = match strip_any_case(rest, "FM") {
            Some(after) => (false, after),
            None => (true, rest),
        };
        if let Some((pattern, after)) = next_pattern(after_fm) {
            let (text, number) = render(pattern, at, fill, zoned);
            out.push_str(&text);
            rest = after;
            if let Some(number) = number {
                if let Some(after) = rest.strip_prefix("TH") {
                    out.push_str(&ordinal(number).to_uppercase());
                    rest = after;
                } else if let Some(after) = rest.strip_prefix("th") {
                    out.push_str(ordinal(number));
                    rest = after;
                }
            }
            continue;
        }
        rest = &rest[first.len_utf8()..];
        match first {
            '"' => {
                let mut chars = rest.char_indices();
                let mut end = rest.len();
                while let Some((at, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = at + 1;
                            break;
                        }
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                out.push(escaped);
                            }
                        }
                        c => out.push(c),
                    }
                }
                rest = &rest[end.min(rest.len())..];
            }
            '\\' => {
                if let Some(escaped) = rest.chars().next() {
                    out.push(escaped);
                    rest = &rest[escaped.len_utf8()..];
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `text` without `prefix` at its start, in any case.
fn strip_any_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The pattern `text` starts with (as listed), and what follows it.
fn next_pattern(text: &str) -> Option<(&'static str, &str)> {
    PATTERNS.iter().find_map(|(pattern, case)| {
        let after = match case {
            Case::Any => strip_any_case(text, pattern),
            Case::Exact => text.strip_prefix(pattern),
        }?;
        Some((*pattern, after))
    })
}

/// A pattern's text for `at`, and the number it wrote (for `TH`).
fn render(pattern: &str, at: NaiveDateTime, fill: bool, zoned: bool) -> (String, Option<i64>) {
    let number = |value: i64, width: usize| {
        let text = if fill {
            format!("{value:0width$}")
        } else {
            value.to_string()
        };
        (text, Some(value))
    };
    let word = |word: &str, width: usize| {
        let text = if fill {
            format!("{word:width$}")
        } else {
            word.to_owned()
        };
        (text, None)
    };
    let year = i64::from(at.year());
    let iso = at.iso_week();
    let iso_year = i64::from(iso.year());
    let month = at.month0() as usize;
    let weekday = at.weekday().num_days_from_sunday() as usize;
    let afternoon = at.hour() >= 12;
    match pattern.to_ascii_uppercase().as_str() {
        "HH24" => number(i64::from(at.hour()), 2),
        "HH12" | "HH" => number(i64::from(at.hour12().1), 2),
        "MI" => number(i64::from(at.minute()), 2),
        "SSSSS" => number(i64::from(at.num_seconds_from_midnight()), 0),
        "SS" => number(i64::from(at.second()), 2),
        "MS" => number(i64::from(at.nanosecond() / 1_000_000), 3),
        "US" => number(i64::from(at.nanosecond() / 1_000), 6),
        "AM" | "PM" => (cased(pattern, if afternoon { "PM" } else { "AM" }), None),
        "A.M." | "P.M." => (
            cased(pattern, if afternoon { "P.M." } else { "A.M." }),
            None,
        ),
        "Y,YYY" => (format!("{},{:03}", year / 1000, year % 1000), Some(year)),
        "YYYY" => number(year, 4),
        "YYY" => number(year % 1000, 3),
        "YY" => number(year % 100, 2),
        "Y" => number(year % 10, 1),
        "IYYY" => number(iso_year, 4),
        "IYY" => number(iso_year % 1000, 3),
        "IY" => number(iso_year % 100, 2),
        "I" => number(iso_year % 10, 1),
        "IDDD" => number(
            i64::from((iso.week() - 1) * 7 + at.weekday().number_from_monday()),
            3,
        ),
        "ID" => number(i64::from(at.weekday().number_from_monday()), 1),
        "IW" => number(i64::from(iso.week()), 2),
        "MONTH" => word(&cased(pattern, MONTHS[month]), 9),
        "MON" => (cased(pattern, &MONTHS[month][..3]), None),
        "MM" => number(i64::from(at.month()), 2),
        "DAY" => word(&cased(pattern, DAYS[weekday]), 9),
        "DY" => (cased(pattern, &DAYS[weekday][..3]), None),
        "DDD" => number(i64::from(at.ordinal()), 3),
        "DD" => number(i64::from(at.day()), 2),
        "D" => number(weekday as i64 + 1, 1),
        "WW" => number(i64::from((at.ordinal() - 1) / 7 + 1), 2),
        "W" => number(i64::from((at.day() - 1) / 7 + 1), 1),
        "CC" => number(
            if year > 0 {
                (year + 99) / 100
            } else {
                year / 100 - 1
            },
            2,
        ),
        // Days since 24 November 4714 BC: the 1st of January of year 1 is day 1,721,426.
        "J" => number(i64::from(at.num_days_from_ce()) + 1_721_425, 0),
        "Q" => number(month as i64 / 3 + 1, 1),
        "RM" => word(&cased(pattern, ROMAN_MONTHS[month]), 4),
        "TZ" => (cased(pattern, if zoned { "UTC" } else { "" }), None),
        "OF" => ("+00".to_owned(), None),
        _ => (pattern.to_owned(), None),
    }
}

/// `text` in the case `pattern` is written in: all capitals, a capital first, or none.
fn cased(pattern: &str, text: &str) -> String {
    let mut letters = pattern.chars().filter(char::is_ascii_alphabetic);
    let first_upper = letters.next().is_some_and(|c| c.is_ascii_uppercase());
    let rest_upper = letters.next().is_some_and(|c| c.is_ascii_uppercase());
    match (first_upper, rest_upper) {
        (true, true) => text.to_uppercase(),
        (true, false) => {
            let lower = text.to_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
        _ => text.to_lowercase(),
    }
}

/// The English ordinal suffix of `n`.
fn ordinal(n: i64) -> &'static str {
    match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("a timestamp")
    }

    /// Each answer as PostgreSQL 16 gives it for `timestamp '2024-03-05 14:07:09.123456'`.
    #[test]
    fn templates_write_what_postgresql_writes() {
        let tuesday = at("2024-03-05 14:07:09.123456");
        for (template, expected) in [
            ("YYYY-MM-DD HH24:MI:SS.US", "2024-03-05 14:07:09.123456"),
            ("yyyy-mm-dd hh24:mi:ss.ms", "2024-03-05 14:07:09.123"),
            ("YYYY-MM", "2024-03"),
            ("Day, DD Month YYYY", "Tuesday  , 05 March     2024"),
            ("FMDay, FMDD FMMonth YYYY", "Tuesday, 5 March 2024"),
            ("HH12:MI AM", "02:07 PM"),
            ("HH:MI a.m.", "02:07 p.m."),
            ("Mon YY", "Mar 24"),
            ("MON DY dy", "MAR TUE tue"),
            ("month|", "march    |"),
            ("Q WW IW DDD D ID IDDD", "1 10 10 065 3 2 065"),
            ("DDth FMDDth FMDDTH", "05th 5th 5TH"),
            ("\"Quarter\" Q", "Quarter 1"),
            ("RM|FMRM|rm", "III |III|iii "),
            ("J", "2460375"),
            ("CC Y,YYY IYYY", "21 2,024 2024"),
            ("SSSSS", "50829"),
            ("W", "1"),
            ("TZ OF|", " +00|"),
            ("\\Y YYYY", "Y 2024"),
        ] {
            assert_eq!(format(tuesday, template, false), expected, "{template}");
        }
        assert_eq!(format(tuesday, "HH24 TZ OF", true), "14 UTC +00");
        assert_eq!(
            format(at("2024-01-01 00:00:00"), "FMDDth FMMMth HH12 AM", false),
            "1st 1st 12 AM"
        );
        assert_eq!(
            format(at("2021-01-03 00:00:00"), "IYYY-IW-ID", false),
            "2020-53-7"
        );
        assert_eq!(format(at("2024-03-22 00:00:00"), "DDth", false), "22nd");
        assert_eq!(format(at("2024-03-13 00:00:00"), "DDth", false), "13th");
    }
}
