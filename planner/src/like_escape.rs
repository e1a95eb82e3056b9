//! `LIKE … ESCAPE 'c'` with an escape character other than the backslash, which DataFusion
//! does not support, rewritten to the same pattern with backslash escapes. SQLAlchemy sends
//! `nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'` when it lists schemas.
//!
//! Only patterns that are string literals, or concatenations of them, are rewritten; any
//! other pattern keeps its `ESCAPE` and the engine reports it as unsupported.

use std::ops::ControlFlow;

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
                && let Some(text) = literal_text(pattern)
            {
                **pattern = Expr::value(Value::SingleQuotedString(with_backslashes(&text, escape)));
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

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn rewritten(sql: &str) -> String {
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("parses")
            .remove(0);
        LikeEscapeToBackslash.rewrite(statement).to_string()
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
    fn backslash_escapes_and_computed_patterns_are_kept() {
        let kept = r"SELECT 1 WHERE n LIKE 'a\_b' ESCAPE '\'";
        assert_eq!(rewritten(kept), kept);
        let computed = "SELECT 1 WHERE n LIKE lower(m) ESCAPE '/'";
        assert_eq!(rewritten(computed), computed);
    }
}
