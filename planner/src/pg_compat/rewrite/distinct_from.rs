//! `a IS [NOT] DISTINCT FROM b AND c` as PostgreSQL reads it, `(a IS DISTINCT FROM b) AND
//! c`: the parser takes everything after `FROM` as the right operand, so `AND` and `OR`
//! end up inside it (`a IS DISTINCT FROM (b AND c)`, which then fails to plan). `IS` binds
//! tighter than `AND` and `OR` in PostgreSQL, so the operand is cut back to what comes
//! before the first of them. A parenthesized operand is left as written.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Statement, Value, visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct DistinctFromPrecedence;

impl SqlStatementRewriteRule for DistinctFromPrecedence {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            let rebuilt = match std::mem::replace(expr, Expr::value(Value::Null)) {
                Expr::IsDistinctFrom(left, right) => regroup(*left, *right, true),
                Expr::IsNotDistinctFrom(left, right) => regroup(*left, *right, false),
                other => other,
            };
            *expr = rebuilt;
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// `left IS [NOT] DISTINCT FROM right` with `right`'s leading `AND`/`OR` chain lifted out.
fn regroup(left: Expr, right: Expr, distinct: bool) -> Expr {
    match right {
        Expr::BinaryOp {
            left: first,
            op: op @ (BinaryOperator::And | BinaryOperator::Or),
            right: rest,
        } => Expr::BinaryOp {
            left: Box::new(regroup(left, *first, distinct)),
            op,
            right: rest,
        },
        operand if distinct => Expr::IsDistinctFrom(Box::new(left), Box::new(operand)),
        operand => Expr::IsNotDistinctFrom(Box::new(left), Box::new(operand)),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::ast::SetExpr;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    /// The WHERE condition of `SELECT 1 WHERE <condition>`, rewritten.
    fn condition(condition: &str) -> Expr {
        let sql = format!("SELECT 1 WHERE {condition}");
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
            .expect("parses")
            .remove(0);
        let Statement::Query(query) = DistinctFromPrecedence.rewrite(statement) else {
            panic!("a query");
        };
        let SetExpr::Select(select) = *query.body else {
            panic!("a select");
        };
        select.selection.expect("a condition")
    }

    fn binary(expr: &Expr) -> (&Expr, &BinaryOperator, &Expr) {
        match expr {
            Expr::BinaryOp { left, op, right } => (left, op, right),
            other => panic!("not a binary operation: {other}"),
        }
    }

    #[test]
    fn and_and_or_bind_looser_than_is_distinct_from() {
        // ((a IS DISTINCT FROM DATE '…') AND a < DATE '…') OR b
        let regrouped =
            condition("a IS DISTINCT FROM DATE '1995-01-01' AND a < DATE '1996-01-01' OR b");
        let (either, or, b) = binary(&regrouped);
        assert_eq!((or, b.to_string().as_str()), (&BinaryOperator::Or, "b"));
        let (distinct, and, before) = binary(either);
        assert_eq!(and, &BinaryOperator::And);
        assert_eq!(before.to_string(), "a < DATE '1996-01-01'");
        assert!(matches!(distinct, Expr::IsDistinctFrom(..)), "{distinct}");
        let not_regrouped = condition("a IS NOT DISTINCT FROM 1 AND b");
        let (not_distinct, and, _) = binary(&not_regrouped);
        assert_eq!(and, &BinaryOperator::And);
        assert!(matches!(not_distinct, Expr::IsNotDistinctFrom(..)));
        // Written in parentheses, the operand is kept.
        assert!(matches!(
            condition("a IS DISTINCT FROM (b AND c)"),
            Expr::IsDistinctFrom(..)
        ));
    }
}
