//! `FETCH FIRST n ROWS ONLY` (SQL's standard form of `LIMIT`, which several BI tools page
//! with, after `OFFSET n ROWS`) rewritten to `LIMIT n`, which DataFusion plans. `FETCH FIRST
//! ROW ONLY` is one row. `WITH TIES` and `PERCENT` are left as they are (and refused).

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Fetch, LimitClause, Query, Statement, Value, VisitMut, VisitorMut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct FetchFirstToLimit;

impl SqlStatementRewriteRule for FetchFirstToLimit {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = statement.visit(&mut Queries);
        statement
    }
}

/// Visits every query, subqueries included.
struct Queries;

impl VisitorMut for Queries {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let Some(Fetch {
            with_ties: false,
            percent: false,
            quantity,
        }) = &query.fetch
        else {
            return ControlFlow::Continue(());
        };
        let rows = quantity
            .clone()
            .unwrap_or_else(|| Expr::value(Value::Number("1".to_owned(), false)));
        match &mut query.limit_clause {
            None => {
                query.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(rows),
                    offset: None,
                    limit_by: Vec::new(),
                });
            }
            Some(LimitClause::LimitOffset {
                limit: limit @ None,
                ..
            }) => *limit = Some(rows),
            // Both LIMIT and FETCH: PostgreSQL refuses that too; left for the planner to say.
            Some(_) => return ControlFlow::Continue(()),
        }
        query.fetch = None;
        ControlFlow::Continue(())
    }
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
        FetchFirstToLimit.rewrite(statement).to_string()
    }

    #[test]
    fn fetch_first_becomes_limit_with_its_offset_and_in_subqueries() {
        assert_eq!(
            rewritten("SELECT a FROM t ORDER BY a FETCH FIRST 5 ROWS ONLY"),
            "SELECT a FROM t ORDER BY a LIMIT 5"
        );
        assert_eq!(
            rewritten("SELECT a FROM t OFFSET 10 ROWS FETCH NEXT 5 ROWS ONLY"),
            "SELECT a FROM t LIMIT 5 OFFSET 10 ROWS"
        );
        assert_eq!(
            rewritten("SELECT * FROM (SELECT a FROM t FETCH FIRST ROW ONLY) AS s"),
            "SELECT * FROM (SELECT a FROM t LIMIT 1) AS s"
        );
        assert_eq!(
            rewritten("SELECT a FROM t FETCH FIRST 5 ROWS WITH TIES"),
            "SELECT a FROM t FETCH FIRST 5 ROWS WITH TIES"
        );
    }
}
