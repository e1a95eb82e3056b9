//! Unqualified names of system catalogs in `'name'::regclass`, found in `pg_catalog`.
//!
//! PostgreSQL looks an unqualified relation name up in `pg_catalog` before the search path,
//! so `'pg_class'::regclass` is `pg_catalog.pg_class` (pgJDBC's and Metabase's table
//! listings join `pg_description` on `classoid = 'pg_class'::regclass`). The compatibility
//! parser turns the cast into a `pg_class` lookup of `parse_ident('pg_class'::TEXT)` in the
//! current schema only; this rule qualifies the names of `pg_catalog`'s tables there.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, Value,
    visit_expressions_mut,
};
use datafusion_pg_catalog::pg_catalog::PG_CATALOG_TABLES;
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::rewrite::sql_calls::called_name;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct SystemCatalogNames;

impl SqlStatementRewriteRule for SystemCatalogNames {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::Function(function) = expr
                && called_name(function).as_deref() == Some("parse_ident")
                && let FunctionArguments::List(list) = &mut function.args
                && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))] =
                    list.args.as_mut_slice()
                && let Some(name) = text_literal(argument)
                && PG_CATALOG_TABLES.contains(&name.as_str())
            {
                *name = format!("pg_catalog.{name}");
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// The text of `'…'` or `'…'::TEXT`.
fn text_literal(expr: &mut Expr) -> Option<&mut String> {
    match expr {
        Expr::Cast {
            expr,
            data_type: DataType::Text,
            ..
        } => text_literal(expr),
        Expr::Value(value) => match &mut value.value {
            Value::SingleQuotedString(text) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        crate::pg_compat::rewrite::sql_calls::rewritten_by(&SystemCatalogNames, sql)
    }

    #[test]
    fn system_catalogs_are_found_in_pg_catalog() {
        assert_eq!(
            rewritten("SELECT parse_ident('pg_class'::TEXT) AS parts"),
            "SELECT parse_ident('pg_catalog.pg_class'::TEXT) AS parts"
        );
    }

    #[test]
    fn other_and_qualified_names_are_kept() {
        for kept in [
            "SELECT parse_ident('orders'::TEXT) AS parts",
            "SELECT parse_ident('tpch.pg_class'::TEXT) AS parts",
        ] {
            assert_eq!(rewritten(kept), kept);
        }
    }
}
