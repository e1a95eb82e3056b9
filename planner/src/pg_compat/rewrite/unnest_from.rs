//! `UNNEST` in FROM as PostgreSQL has it, for what DataFusion does otherwise:
//!
//! * the single column of `unnest(array) AS name` (no column list) is named `name`, not
//!   `UNNEST(…)`: the alias gets the column list `name(name)`;
//! * `t AS a CROSS JOIN unnest(a.col) AS x` reads `a`'s columns (it is implicitly LATERAL),
//!   which DataFusion cannot plan: it becomes `(SELECT a.*, unnest(a.col) AS x FROM t AS
//!   a) AS a`, the same rows.
//!
//! The ADBC driver lists constraints with `… pg_constraint AS con CROSS JOIN
//! UNNEST(conkey) AS conkeys … attnum = conkeys`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Join, JoinConstraint, JoinOperator, Query, SetExpr, Statement, TableAliasColumnDef,
    TableFactor, TableWithJoins, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct UnnestInFrom;

impl SqlStatementRewriteRule for UnnestInFrom {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = statement.visit(&mut Visitor);
        statement
    }
}

struct Visitor;

impl VisitorMut for Visitor {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for table in &mut select.from {
                lateral_unnest_into_relation(table);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::UNNEST {
            alias: Some(alias),
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } = factor
            && array_exprs.len() == 1
            && alias.columns.is_empty()
        {
            alias.columns = vec![TableAliasColumnDef {
                name: alias.name.clone(),
                data_type: None,
            }];
        }
        ControlFlow::Continue(())
    }
}

/// `t AS a CROSS JOIN unnest(e) AS x …` as `(SELECT a.*, unnest(e) AS x FROM t AS a) AS a …`.
fn lateral_unnest_into_relation(table: &mut TableWithJoins) {
    let TableFactor::Table {
        name,
        alias,
        args: None,
        ..
    } = &table.relation
    else {
        return;
    };
    let Some(Join {
        relation:
            TableFactor::UNNEST {
                alias: Some(unnest_alias),
                array_exprs,
                with_offset: false,
                with_ordinality: false,
                ..
            },
        join_operator: JoinOperator::CrossJoin(JoinConstraint::None),
        ..
    }) = table.joins.first()
    else {
        return;
    };
    let [array] = array_exprs.as_slice() else {
        return;
    };
    let reference = match alias {
        Some(alias) => alias.name.to_string(),
        None => match name.0.last() {
            Some(last) => last.to_string(),
            None => return,
        },
    };
    let column = unnest_alias.name.to_string();
    let sql = format!(
        "(SELECT {reference}.*, unnest({array}) AS {column} FROM {name} AS {reference}) AS {reference}"
    );
    let Ok(relation) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut parser| parser.parse_table_factor())
    else {
        return;
    };
    table.relation = relation;
    table.joins.remove(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lateral_unnest_joins_its_table_as_a_derived_table() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT conkeys FROM pg_constraint AS con CROSS JOIN UNNEST(conkey) AS conkeys",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            UnnestInFrom.rewrite(statement).to_string(),
            "SELECT conkeys FROM (SELECT con.*, unnest(conkey) AS conkeys FROM pg_constraint AS con) AS con"
        );
    }

    #[test]
    fn an_unnest_alias_alone_names_its_column() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT k FROM UNNEST(ARRAY[1, 2]) AS k",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            UnnestInFrom.rewrite(statement).to_string(),
            "SELECT k FROM UNNEST(ARRAY[1, 2]) AS k (k)"
        );
    }
}
