//! Arrow types as Postgres types: the OID each column is sent as, its type modifier and the
//! row description (see the folder's table).

use datafusion::arrow::datatypes::{DataType, IntervalUnit, Schema, TimeUnit};
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::error::PgWireResult;
use tollgate_planner::information_schema::type_modifier;

use crate::pgwire::errors::user_error;

/// SQLSTATE `feature_not_supported`.
pub(super) const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// SQLSTATE `protocol_violation`.
const PROTOCOL_VIOLATION: &str = "08P01";

/// The Postgres type a column of `data_type` is sent as (see the folder's table).
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Fields};
    use pgwire::api::results::FieldFormat;
    use pgwire::error::ErrorInfo;

    use super::*;
    use crate::pgwire::encode::test_support::{code, item};

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
}
