//! `'name'::regclass` as PostgreSQL reads it: a call of the session's `regclassin(name)`,
//! which finds the relation in `pg_catalog` and then the search path, and answers 42P01 for
//! a name that finds none.
//!
//! The compatibility parser turns the cast of a literal into a lookup subquery of
//! `pg_class` in the current schema only. A name it does not find yields NULL there, and
//! the query fails on the non-null oid column (22023) where PostgreSQL says
//! `relation "tpch.nosuch" does not exist`; and `'pg_class'::regclass` would miss
//! `pg_catalog`, where pgJDBC's and Metabase's table listings look (`classoid =
//! 'pg_class'::regclass`). This rule turns each such lookup back into the call.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Statement, Value,
    ValueWithSpan, visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::{RewriteRegCastToSubquery, SqlStatementRewriteRule};

use crate::pg_compat::rewrite::sql_calls::{called_name, function_call};

/// The rewrite rule: the compatibility parser's lookup of a relation name, as text with a
/// `$1` where the name goes.
#[derive(Debug)]
pub(crate) struct RegclassLookups {
    lookup: Option<String>,
}

impl RegclassLookups {
    /// The rule for the lookups of the compatibility parser in use.
    pub(crate) fn new() -> Self {
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT $1::regclass")
            .ok()
            .and_then(|mut statements| statements.pop());
        let lookup = statement.and_then(|statement| {
            let mut lookup = None;
            let _ = visit_expressions(
                &RewriteRegCastToSubquery::new().rewrite(statement),
                |expr| {
                    if let Expr::Subquery(query) = expr {
                        lookup = Some(query.to_string());
                    }
                    ControlFlow::<()>::Continue(())
                },
            );
            lookup
        });
        Self { lookup }
    }

    /// The name `query` looks up, if it is the compatibility parser's lookup of a literal.
    fn looked_up_name(&self, query: &Query) -> Option<String> {
        let lookup = self.lookup.as_ref()?;
        let mut name = None;
        let _ = visit_expressions(query, |expr| {
            if let Expr::Function(function) = expr
                && called_name(function).as_deref() == Some("parse_ident")
                && let FunctionArguments::List(list) = &function.args
                && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(argument))] =
                    list.args.as_slice()
            {
                name = text_literal(argument);
            }
            ControlFlow::<()>::Continue(())
        });
        let name = name?;
        let quoted = format!("'{}'", name.replace('\'', "''"));
        (query.to_string() == lookup.replace("$1", &quoted)).then_some(name)
    }
}

impl SqlStatementRewriteRule for RegclassLookups {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::Subquery(query) = expr
                && let Some(name) = self.looked_up_name(query)
            {
                *expr = function_call(
                    "regclassin",
                    vec![Expr::value(Value::SingleQuotedString(name))],
                );
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// The text of `'…'` or `'…'::TEXT`.
fn text_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Cast {
            expr,
            data_type: DataType::Text,
            ..
        } => text_literal(expr),
        Expr::Value(ValueWithSpan {
            value: Value::SingleQuotedString(text),
            ..
        }) => Some(text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let rules: [&dyn SqlStatementRewriteRule; 2] =
            [&RewriteRegCastToSubquery::new(), &RegclassLookups::new()];
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("parses")
            .remove(0);
        rules
            .into_iter()
            .fold(statement, |statement, rule| rule.rewrite(statement))
            .to_string()
    }

    #[test]
    fn casts_of_names_become_calls_that_find_the_relation() {
        assert_eq!(
            rewritten("SELECT 'tpch.nosuch'::regclass"),
            "SELECT regclassin('tpch.nosuch')"
        );
        assert_eq!(
            rewritten("SELECT 1 WHERE classoid = 'pg_class'::pg_catalog.regclass"),
            "SELECT 1 WHERE classoid = regclassin('pg_class')"
        );
        assert_eq!(
            rewritten(r#"SELECT '"Mixed"."It''s"'::regclass"#),
            r#"SELECT regclassin('"Mixed"."It''s"')"#
        );
    }

    #[test]
    fn oids_parameters_and_other_subqueries_are_kept() {
        assert_eq!(rewritten("SELECT '16417'::regclass"), "SELECT 16417");
        assert!(rewritten("SELECT $1::regclass").contains("parse_ident($1::TEXT)"));
        let other = "SELECT (SELECT parse_ident('a.b'::TEXT) AS parts)";
        assert_eq!(rewritten(other), other);
    }
}
