//! A statement's answer as a client reads it (column names, type families, rows in text), and
//! the comparison of two answers that differential tests make.
//!
//! Values are compared as follows:
//! - two numbers of exact types (integers, `numeric`) are equal when the one with more
//!   fractional digits, rounded half away from zero to the other's digits, is the other: a
//!   `numeric` average PostgreSQL prints with 16 digits equals the gateway's with 6 when
//!   those 6 are PostgreSQL's rounded;
//! - when either column is a floating-point type, values are equal within a relative
//!   [`FLOAT_TOLERANCE`] (sums of floats depend on the order they are added in);
//! - everything else is compared as text.
//!
//! Rows are compared in order when the statement orders its result (an `ORDER BY` outside
//! any parentheses), as multisets otherwise.
//!
//! One difference is known and reported apart ([`NUMERIC_DIVISION_TRUNCATES`]): the gateway's
//! `avg` of a `numeric` column, and its `numeric` divisions, cut the result at their scale
//! where PostgreSQL rounds (`25.527660` where PostgreSQL prints `25.5276609887827171`).

use std::fmt;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Relative difference accepted between two floating-point values.
pub const FLOAT_TOLERANCE: f64 = 1e-9;

/// The gateway's `numeric` division (and `avg`) cuts at the result's scale; PostgreSQL
/// rounds, at a larger scale.
pub const NUMERIC_DIVISION_TRUNCATES: &str =
    "numeric division and avg cut the result at its scale where PostgreSQL rounds";

/// How two answers differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The first difference found, in words.
    pub text: String,
    /// The known difference it is, if every difference found is that one.
    pub known: Option<&'static str>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known {
            Some(known) => write!(f, "{} (known: {known})", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// What a client read of one statement: its columns and rows, or its error.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The statement's result.
    Rows {
        /// Column names and type families, in order.
        columns: Vec<(String, Family)>,
        /// Values in the text format, `None` for null.
        rows: Vec<Vec<Option<String>>>,
    },
    /// The statement failed with this SQLSTATE.
    Error {
        /// The SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },
}

/// Groups of PostgreSQL types whose values compare the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `smallint`, `integer`, `bigint`, `numeric`.
    Exact,
    /// `real`, `double precision`.
    Float,
    /// Any other type, compared as text.
    Text,
}

impl Family {
    fn of(pg_type: &Type) -> Self {
        match *pg_type {
            Type::INT2 | Type::INT4 | Type::INT8 | Type::NUMERIC => Self::Exact,
            Type::FLOAT4 | Type::FLOAT8 => Self::Float,
            _ => Self::Text,
        }
    }
}

impl Answer {
    /// Runs `sql` on `client`: described by the extended protocol (names and types), then
    /// run by the simple protocol (rows in text).
    pub async fn of(client: &Client, sql: &str) -> Self {
        let statement = match client.prepare(sql).await {
            Ok(statement) => statement,
            Err(error) => return Self::from_error(&error),
        };
        let columns = statement
            .columns()
            .iter()
            .map(|column| (column.name().to_owned(), Family::of(column.type_())))
            .collect();
        let messages = match client.simple_query(sql).await {
            Ok(messages) => messages,
            Err(error) => return Self::from_error(&error),
        };
        let rows = messages
            .into_iter()
            .filter_map(|message| match message {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        Self::Rows { columns, rows }
    }

    fn from_error(error: &tokio_postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) => Self::Error {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
            },
            None => Self::Error {
                code: String::new(),
                message: error.to_string(),
            },
        }
    }

    /// The rows, if the statement succeeded.
    pub fn rows(&self) -> Option<&[Vec<Option<String>>]> {
        match self {
            Self::Rows { rows, .. } => Some(rows),
            Self::Error { .. } => None,
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error { code, message } => write!(f, "error {code}: {message}"),
            Self::Rows { columns, rows } => {
                let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
                write!(f, "{} rows of ({})", rows.len(), names.join(", "))
            }
        }
    }
}

/// How two answers to the same statement differ: `None` when they agree.
///
/// Two errors agree when their SQLSTATEs do. Answers with rows agree when their column names
/// are the same and their rows are equal under the rules of this module (in order when
/// `ordered`).
pub fn difference(ours: &Answer, reference: &Answer, ordered: bool) -> Option<Mismatch> {
    answer_difference(ours, reference, ordered).map(|(text, known)| Mismatch { text, known })
}

