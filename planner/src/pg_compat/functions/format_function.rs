//! PostgreSQL's `format(formatstr, args…)`: `%s` (the value as text, NULL as nothing), `%I`
//! (an identifier, double-quoted when it must be), `%L` (a literal, single-quoted, NULL as
//! `NULL`) and `%%`, each optionally with a position (`%2$s`). Metabase builds the
//! `regclass` of each table it syncs with `FORMAT('%I.%I', schema, table)`.

use std::sync::Arc;

use datafusion::arrow::array::StringBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// The function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Format {
    signature: Signature,
}

impl Format {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut formatted = StringBuilder::new();
        for row in 0..args.number_rows {
            let values = arrays
                .iter()
                .map(|array| ScalarValue::try_from_array(array, row).map(|v| text(&v)))
                .collect::<Result<Vec<_>>>()?;
            match values.split_first() {
                Some((Some(template), arguments)) => {
                    formatted.append_value(format_text(template, arguments)?);
                }
                _ => formatted.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(formatted.finish())))
    }
}

/// A value's text, `None` for NULL.
fn text(value: &ScalarValue) -> Option<String> {
    if value.is_null() {
        return None;
    }
    Some(
        value
            .try_as_str()
            .flatten()
            .map_or_else(|| value.to_string(), str::to_owned),
    )
}

/// `template` with its conversions replaced by `arguments`.
fn format_text(template: &str, arguments: &[Option<String>]) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut chars = template.chars().peekable();
    let mut next_argument = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        // An optional position: digits followed by `$`.
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        let index = if digits.is_empty() {
            next_argument
        } else if chars.next_if_eq(&'$').is_some() {
            digits
                .parse::<usize>()
                .ok()
                .and_then(|position| position.checked_sub(1))
                .ok_or_else(|| invalid("positions start at 1"))?
        } else {
            return Err(invalid("widths are not supported"));
        };
        let conversion = chars
            .next()
            .ok_or_else(|| invalid("unterminated format() type specifier"))?;
        let argument = arguments
            .get(index)
            .ok_or_else(|| invalid("too few arguments for format()"))?;
        next_argument = index + 1;
        match conversion {
            's' => out.push_str(argument.as_deref().unwrap_or_default()),
            'I' => out.push_str(&quote_identifier(argument.as_deref().ok_or_else(|| {
                invalid("null values cannot be formatted as an SQL identifier")
            })?)),
            'L' => match argument {
                Some(value) => out.push_str(&quote_literal(value)),
                None => out.push_str("NULL"),
            },
            other => {
                return Err(invalid(&format!(
                    "unrecognized format() type specifier \"{other}\""
                )));
            }
        }
    }
    Ok(out)
}

fn invalid(message: &str) -> DataFusionError {
    DataFusionError::Execution(format!("format: {message}"))
}

/// `name` as an identifier: as it is when it is a plain lowercase one, else double-quoted.
pub(crate) fn quote_identifier(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `value` as a string literal (`E'…'` when it holds a backslash, as PostgreSQL writes it).
fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(template: &str, arguments: &[Option<&str>]) -> Result<String> {
        let arguments: Vec<Option<String>> =
            arguments.iter().map(|a| a.map(str::to_owned)).collect();
        format_text(template, &arguments)
    }

    #[test]
    fn conversions_as_postgresql_prints_them() {
        assert_eq!(
            formatted("%I.%I", &[Some("tpch"), Some("Orders")]).expect("formats"),
            "tpch.\"Orders\""
        );
        assert_eq!(
            formatted("%s is %L, %% and %L", &[Some("x"), Some("it's"), None]).expect("formats"),
            "x is 'it''s', % and NULL"
        );
        assert_eq!(
            formatted("%2$s %1$s %s", &[Some("a"), Some("b")]).expect("formats"),
            "b a b"
        );
    }

    #[test]
    fn bad_templates_are_errors() {
        assert!(formatted("%s %s", &[Some("a")]).is_err());
        assert!(formatted("%x", &[Some("a")]).is_err());
        assert!(formatted("%I", &[None]).is_err());
    }
}
