//! Bind parameters: from the wire (text or binary, per the statement's types) to engine values.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::error::PgWireResult;
use postgres_types::Kind;
use rust_decimal::Decimal;
use tollgate_planner::datafusion::arrow::datatypes::DataType;
use tollgate_planner::datafusion::common::ScalarValue;
use tollgate_planner::datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, DataType as SqlDataType, ExactNumberInfo, TimezoneInfo,
};

use super::errors::user_error;

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// An array parameter as a list value (NULL when the parameter is NULL).
fn list(items: Option<Vec<ScalarValue>>, element: &DataType) -> ScalarValue {
    match items {
        Some(items) => ScalarValue::List(ScalarValue::new_list_nullable(&items, element)),
        None => ScalarValue::try_from(DataType::new_list(element.clone(), true))
            .unwrap_or(ScalarValue::Null),
    }
}

/// The SQL type a client declared for a parameter at Parse, for the planner; `None` for
/// types left to the engine to infer: unknown, those it has no SQL name for, and text,
/// which drivers declare for any string (PostgreSQL resolves it from the use, too; the
/// ADBC driver sends `'{r,v}'` as text for `relkind = ANY($2)`).
pub fn declared_sql_type(pg_type: &Type) -> Option<SqlDataType> {
    let element = match *pg_type {
        Type::TEXT_ARRAY
        | Type::VARCHAR_ARRAY
        | Type::NAME_ARRAY
        | Type::BPCHAR_ARRAY
        | Type::CHAR_ARRAY => Some(SqlDataType::Text),
        Type::INT2_ARRAY => Some(SqlDataType::SmallInt(None)),
        Type::INT4_ARRAY => Some(SqlDataType::Integer(None)),
        Type::INT8_ARRAY => Some(SqlDataType::BigInt(None)),
        _ => None,
    };
    if let Some(element) = element {
        return Some(SqlDataType::Array(ArrayElemTypeDef::SquareBracket(
            Box::new(element),
            None,
        )));
    }
    Some(match *pg_type {
        Type::BOOL => SqlDataType::Boolean,
        Type::INT2 => SqlDataType::SmallInt(None),
        Type::INT4 => SqlDataType::Integer(None),
        Type::INT8 => SqlDataType::BigInt(None),
        Type::FLOAT4 => SqlDataType::Real,
        Type::FLOAT8 => SqlDataType::DoublePrecision,
        Type::NUMERIC => SqlDataType::Numeric(ExactNumberInfo::None),
        Type::DATE => SqlDataType::Date,
        Type::TIMESTAMP => SqlDataType::Timestamp(None, TimezoneInfo::None),
        Type::TIMESTAMPTZ => SqlDataType::Timestamp(None, TimezoneInfo::WithTimeZone),
        Type::BYTEA => SqlDataType::Bytea,
        _ => return None,
    })
}

/// The type to decode a parameter as: the client's declared type, unless it left it
/// unknown, or declared text for what the statement uses as an array (then the text is an
/// array literal, `'{r,v}'`).
pub fn wire_type(declared: Option<&Type>, inferred: &Type) -> Type {
    match declared {
        Some(declared) if is_text(declared) && matches!(inferred.kind(), Kind::Array(_)) => {
            inferred.clone()
        }
        Some(declared) if *declared != Type::UNKNOWN => declared.clone(),
        _ => inferred.clone(),
    }
}

fn is_text(pg_type: &Type) -> bool {
    matches!(
        *pg_type,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME
    )
}

/// Decodes every parameter of `portal`; `types[i]` is the wire type of parameter `i`.
///
/// # Errors
/// 22P02 for a value that does not parse as its type.
pub fn decode<S: Clone>(portal: &Portal<S>, types: &[Type]) -> PgWireResult<Vec<ScalarValue>> {
    (0..portal.parameter_len())
        .map(|i| decode_one(portal, i, types.get(i).unwrap_or(&Type::UNKNOWN)))
        .collect()
}

