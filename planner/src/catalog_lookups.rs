//! Functions that look up a catalog table, rewritten to the lookups they are:
//!
//! * `obj_description(oid [, catalog])` and `col_description(table, column)` read
//!   `pg_description` (where the tenant's datasets' descriptions are):
//!   `(SELECT min(described.description) FROM pg_catalog.pg_description AS described
//!   WHERE described.objoid = <oid> AND described.objsubid = <column, or 0 for itself>)`;
//! * `to_regtype(name)` (psycopg's type lookup) reads `pg_type`:
//!   `(SELECT min(t.oid) FROM pg_catalog.pg_type AS t WHERE t.typname = <name>)`, NULL for
//!   a type that does not exist.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, Value,
    visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::sql_calls::called_name;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct CatalogLookups;

impl SqlStatementRewriteRule for CatalogLookups {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            let Expr::Function(function) = expr else {
                return ControlFlow::<()>::Continue(());
            };
            let Some(name) = called_name(function) else {
                return ControlFlow::Continue(());
            };
            let FunctionArguments::List(list) = &function.args else {
                return ControlFlow::Continue(());
            };
            let args: Vec<&Expr> = list
                .args
                .iter()
                .filter_map(|arg| match arg {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) => Some(arg),
                    _ => None,
                })
                .collect();
            let lookup = match (name.as_str(), args.as_slice()) {
                ("col_description", [object, column]) => {
                    description((*object).clone(), (*column).clone())
                }
                ("obj_description", [object] | [object, _]) => description(
                    (*object).clone(),
                    Expr::value(Value::Number("0".to_owned(), false)),
                ),
                ("to_regtype", [type_name]) => type_oid((*type_name).clone()),
                _ => None,
            };
            if let Some(lookup) = lookup {
                *expr = lookup;
            }
            ControlFlow::Continue(())
        });
        statement
    }
}

/// The scalar subquery reading the oid of the type named `type_name`.
fn type_oid(type_name: Expr) -> Option<Expr> {
    let mut subquery =
        parse("(SELECT min(t.oid) FROM pg_catalog.pg_type AS t WHERE t.typname = 0)")?;
    if let Expr::Subquery(query) = &mut subquery
        && let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.body.as_mut()
        && let Some(Expr::BinaryOp { right, .. }) = &mut select.selection
    {
        **right = Expr::Nested(Box::new(type_name));
        return Some(subquery);
    }
    None
}

fn parse(sql: &str) -> Option<Expr> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .ok()?
        .parse_expr()
        .ok()
}

/// The scalar subquery reading the description of `object`'s `column` (0: itself).
fn description(object: Expr, column: Expr) -> Option<Expr> {
    let mut subquery = parse(
        "(SELECT min(described.description) FROM pg_catalog.pg_description AS described \
         WHERE described.objoid = 0 AND described.objsubid = 0)",
    )?;
    // Put the arguments where the template has its zeros.
    if let Expr::Subquery(query) = &mut subquery
        && let datafusion::sql::sqlparser::ast::SetExpr::Select(select) = query.body.as_mut()
        && let Some(Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        }) = &mut select.selection
        && let (Expr::BinaryOp { right: oid, .. }, Expr::BinaryOp { right: subid, .. }) =
            (left.as_mut(), right.as_mut())
    {
        **oid = Expr::Nested(Box::new(object));
        **subid = Expr::Nested(Box::new(column));
        return Some(subquery);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_regtype_becomes_a_lookup() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT typname FROM pg_type t WHERE t.oid = to_regtype($1)",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            CatalogLookups.rewrite(statement).to_string(),
            "SELECT typname FROM pg_type t WHERE t.oid = (SELECT min(t.oid) FROM pg_catalog.pg_type AS t WHERE t.typname = ($1))"
        );
    }

    #[test]
    fn description_functions_become_lookups() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT obj_description(c.oid, 'pg_class'), col_description(c.oid, a.attnum) FROM pg_class c, pg_attribute a",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            CatalogLookups.rewrite(statement).to_string(),
            "SELECT (SELECT min(described.description) FROM pg_catalog.pg_description AS described \
             WHERE described.objoid = (c.oid) AND described.objsubid = (0)), \
             (SELECT min(described.description) FROM pg_catalog.pg_description AS described \
             WHERE described.objoid = (c.oid) AND described.objsubid = (a.attnum)) \
             FROM pg_class c, pg_attribute a"
        );
    }
}
