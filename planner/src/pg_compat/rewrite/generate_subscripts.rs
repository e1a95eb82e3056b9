//! `generate_subscripts(array, 1)`, a set-returning function DataFusion lacks, rewritten to
//! `unnest(range(1, cardinality(array) + 1))`: the subscripts of the array, one row each,
//! and no row for a NULL or empty array. SQLAlchemy orders an index's columns by it.
//!
//! Subscripts start at 1 as for arrays; PostgreSQL's `int2vector` (`pg_index.indkey`)
//! starts at 0, which changes the numbers but not their order.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Statement, Value, visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::rewrite::sql_calls::{called_name, function_call};

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct GenerateSubscripts;

impl SqlStatementRewriteRule for GenerateSubscripts {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::Function(function) = expr
                && called_name(function).as_deref() == Some("generate_subscripts")
                && let Some(array) = first_of_two_arguments(&function.args)
            {
                let count = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(function_call("cardinality", vec![array])),
                    data_type: DataType::BigInt(None),
                    array: false,
                    format: None,
                };
                let end = Expr::BinaryOp {
                    left: Box::new(count),
                    op: BinaryOperator::Plus,
                    right: Box::new(Expr::value(Value::Number("1".to_owned(), false))),
                };
                let subscripts = function_call(
                    "range",
                    vec![Expr::value(Value::Number("1".to_owned(), false)), end],
                );
                *expr = function_call("unnest", vec![subscripts]);
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// The first of exactly two plain arguments.
fn first_of_two_arguments(args: &FunctionArguments) -> Option<Expr> {
    let FunctionArguments::List(list) = args else {
        return None;
    };
    match list.args.as_slice() {
        [
            FunctionArg::Unnamed(FunctionArgExpr::Expr(array)),
            FunctionArg::Unnamed(_),
        ] => Some(array.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn subscripts_become_an_unnested_range() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT unnest(i.indkey), pg_catalog.generate_subscripts(i.indkey, 1) FROM pg_index i",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            GenerateSubscripts.rewrite(statement).to_string(),
            "SELECT unnest(i.indkey), unnest(range(1, CAST(cardinality(i.indkey) AS BIGINT) + 1)) FROM pg_index i"
        );
    }
}
