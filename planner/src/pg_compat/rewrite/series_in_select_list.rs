//! `generate_series(start, stop)` as an output column, PostgreSQL's set-returning function
//! in a select list (psqlODBC's foreign-key listing numbers key columns so), rewritten to
//! `unnest(generate_series(start, stop))`: the engine's `generate_series` is an array, which
//! `unnest` makes rows, one per number, and none when a bound is NULL.

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArgExpr, FunctionArguments, Query, SelectItem, SetExpr, Statement, VisitMut,
    VisitorMut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;
use std::ops::ControlFlow;

use crate::pg_compat::rewrite::sql_calls::{called_name, function_call};

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct SeriesInSelectList;

impl SqlStatementRewriteRule for SeriesInSelectList {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = statement.visit(&mut Queries);
        statement
    }
}

/// Visits every query, subqueries included.
struct Queries;

impl VisitorMut for Queries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item
                    && is_series(expr)
                {
                    *expr = function_call("unnest", vec![expr.clone()]);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether `expr` is `generate_series(start, stop)`.
fn is_series(expr: &Expr) -> bool {
    let Expr::Function(function) = expr else {
        return false;
    };
    called_name(function).as_deref() == Some("generate_series")
        && matches!(&function.args, FunctionArguments::List(list)
            if list.args.len() == 2
                && list.args.iter().all(|arg| matches!(arg,
                    datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(FunctionArgExpr::Expr(_)))))
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn a_series_in_a_select_list_becomes_rows() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT r.i FROM (SELECT conkey, generate_series(array_lower(conkey, 1), \
             array_upper(conkey, 1)) AS i FROM pg_constraint) r, generate_series(1, 3) g",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            SeriesInSelectList.rewrite(statement).to_string(),
            "SELECT r.i FROM (SELECT conkey, unnest(generate_series(array_lower(conkey, 1), \
             array_upper(conkey, 1))) AS i FROM pg_constraint) r, generate_series(1, 3) g"
        );
    }
}
