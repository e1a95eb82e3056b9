//! `LIKE … ESCAPE 'c'` with an escape character other than the backslash, which DataFusion
//! does not support, rewritten to the same pattern with backslash escapes. SQLAlchemy sends
//! `nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'` when it lists schemas.
//!
//! Patterns that are string literals, or concatenations of them, are rewritten at planning;
//! any other pattern (a parameter: SQLAlchemy's psycopg 3 dialect sends
//! `nspname NOT LIKE $1::VARCHAR || '%' ESCAPE '/'`) goes through PostgreSQL's
//! `like_escape(pattern, escape)`, which converts it when the query runs.

use std::ops::ControlFlow;

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Statement, Value, ValueWithSpan, visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct LikeEscapeToBackslash;

impl SqlStatementRewriteRule for LikeEscapeToBackslash {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::Like {
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                pattern,
                escape_char,
                ..
            } = expr
                && let Some(escape) = escape_char.as_ref().and_then(escape_character)
                && escape != '\\'
            {
                **pattern = match literal_text(pattern) {
                    Some(text) => {
                        Expr::value(Value::SingleQuotedString(with_backslashes(&text, escape)))
                    }
                    None => crate::pg_compat::rewrite::sql_calls::function_call(
                        "like_escape",
                        vec![
                            (**pattern).clone(),
                            Expr::value(Value::SingleQuotedString(escape.to_string())),
                        ],
                    ),
                };
                *escape_char = None;
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// The escape character an `ESCAPE` clause names.
fn escape_character(value: &ValueWithSpan) -> Option<char> {
    match &value.value {
        Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text) => {
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The text of a string literal or a concatenation of string literals.
fn literal_text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(value) => match &value.value {
            Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text) => {
                Some(text.clone())
            }
            _ => None,
        },
        Expr::Nested(inner) => literal_text(inner),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => Some(literal_text(left)? + &literal_text(right)?),
        _ => None,
    }
}

/// `pattern` (escaped with `escape`) escaped with backslashes instead.
fn with_backslashes(pattern: &str, escape: char) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            // The escaped character stands for itself.
            if let Some(next) = chars.next() {
                if matches!(next, '%' | '_' | '\\') {
                    out.push('\\');
                }
                out.push(next);
            }
        } else if c == '\\' {
            // A backslash that was not an escape is a literal backslash.
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// PostgreSQL's `like_escape(pattern text, escape text) -> text`: `pattern`, escaped with
/// the single character `escape`, escaped with backslashes instead (with no escape
/// character when `escape` is empty).
pub(crate) fn like_escape_udf() -> ScalarUDF {
    create_udf(
        "like_escape",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let all_scalar = args
                .iter()
                .all(|arg| matches!(arg, ColumnarValue::Scalar(_)));
            let columns = ColumnarValue::values_to_arrays(args)?;
            let [patterns, escapes] = columns.as_slice() else {
                return Err(DataFusionError::Plan(
                    "like_escape takes a pattern and an escape character".to_owned(),
                ));
            };
            let (patterns, escapes) = (patterns.as_string::<i32>(), escapes.as_string::<i32>());
            let converted = (0..patterns.len())
                .map(|i| {
                    if patterns.is_null(i) || escapes.is_null(i) {
                        return Ok(None);
                    }
                    let mut escape = escapes.value(i).chars();
                    match (escape.next(), escape.next()) {
                        (Some(c), None) => Ok(Some(with_backslashes(patterns.value(i), c))),
                        // No escape character: every backslash is literal.
                        (None, _) => Ok(Some(patterns.value(i).replace('\\', "\\\\"))),
                        _ => Err(DataFusionError::Execution(
                            "invalid escape string: it must be empty or one character".to_owned(),
                        )),
                    }
                })
                .collect::<Result<StringArray, DataFusionError>>()?;
            if all_scalar {
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                    &converted, 0,
                )?))
            } else {
                Ok(ColumnarValue::Array(Arc::new(converted)))
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        crate::pg_compat::rewrite::sql_calls::rewritten_by(&LikeEscapeToBackslash, sql)
    }

    #[test]
    fn other_escape_characters_become_backslashes() {
        assert_eq!(
            rewritten("SELECT 1 WHERE n NOT LIKE 'pg/_' || '%' ESCAPE '/'"),
            r"SELECT 1 WHERE n NOT LIKE 'pg\_%'"
        );
        assert_eq!(
            rewritten(r"SELECT 1 WHERE n LIKE 'a!%b\c!!' ESCAPE '!'"),
            r"SELECT 1 WHERE n LIKE 'a\%b\\c!'"
        );
    }

    #[test]
    fn backslash_escapes_are_kept() {
        let kept = r"SELECT 1 WHERE n LIKE 'a\_b' ESCAPE '\'";
        assert_eq!(rewritten(kept), kept);
    }

    #[test]
    fn computed_patterns_are_converted_when_the_query_runs() {
        assert_eq!(
            rewritten("SELECT 1 WHERE n NOT LIKE $1::VARCHAR || '%' ESCAPE '/'"),
            "SELECT 1 WHERE n NOT LIKE like_escape($1::VARCHAR || '%', '/')"
        );
    }
}