fn answer_difference(
    ours: &Answer,
    reference: &Answer,
    ordered: bool,
) -> Option<(String, Option<&'static str>)> {
    match (ours, reference) {
        (Answer::Error { code: a, .. }, Answer::Error { code: b, .. }) if a == b => None,
        (
            Answer::Rows {
                columns: our_columns,
                rows: our_rows,
            },
            Answer::Rows {
                columns: their_columns,
                rows: their_rows,
            },
        ) => {
            let our_names: Vec<&String> = our_columns.iter().map(|(name, _)| name).collect();
            let their_names: Vec<&String> = their_columns.iter().map(|(name, _)| name).collect();
            if our_names != their_names {
                return Some((
                    format!("columns {our_names:?}, PostgreSQL has {their_names:?}"),
                    None,
                ));
            }
            let families: Vec<Family> = our_columns
                .iter()
                .zip(their_columns)
                .map(|((_, ours), (_, theirs))| {
                    if *ours == Family::Float || *theirs == Family::Float {
                        Family::Float
                    } else if *ours == Family::Exact && *theirs == Family::Exact {
                        Family::Exact
                    } else {
                        Family::Text
                    }
                })
                .collect();
            rows_difference(our_rows, their_rows, &families, ordered)
        }
        _ => Some((format!("{ours}, PostgreSQL gives {reference}"), None)),
    }
}

fn rows_difference(
    ours: &[Vec<Option<String>>],
    theirs: &[Vec<Option<String>>],
    families: &[Family],
    ordered: bool,
) -> Option<(String, Option<&'static str>)> {
    if ours.len() != theirs.len() {
        return Some((
            format!("{} rows, PostgreSQL has {}", ours.len(), theirs.len()),
            None,
        ));
    }
    let (mut ours, mut theirs) = (ours.to_vec(), theirs.to_vec());
    if !ordered {
        ours.sort();
        theirs.sort();
    }
    let mut first_known = None;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let text = || format!("row {i}: {a:?}, PostgreSQL has {b:?}");
        match row_verdict(a, b, families) {
            Verdict::Equal => {}
            Verdict::Known(known) => {
                first_known.get_or_insert_with(|| (text(), Some(known)));
            }
            Verdict::Different => return Some((text(), None)),
        }
    }
    first_known
}

/// Whether two values, or rows, are equal, differ only in a known way, or differ.
enum Verdict {
    Equal,
    Known(&'static str),
    Different,
}

fn row_verdict(ours: &[Option<String>], theirs: &[Option<String>], families: &[Family]) -> Verdict {
    if ours.len() != theirs.len() {
        return Verdict::Different;
    }
    let mut verdict = Verdict::Equal;
    for ((a, b), family) in ours.iter().zip(theirs).zip(families) {
        match (a, b) {
            (None, None) => {}
            (Some(a), Some(b)) if values_equal(a, b, *family) => {}
            (Some(a), Some(b)) if *family == Family::Exact && cut_from(a, b) => {
                verdict = Verdict::Known(NUMERIC_DIVISION_TRUNCATES);
            }
            _ => return Verdict::Different,
        }
    }
    verdict
}

/// Whether `ours` is `theirs` cut (not rounded) to fewer fractional digits.
fn cut_from(ours: &str, theirs: &str) -> bool {
    match (Decimal::parse(ours), Decimal::parse(theirs)) {
        (Some(a), Some(b)) if a.scale() < b.scale() => {
            let mut cut = b.clone();
            cut.fraction.truncate(a.scale());
            cut.rounded(a.scale()) == a.rounded(a.scale())
        }
        _ => false,
    }
}

/// Whether two non-null values in text are equal as values of `family`.
pub fn values_equal(ours: &str, theirs: &str, family: Family) -> bool {
    match family {
        Family::Text => ours == theirs,
        Family::Float => match (ours.parse::<f64>(), theirs.parse::<f64>()) {
            (Ok(a), Ok(b)) => {
                a == b || (a - b).abs() <= FLOAT_TOLERANCE * a.abs().max(b.abs()).max(1.0)
            }
            _ => ours == theirs,
        },
        Family::Exact => match (Decimal::parse(ours), Decimal::parse(theirs)) {
            (Some(a), Some(b)) => {
                let scale = a.scale().min(b.scale());
                a.rounded(scale) == b.rounded(scale)
            }
            _ => ours == theirs,
        },
    }
}

/// An exact decimal number as text: sign, integer digits, fractional digits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    integer: String,
    fraction: String,
}