fn decode_one<S: Clone>(
    portal: &Portal<S>,
    index: usize,
    pg_type: &Type,
) -> PgWireResult<ScalarValue> {
    let invalid = |e: pgwire::error::PgWireError| {
        user_error(
            "22P02",
            format!("invalid value for parameter ${}: {e}", index + 1),
        )
    };
    let value = match *pg_type {
        Type::BOOL => {
            ScalarValue::Boolean(portal.parameter::<bool>(index, pg_type).map_err(invalid)?)
        }
        Type::INT2 => ScalarValue::Int16(portal.parameter::<i16>(index, pg_type).map_err(invalid)?),
        Type::INT4 => ScalarValue::Int32(portal.parameter::<i32>(index, pg_type).map_err(invalid)?),
        Type::INT8 => ScalarValue::Int64(portal.parameter::<i64>(index, pg_type).map_err(invalid)?),
        Type::FLOAT4 => {
            ScalarValue::Float32(portal.parameter::<f32>(index, pg_type).map_err(invalid)?)
        }
        Type::FLOAT8 => {
            ScalarValue::Float64(portal.parameter::<f64>(index, pg_type).map_err(invalid)?)
        }
        Type::NUMERIC => match portal
            .parameter::<Decimal>(index, pg_type)
            .map_err(invalid)?
        {
            Some(decimal) => {
                let scale = decimal.scale();
                let scale_i8 = i8::try_from(scale).map_err(|_| {
                    user_error(
                        "22P02",
                        format!("parameter ${} has too many decimal places", index + 1),
                    )
                })?;
                ScalarValue::Decimal128(Some(decimal.mantissa()), 38, scale_i8)
            }
            None => ScalarValue::Decimal128(None, 38, 10),
        },
        Type::DATE => ScalarValue::Date32(
            portal
                .parameter::<NaiveDate>(index, pg_type)
                .map_err(invalid)?
                .map(|d| chrono::Datelike::num_days_from_ce(&d) - UNIX_EPOCH_DAYS_FROM_CE),
        ),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<NaiveDateTime>(index, pg_type)
                .map_err(invalid)?
                .map(|t| t.and_utc().timestamp_micros()),
            None,
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            portal
                .parameter::<DateTime<FixedOffset>>(index, pg_type)
                .map_err(invalid)?
                .map(|t| t.timestamp_micros()),
            Some("+00:00".into()),
        ),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::NAME_ARRAY | Type::BPCHAR_ARRAY
            if !portal.parameter_format.is_binary(index) =>
        {
            // Text: PostgreSQL's array literal, parsed here (drivers put spaces and
            // quotes in it: `{"p", "f"}`).
            let literal = parameter_text(portal, index)?;
            let items = literal
                .map(|literal| {
                    text_array(&literal).ok_or_else(|| {
                        user_error(
                            "22P02",
                            format!(
                                "malformed array literal for parameter ${}: {literal}",
                                index + 1
                            ),
                        )
                    })
                })
                .transpose()?;
            list(
                items.map(|items| items.into_iter().map(ScalarValue::Utf8).collect()),
                &DataType::Utf8,
            )
        }
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::NAME_ARRAY | Type::BPCHAR_ARRAY => list(
            portal
                .parameter::<Vec<Option<String>>>(index, pg_type)
                .map_err(invalid)?
                .map(|items| items.into_iter().map(ScalarValue::Utf8).collect()),
            &DataType::Utf8,
        ),
        // `"char"[]` (relkind lists): one-byte characters.
        Type::CHAR_ARRAY => list(
            portal
                .parameter::<Vec<Option<i8>>>(index, pg_type)
                .map_err(invalid)?
                .map(|items| {
                    items
                        .into_iter()
                        .map(|item| {
                            ScalarValue::Utf8(item.map(|c| char::from(c as u8).to_string()))
                        })
                        .collect()
                }),
            &DataType::Utf8,
        ),
        Type::INT2_ARRAY => list(
            portal
                .parameter::<Vec<Option<i16>>>(index, pg_type)
                .map_err(invalid)?
                .map(|items| items.into_iter().map(ScalarValue::Int16).collect()),
            &DataType::Int16,
        ),
        Type::INT4_ARRAY => list(
            portal
                .parameter::<Vec<Option<i32>>>(index, pg_type)
                .map_err(invalid)?
                .map(|items| items.into_iter().map(ScalarValue::Int32).collect()),
            &DataType::Int32,
        ),
        Type::INT8_ARRAY => list(
            portal
                .parameter::<Vec<Option<i64>>>(index, pg_type)
                .map_err(invalid)?
                .map(|items| items.into_iter().map(ScalarValue::Int64).collect()),
            &DataType::Int64,
        ),
        Type::BYTEA => ScalarValue::Binary(
            portal
                .parameter::<Vec<u8>>(index, pg_type)
                .map_err(invalid)?,
        ),
        // Text, varchar, unknown and anything else: the client's text; the engine casts it.
        _ => ScalarValue::Utf8(parameter_text(portal, index)?),
    };
    Ok(value)
}

/// Parameter `index` as the client sent it, as text.
fn parameter_text<S: Clone>(portal: &Portal<S>, index: usize) -> PgWireResult<Option<String>> {
    portal
        .parameters
        .get(index)
        .cloned()
        .flatten()
        .map(|bytes| {
            String::from_utf8(bytes.to_vec()).map_err(|_| {
                user_error(
                    "22021",
                    format!("parameter ${} is not valid UTF-8", index + 1),
                )
            })
        })
        .transpose()
}

/// The items of a one-dimensional PostgreSQL array literal (`{a, "b c", NULL}`), or
/// `None` if it is not one.
fn text_array(literal: &str) -> Option<Vec<Option<String>>> {
    let inner = literal.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut items = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            break;
        };
        if first == '"' {
            chars.next();
            let mut item = String::new();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
            items.push(Some(item));
        } else {
            let mut item = String::new();
            while let Some(c) = chars.next_if(|c| *c != ',') {
                item.push(c);
            }
            let item = item.trim_end();
            if item.is_empty() || item.contains(['{', '}', '"']) {
                return None;
            }
            items.push((!item.eq_ignore_ascii_case("null")).then(|| item.to_owned()));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return None,
        }
    }
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_with_spaces_quotes_and_nulls() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            text_array(r#"{"p", "f", r}"#),
            Some(vec![some("p"), some("f"), some("r")])
        );
        assert_eq!(
            text_array(r#"{a b,"c,d","e\"f",NULL}"#),
            Some(vec![some("a b"), some("c,d"), some("e\"f"), None])
        );
        assert_eq!(text_array("{}"), Some(vec![]));
        assert_eq!(text_array("a,b"), None);
        assert_eq!(text_array(r#"{"open}"#), None);
    }
}
