//! Operators named with their schema, `a operator(pg_catalog.=) b`, as the plain operator.
//! psqlODBC (17.00.0007 on) qualifies every operator of its catalog queries so; the
//! compatibility parser rewrites the regular-expression ones only.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Statement, visit_expressions_mut};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct QualifiedOperators;

impl SqlStatementRewriteRule for QualifiedOperators {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::BinaryOp { op, .. } = expr
                && let BinaryOperator::PGCustomBinaryOperator(name) = op
                && let [schema, symbol] = name.as_slice()
                && schema.eq_ignore_ascii_case("pg_catalog")
                && let Some(plain) = plain_operator(symbol)
            {
                *op = plain;
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// The operator `symbol` names in `pg_catalog`.
fn plain_operator(symbol: &str) -> Option<BinaryOperator> {
    Some(match symbol {
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        ">" => BinaryOperator::Gt,
        "<=" => BinaryOperator::LtEq,
        ">=" => BinaryOperator::GtEq,
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "~~*" => BinaryOperator::PGILikeMatch,
        "!~~*" => BinaryOperator::PGNotILikeMatch,
        "||" => BinaryOperator::StringConcat,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Multiply,
        "/" => BinaryOperator::Divide,
        "%" => BinaryOperator::Modulo,
        "&" => BinaryOperator::BitwiseAnd,
        "|" => BinaryOperator::BitwiseOr,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        crate::pg_compat::rewrite::sql_calls::rewritten_by(&QualifiedOperators, sql)
    }

    #[test]
    fn qualified_operators_are_plain_ones() {
        assert_eq!(
            rewritten(
                "SELECT 1 FROM a WHERE a.x operator(pg_catalog.=) 1 \
                 AND a.n operator(pg_catalog.<=) a.m AND a.n OPERATOR(pg_catalog.>) 0"
            ),
            "SELECT 1 FROM a WHERE a.x = 1 AND a.n <= a.m AND a.n > 0"
        );
    }

    #[test]
    fn operators_of_other_schemas_are_kept() {
        let kept = "SELECT 1 FROM a WHERE a.x OPERATOR(public.=) 1";
        assert_eq!(rewritten(kept), kept);
    }
}
