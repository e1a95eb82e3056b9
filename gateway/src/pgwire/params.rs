//! Bind parameters: from the wire (text or binary, per the statement's types) to engine values.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use pgwire::api::Type;
use pgwire::api::portal::Portal;
use pgwire::error::PgWireResult;
use rust_decimal::Decimal;
use tollgate_planner::datafusion::common::ScalarValue;

use super::errors::user_error;

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

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
        Type::BYTEA => ScalarValue::Binary(
            portal
                .parameter::<Vec<u8>>(index, pg_type)
                .map_err(invalid)?,
        ),
        _ => {
            // Text, varchar, unknown and anything else: the client's text; the engine casts it.
            let raw = portal.parameters.get(index).cloned().flatten();
            let text = raw
                .map(|bytes| {
                    String::from_utf8(bytes.to_vec()).map_err(|_| {
                        user_error(
                            "22021",
                            format!("parameter ${} is not valid UTF-8", index + 1),
                        )
                    })
                })
                .transpose()?;
            ScalarValue::Utf8(text)
        }
    };
    Ok(value)
}
