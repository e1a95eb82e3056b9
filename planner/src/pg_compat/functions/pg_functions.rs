//! PostgreSQL functions drivers call that neither DataFusion nor `datafusion-pg-catalog`
//! provide, answered as PostgreSQL would for a read-only database of views.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udf,
};

/// The PostgreSQL version Tollgate speaks: `SELECT version()` and `server_version` give
/// it, and drivers parse it.
pub const SERVER_VERSION: &str = "16.6";

/// Every function of this module, to register in a tenant's session.
pub(crate) fn all() -> Vec<ScalarUDF> {
    let mut functions = vec![
        version(),
        advisory_unlock_all(),
        serial_sequence(),
        temporary_schema(),
        ScalarUDF::new_from_impl(TriggerDefinition {
            signature: Signature::variadic_any(Volatility::Stable),
        }),
        size_pretty(),
        encoding_to_char(),
        ScalarUDF::new_from_impl(JsonBuildObject::new()),
        crate::pg_compat::rewrite::like_escape::like_escape_udf(),
        ScalarUDF::new_from_impl(
            crate::pg_compat::rewrite::expand_array::ExpandArrayFunction::new(),
        ),
        ScalarUDF::new_from_impl(crate::pg_compat::functions::format_function::Format::new()),
        ScalarUDF::new_from_impl(crate::pg_compat::functions::to_char::ToChar::new()),
        ScalarUDF::new_from_impl(crate::pg_compat::functions::age::Age::new()),
    ];
    functions.extend(VISIBLE_KINDS.iter().map(|kind| visible(kind)));
    functions.extend(RELATION_SIZES.iter().map(|name| relation_size(name)));
    functions
}

/// The functions giving a relation's size on disk.
const RELATION_SIZES: &[&str] = &[
    "pg_relation_size",
    "pg_table_size",
    "pg_total_relation_size",
    "pg_indexes_size",
];

/// `pg_relation_size(oid)` and its kin: the bytes a relation takes on disk. A tenant's
/// datasets are views, which take none (PostgreSQL answers 0 for a view too), and the
/// gateway keeps no storage of its own catalogs: 0.
fn relation_size(name: &str) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Volatile,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(0))))),
    )
}

/// `pg_encoding_to_char(int)`: an encoding's name as PostgreSQL spells it (`UTF8`, which
/// psql's `\l` shows for the database), an empty string for a number that names none.
fn encoding_to_char() -> ScalarUDF {
    create_udf(
        "pg_encoding_to_char",
        vec![DataType::Int32],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let codes = ColumnarValue::values_to_arrays(args)?;
            let names: StringArray = codes[0]
                .as_primitive::<Int32Type>()
                .iter()
                .map(|code| {
                    code.map(|code| match code {
                        0 => "SQL_ASCII",
                        6 => "UTF8",
                        _ => "",
                    })
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(names)))
        }),
    )
}

/// `pg_size_pretty(bigint)`: a byte count in PostgreSQL's words (`8192 bytes`, `10 kB`),
/// with its units and rounding.
fn size_pretty() -> ScalarUDF {
    create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let sizes = ColumnarValue::values_to_arrays(args)?;
            let sizes = sizes[0].as_primitive::<Int64Type>();
            let text: StringArray = sizes.iter().map(|size| size.map(pretty_size)).collect();
            Ok(ColumnarValue::Array(Arc::new(text)))
        }),
    )
}

/// PostgreSQL's `pg_size_pretty`: bytes below 10 kB, then kB, MB, GB, TB, PB below 20,480
/// of each, rounded half away from zero.
fn pretty_size(size: i64) -> String {
    // (name, limit, rounded, bits)
    const UNITS: &[(&str, u64, bool, u32)] = &[
        ("bytes", 10 * 1024, false, 0),
        ("kB", 20 * 1024 - 1, true, 10),
        ("MB", 20 * 1024 - 1, true, 20),
        ("GB", 20 * 1024 - 1, true, 30),
        ("TB", 20 * 1024 - 1, true, 40),
        ("PB", 20 * 1024 - 1, true, 50),
    ];
    let half_rounded = |x: i64| (x + if x < 0 { -1 } else { 1 }) / 2;
    let mut size = size;
    for (i, (name, limit, rounded, bits)) in UNITS.iter().enumerate() {
        let last = i + 1 == UNITS.len();
        if last || size.unsigned_abs() < *limit {
            let shown = if *rounded { half_rounded(size) } else { size };
            return format!("{shown} {name}");
        }
        let (_, _, next_rounded, next_bits) = UNITS[i + 1];
        let shift = next_bits - bits - u32::from(next_rounded) + u32::from(*rounded);
        size /= 1_i64 << shift;
    }
    unreachable!("the last unit always answers")
}

/// The `pg_<kind>_is_visible(oid)` functions, for objects that all live in `pg_catalog`.
const VISIBLE_KINDS: &[&str] = &[
    "collation",
    "conversion",
    "function",
    "opclass",
    "operator",
    "type",
];

