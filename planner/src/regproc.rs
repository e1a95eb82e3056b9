//! `regproc` columns compared with 0. `pg_type`'s function columns (`typreceive`, …) are
//! `regproc` in PostgreSQL: an oid that prints as the function's name, and as `-` for none.
//! `datafusion-pg-catalog` keeps them as the printed text, so `typreceive != 0` (the ADBC
//! driver's type query) would compare text with a number. In catalog statements such a
//! comparison with 0 becomes one with `'-'`, which means the same.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Statement, Value, visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

/// The `regproc` columns of `pg_type`.
const REGPROC_COLUMNS: &[&str] = &[
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
    "typsubscript",
];

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct RegprocZero;

impl SqlStatementRewriteRule for RegprocZero {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::BinaryOp { left, op, right } = expr
                && matches!(op, BinaryOperator::Eq | BinaryOperator::NotEq)
            {
                let dash = || Expr::value(Value::SingleQuotedString("-".to_owned()));
                if is_regproc_column(left) && is_zero(right) {
                    **right = dash();
                } else if is_regproc_column(right) && is_zero(left) {
                    **left = dash();
                }
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

fn is_regproc_column(expr: &Expr) -> bool {
    let name = match expr {
        Expr::Identifier(ident) => ident,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(last) => last,
            None => return false,
        },
        _ => return false,
    };
    REGPROC_COLUMNS.contains(&name.value.to_ascii_lowercase().as_str())
}

fn is_zero(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(value) if matches!(&value.value, Value::Number(text, _) if text == "0"))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn comparisons_of_regproc_columns_with_zero_use_the_dash() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT oid FROM pg_catalog.pg_type WHERE (typreceive != 0 OR 0 <> t.typsend) AND typlen = 0",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            RegprocZero.rewrite(statement).to_string(),
            "SELECT oid FROM pg_catalog.pg_type WHERE (typreceive <> '-' OR '-' <> t.typsend) AND typlen = 0"
        );
    }
}
