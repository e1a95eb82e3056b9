//! `oid::regclass` in what a catalog query returns, printed as PostgreSQL prints a
//! `regclass`: the relation's name (qualified when the search path would not find it), by
//! the session's `regclassout(oid)`. psql's `\d` lists the tables referencing a key so
//! (`conrelid::pg_catalog.regclass AS ontable`).
//!
//! Only the casts that are whole output columns of the statement's own SELECT are changed:
//! elsewhere a `regclass` is compared with oids, and stays one.

use datafusion::sql::sqlparser::ast::{
    DataType, Expr, ObjectNamePart, SelectItem, SetExpr, Statement, Value,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::rewrite::sql_calls::function_call;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct RegclassOutput;

impl SqlStatementRewriteRule for RegclassOutput {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        if let Statement::Query(query) = &mut statement {
            output_columns(&mut query.body);
        }
        statement
    }
}

fn output_columns(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            for item in &mut select.projection {
                match item {
                    SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                        if let Some(printed) = printed(expr) {
                            *expr = printed;
                        }
                    }
                    _ => {}
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            output_columns(left);
            output_columns(right);
        }
        SetExpr::Query(query) => output_columns(&mut query.body),
        _ => {}
    }
}

/// `regclassout(x)` for `x::regclass` of anything but a literal.
fn printed(expr: &Expr) -> Option<Expr> {
    let Expr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return None;
    };
    let regclass = match data_type {
        DataType::Regclass => true,
        DataType::Custom(name, _) => name
            .0
            .last()
            .and_then(ObjectNamePart::as_ident)
            .is_some_and(|ident| ident.value.eq_ignore_ascii_case("regclass")),
        _ => false,
    };
    if !regclass
        || matches!(inner.as_ref(), Expr::Value(value) if matches!(value.value, Value::SingleQuotedString(_)))
    {
        return None;
    }
    Some(function_call("regclassout", vec![(**inner).clone()]))
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
        RegclassOutput.rewrite(statement).to_string()
    }

    #[test]
    fn output_casts_print_names_and_comparisons_keep_oids() {
        assert_eq!(
            rewritten(
                "SELECT conname, conrelid::pg_catalog.regclass AS ontable, c.confrelid::regclass \
                 FROM pg_constraint c WHERE conrelid = 'tpch.orders'::regclass"
            ),
            "SELECT conname, regclassout(conrelid) AS ontable, regclassout(c.confrelid) \
             FROM pg_constraint c WHERE conrelid = 'tpch.orders'::REGCLASS"
        );
        assert_eq!(
            rewritten("SELECT 'pg_class'::regclass"),
            "SELECT 'pg_class'::REGCLASS"
        );
    }
}