/// `version()` in PostgreSQL's format, which drivers parse; DataFusion's names the engine.
fn version() -> ScalarUDF {
    let text = format!(
        "PostgreSQL {SERVER_VERSION} (Tollgate {})",
        env!("CARGO_PKG_VERSION")
    );
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    )
}

/// `pg_advisory_unlock_all()`, which asyncpg sends when it resets a pooled connection. A
/// tenant cannot take advisory locks, so there is never one to release.
fn advisory_unlock_all() -> ScalarUDF {
    create_udf(
        "pg_advisory_unlock_all",
        vec![],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
    )
}

/// `pg_get_serial_sequence(table, column)`: the sequence a serial column draws from, which
/// SQLAlchemy asks for every column it reflects. A tenant's datasets are views over data
/// it cannot write, so no column has one: always NULL.
fn serial_sequence() -> ScalarUDF {
    create_udf(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
    )
}

/// `pg_my_temp_schema()`: the oid of the session's temporary schema, 0 when it has none,
/// which a tenant's session never has (it cannot create tables).
fn temporary_schema() -> ScalarUDF {
    create_udf(
        "pg_my_temp_schema",
        vec![],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(0))))),
    )
}

/// `pg_get_triggerdef(trigger [, pretty])`: a trigger's definition. A tenant's session has
/// no triggers (`pg_trigger` is empty; psql's `\d` asks for those of tables with keys):
/// NULL, as PostgreSQL answers for an object it does not know.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TriggerDefinition {
    signature: Signature,
}

impl ScalarUDFImpl for TriggerDefinition {
    fn name(&self) -> &str {
        "pg_get_triggerdef"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
    }
}

/// `pg_<kind>_is_visible(oid)`: whether the object is found by its unqualified name. A
/// tenant has no types, functions, operators or collations of its own; every one is in
/// `pg_catalog`, which is always searched first: always true.
fn visible(kind: &str) -> ScalarUDF {
    create_udf(
        &format!("pg_{kind}_is_visible"),
        vec![DataType::Int64],
        DataType::Boolean,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))),
    )
}

/// `json_build_object(key, value, …)`: a JSON object of the pairs, as text (the engine has
/// no JSON type). Keys are text; values keep their JSON kind (number, boolean, null),
/// anything else is its text as a JSON string. SQLAlchemy builds identity options with it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonBuildObject {
    signature: Signature,
}

impl JsonBuildObject {
    fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonBuildObject {
    fn name(&self) -> &str {
        "json_build_object"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !args.args.len().is_multiple_of(2) {
            return Err(DataFusionError::Execution(
                "json_build_object: argument list must have even number of elements".to_owned(),
            ));
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut objects = StringBuilder::new();
        for row in 0..args.number_rows {
            let mut object = serde_json::Map::new();
            for pair in arrays.chunks(2) {
                let key = ScalarValue::try_from_array(&pair[0], row)?;
                if key.is_null() {
                    return Err(DataFusionError::Execution(
                        "json_build_object: key cannot be null".to_owned(),
                    ));
                }
                let value = ScalarValue::try_from_array(&pair[1], row)?;
                object.insert(text_of(&key), json_of(&value));
            }
            objects.append_value(serde_json::Value::Object(object).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(objects.finish())))
    }
}

/// A scalar's text, without the quotes a string's display would not have anyway.
fn text_of(value: &ScalarValue) -> String {
    value
        .try_as_str()
        .flatten()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// A scalar as the JSON value PostgreSQL's `to_json` gives it.
fn json_of(value: &ScalarValue) -> serde_json::Value {
    use serde_json::Value as J;
    if value.is_null() {
        return J::Null;
    }
    match value {
        ScalarValue::Boolean(Some(b)) => J::Bool(*b),
        ScalarValue::Int8(Some(v)) => J::from(*v),
        ScalarValue::Int16(Some(v)) => J::from(*v),
        ScalarValue::Int32(Some(v)) => J::from(*v),
        ScalarValue::Int64(Some(v)) => J::from(*v),
        ScalarValue::UInt8(Some(v)) => J::from(*v),
        ScalarValue::UInt16(Some(v)) => J::from(*v),
        ScalarValue::UInt32(Some(v)) => J::from(*v),
        ScalarValue::UInt64(Some(v)) => J::from(*v),
        ScalarValue::Float32(Some(v)) => J::from(f64::from(*v)),
        ScalarValue::Float64(Some(v)) => J::from(*v),
        other => J::String(text_of(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_postgresql_prints_them() {
        for (size, text) in [
            (0, "0 bytes"),
            (10_239, "10239 bytes"),
            (10_240, "10 kB"),
            (1_048_576, "1024 kB"),
            (20_971_520, "20 MB"),
            (10_737_418_240, "10 GB"),
            (-10_240, "-10 kB"),
        ] {
            assert_eq!(pretty_size(size), text, "{size}");
        }
    }
}
