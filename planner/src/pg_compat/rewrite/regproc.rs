//! `regproc` columns compared with 0. `pg_type`'s function columns (`typreceive`, …) are
//! `regproc` in PostgreSQL: an oid that prints as the function's name, and as `-` for none.
//! `datafusion-pg-catalog` keeps them as the printed text, so `typreceive != 0` (the ADBC
//! driver's type query) would compare text with a number. In catalog statements such a
//! comparison with 0 becomes one with `'-'`, and one with `'pg_catalog.array_in'::regproc`
//! (pgJDBC) one with `'array_in'`, which mean the same; `pg_proc.oid` compared with such a
//! column becomes `pg_proc.proname` (Npgsql).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Ident, SetExpr, Statement, TableFactor, Value, visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::rewrite::sql_calls::column_in;

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
                if column_in(left, REGPROC_COLUMNS) {
                    if let Some(name) = regproc_text(right) {
                        **right = Expr::value(Value::SingleQuotedString(name));
                    } else {
                        by_function_name(right);
                    }
                } else if column_in(right, REGPROC_COLUMNS) {
                    if let Some(name) = regproc_text(left) {
                        **left = Expr::value(Value::SingleQuotedString(name));
                    } else {
                        by_function_name(left);
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// `p.oid` compared with a `regproc` column (Npgsql joins `pg_proc ON pg_proc.oid =
/// a.typreceive`) becomes `p.proname`, the name the column holds.
fn by_function_name(expr: &mut Expr) {
    if let Expr::CompoundIdentifier(parts) = expr
        && let Some(last) = parts.last_mut()
        && last.value.eq_ignore_ascii_case("oid")
    {
        *last = Ident::new("proname");
    }
}

/// How a `regproc` value compared with a column prints: `-` for 0, the function's bare
/// name for `'[pg_catalog.]name'::regproc` (which the compatibility rules turned into
/// `(SELECT oid FROM pg_catalog.pg_proc WHERE proname = '…')`).
fn regproc_text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(value) if matches!(&value.value, Value::Number(text, _) if text == "0") => {
            Some("-".to_owned())
        }
        Expr::Subquery(query) => {
            let SetExpr::Select(select) = query.body.as_ref() else {
                return None;
            };
            let [table] = select.from.as_slice() else {
                return None;
            };
            let TableFactor::Table { name, .. } = &table.relation else {
                return None;
            };
            let reads_pg_proc = name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .is_some_and(|ident| ident.value.eq_ignore_ascii_case("pg_proc"));
            let Some(Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            }) = &select.selection
            else {
                return None;
            };
            let by_name = matches!(left.as_ref(), Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case("proname"));
            match right.as_ref() {
                Expr::Value(value) if reads_pg_proc && by_name => match &value.value {
                    Value::SingleQuotedString(function) => Some(
                        function
                            .strip_prefix("pg_catalog.")
                            .unwrap_or(function)
                            .to_owned(),
                    ),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn function_oids_compared_with_regproc_columns_are_names() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM pg_type AS a JOIN pg_proc ON pg_proc.oid = a.typreceive",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            RegprocZero.rewrite(statement).to_string(),
            "SELECT 1 FROM pg_type AS a JOIN pg_proc ON pg_proc.proname = a.typreceive"
        );
    }

    #[test]
    fn comparisons_with_named_functions_use_the_name() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT typinput = (SELECT oid FROM pg_catalog.pg_proc WHERE proname = 'pg_catalog.array_in') FROM pg_type",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            RegprocZero.rewrite(statement).to_string(),
            "SELECT typinput = 'array_in' FROM pg_type"
        );
    }

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