impl Decimal {
    fn parse(text: &str) -> Option<Self> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (integer, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if integer.is_empty() || !all_digits(integer) || !all_digits(fraction) {
            return None;
        }
        Some(Self {
            negative,
            integer: integer.to_owned(),
            fraction: fraction.to_owned(),
        })
    }

    fn scale(&self) -> usize {
        self.fraction.len()
    }

    /// The value rounded half away from zero to `scale` fractional digits, normalised (no
    /// leading zeros, no negative zero) so that equal values are equal.
    fn rounded(&self, scale: usize) -> Self {
        let mut digits: Vec<u8> = format!("{}{}", self.integer, self.fraction).into_bytes();
        let kept = self.integer.len() + scale.min(self.scale());
        let round_up = digits.get(kept).is_some_and(|d| *d >= b'5');
        digits.truncate(kept);
        if round_up {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, b'1');
                    break;
                }
                i -= 1;
                if digits[i] == b'9' {
                    digits[i] = b'0';
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
        let text = String::from_utf8(digits).unwrap_or_default();
        let split = text.len() - scale.min(self.scale());
        let (integer, fraction) = text.split_at(split);
        let integer = integer.trim_start_matches('0');
        let integer = if integer.is_empty() { "0" } else { integer };
        let zero = integer == "0" && fraction.bytes().all(|b| b == b'0');
        Self {
            negative: self.negative && !zero,
            integer: integer.to_owned(),
            fraction: fraction.to_owned(),
        }
    }
}

/// Whether `sql` orders its result: an `ORDER BY` outside any parentheses.
pub fn orders_its_result(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    let mut depth = 0_i32;
    let bytes = upper.as_bytes();
    for (i, byte) in bytes.iter().enumerate() {
        match byte {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'O' if depth == 0 && upper[i..].starts_with("ORDER BY") => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers_are_equal_at_the_coarser_scale_rounded_half_away_from_zero() {
        assert!(values_equal(
            "25.502257",
            "25.5022569888906509",
            Family::Exact
        ));
        assert!(!values_equal(
            "25.502256",
            "25.5022569888906509",
            Family::Exact
        ));
        assert!(values_equal("1995", "1995.0", Family::Exact));
        assert!(values_equal("-0.50", "-0.495", Family::Exact));
        assert!(values_equal("10.00", "9.995", Family::Exact));
        assert!(values_equal("0.0", "-0.00", Family::Exact));
        assert!(!values_equal("12", "13", Family::Exact));
    }

    #[test]
    fn a_numeric_cut_where_postgresql_rounds_is_the_known_difference() {
        assert!(cut_from("25.527660", "25.5276609887827171"));
        assert!(!cut_from("25.527661", "25.5276609887827171"));
        let ours = Answer::Rows {
            columns: vec![("avg".to_owned(), Family::Exact)],
            rows: vec![vec![Some("25.527660".to_owned())]],
        };
        let theirs = Answer::Rows {
            columns: vec![("avg".to_owned(), Family::Exact)],
            rows: vec![vec![Some("25.5276609887827171".to_owned())]],
        };
        let mismatch = difference(&ours, &theirs, true).expect("a difference");
        assert_eq!(mismatch.known, Some(NUMERIC_DIVISION_TRUNCATES));
    }

    #[test]
    fn floats_are_equal_within_the_tolerance() {
        assert!(values_equal("0.1", "0.10000000000000002", Family::Float));
        assert!(!values_equal("0.1", "0.1001", Family::Float));
    }

    #[test]
    fn order_by_counts_only_outside_parentheses() {
        assert!(orders_its_result("SELECT a FROM t ORDER BY a"));
        assert!(!orders_its_result(
            "SELECT a FROM (SELECT a FROM t ORDER BY a LIMIT 3) s"
        ));
        assert!(!orders_its_result(
            "SELECT row_number() OVER (ORDER BY a) FROM t"
        ));
    }

    #[test]
    fn unordered_rows_compare_as_multisets_and_ordered_ones_in_order() {
        let a = vec![vec![Some("1".to_owned())], vec![Some("2".to_owned())]];
        let b = vec![vec![Some("2".to_owned())], vec![Some("1".to_owned())]];
        assert_eq!(rows_difference(&a, &b, &[Family::Exact], false), None);
        assert!(rows_difference(&a, &b, &[Family::Exact], true).is_some());
    }
}
