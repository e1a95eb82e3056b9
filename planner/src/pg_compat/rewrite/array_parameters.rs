//! `x = ANY($n)` in catalog statements, with `$n` of no declared type: the parameter is
//! typed `text[]`. The compatibility rules turn `x = ANY(arr)` into
//! `array_contains(arr, x)`, and DataFusion cannot infer a placeholder's type from there.
//! In catalog queries these lists are names and kinds (the ADBC driver sends
//! `c.relkind = ANY($2)`), so text is their type; data queries are left as they are.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Statement, Value, visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::rewrite::sql_calls::called_name;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct TextArrayParameters;

impl SqlStatementRewriteRule for TextArrayParameters {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::Function(function) = expr
                && matches!(
                    called_name(function).as_deref(),
                    Some("array_contains" | "array_has")
                )
                && let FunctionArguments::List(list) = &mut function.args
                && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(array))) =
                    list.args.first_mut()
                && matches!(array, Expr::Value(value) if matches!(value.value, Value::Placeholder(_)))
            {
                *array = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(array.clone()),
                    data_type: DataType::Array(ArrayElemTypeDef::SquareBracket(
                        Box::new(DataType::Text),
                        None,
                    )),
                    array: false,
                    format: None,
                };
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn untyped_array_parameters_become_text_arrays() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT relname FROM pg_class c WHERE array_contains($2, c.relkind) AND array_has(ARRAY['a'], c.relname)",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            TextArrayParameters.rewrite(statement).to_string(),
            "SELECT relname FROM pg_class c WHERE array_contains(CAST($2 AS TEXT[]), c.relkind) AND array_has(ARRAY['a'], c.relname)"
        );
    }
}
