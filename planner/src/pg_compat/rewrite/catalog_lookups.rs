//! Functions that look up a catalog table, rewritten to the lookups they are:
//!
//! * `obj_description(oid [, catalog])` and `col_description(table, column)` read
//!   `pg_description` (where the tenant's datasets' descriptions are):
//!   `(SELECT min(described.description) FROM pg_catalog.pg_description AS described
//!   WHERE described.objoid = <oid> AND described.objsubid = <column, or 0 for itself>)`;
//! * `to_regtype(name)` (psycopg's type lookup) reads `pg_type`:
//!   `(SELECT min(found_type.oid) FROM pg_catalog.pg_type AS found_type
//!   WHERE found_type.typname = <name>)`, NULL for a type that does not exist;
//! * a computed text cast to `regclass` (Metabase: `CAST(FORMAT('%I.%I', schema, table) AS
//!   REGCLASS)`) and `to_regclass(name)` read `pg_class`:
//!   `(SELECT min(found.oid) FROM (SELECT oid, <quoted schema>.<quoted name> AS name FROM
//!   pg_class JOIN pg_namespace …) AS found WHERE found.name = <name>)`, the name qualified
//!   with the current schema when it has none (the engine decorrelates a comparison of a
//!   column only, hence the derived table); the description of such a relation is one
//!   lookup joining `pg_description` to those. (A literal name is the
//!   compatibility parser's, which finds it at planning.)

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement,
    Value, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::rewrite::sql_calls::called_name;

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct CatalogLookups;

impl SqlStatementRewriteRule for CatalogLookups {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        // Functions first: a description of a relation found by name is one lookup, not a
        // lookup inside another (which the engine cannot decorrelate).
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Some(lookup) = function_lookup(expr) {
                *expr = lookup;
            }
            ControlFlow::<()>::Continue(())
        });
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Some(name) = computed_regclass(expr)
                && let Some(lookup) = relation_oid(name)
            {
                *expr = lookup;
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// The name cast to `regclass` by `expr`, when it is computed text. (A literal is the
/// compatibility parser's; a column is taken for an oid, which `regclass` prints as a
/// name, as psql's `c.oid::pg_catalog.regclass`.)
fn computed_regclass(expr: &Expr) -> Option<&Expr> {
    match expr {
        Expr::Cast {
            expr: name,
            data_type,
            ..
        } if is_regclass(data_type) && is_computed_text(name) => Some(name),
        _ => None,
    }
}

/// Functions that make text of their arguments.
const TEXT_FUNCTIONS: &[&str] = &[
    "format",
    "concat",
    "concat_ws",
    "quote_ident",
    "lower",
    "upper",
    "btrim",
    "trim",
    "replace",
];

/// Whether `expr` computes text: a concatenation, a text function, or a cast to text.
fn is_computed_text(expr: &Expr) -> bool {
    match expr {
        Expr::Nested(inner) => is_computed_text(inner),
        Expr::BinaryOp {
            op: BinaryOperator::StringConcat,
            ..
        } => true,
        Expr::Function(function) => {
            called_name(function).is_some_and(|name| TEXT_FUNCTIONS.contains(&name.as_str()))
        }
        Expr::Cast { data_type, .. } => matches!(
            data_type,
            DataType::Text | DataType::Varchar(_) | DataType::CharacterVarying(_)
        ),
        _ => false,
    }
}

/// The lookup a call of a catalog function stands for.
fn function_lookup(expr: &Expr) -> Option<Expr> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    let args: Vec<&Expr> = list
        .args
        .iter()
        .filter_map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) => Some(arg),
            _ => None,
        })
        .collect();
    let itself = Expr::value(Value::Number("0".to_owned(), false));
    match (called_name(function)?.as_str(), args.as_slice()) {
        ("col_description", [object, column]) => description(object, column),
        ("obj_description", [object] | [object, _]) => description(object, &itself),
        ("to_regtype", [type_name]) => type_oid(type_name),
        ("to_regclass", [name]) => relation_oid(name),
        _ => None,
    }
}

/// The computed name of a relation whose oid `object` is (`CAST(CAST(name AS REGCLASS) AS
/// OID)`, `name::regclass`).
fn regclass_name(object: &Expr) -> Option<&Expr> {
    match object {
        Expr::Nested(inner) => regclass_name(inner),
        Expr::Cast { expr, .. } => computed_regclass(object).or_else(|| regclass_name(expr)),
        _ => None,
    }
}

/// Whether `data_type` is `regclass`.
fn is_regclass(data_type: &DataType) -> bool {
    match data_type {
        DataType::Regclass => true,
        DataType::Custom(name, _) => name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .is_some_and(|ident| ident.value.eq_ignore_ascii_case("regclass")),
        _ => false,
    }
}

/// `name` qualified with the current schema when it has no schema: the text a relation's
/// `<quoted schema>.<quoted name>` is compared with.
const QUALIFIED_NAME: &str = "CASE WHEN strpos(relation_name, '.') > 0 THEN relation_name \
     ELSE quote_ident(current_schema()) || '.' || relation_name END";

/// The scalar subquery reading the oid of the relation named `name` (qualified, or in the
/// current schema). The engine decorrelates a comparison of a column only, hence the
/// derived table naming each relation.
fn relation_oid(name: &Expr) -> Option<Expr> {
    let template = format!(
        "(SELECT min(found.oid) FROM (SELECT found_class.oid, \
         quote_ident(found_schema.nspname) || '.' || quote_ident(found_class.relname) \
         AS qualified_name \
         FROM pg_catalog.pg_class AS found_class JOIN pg_catalog.pg_namespace AS found_schema \
         ON found_class.relnamespace = found_schema.oid) AS found \
         WHERE found.qualified_name = {QUALIFIED_NAME})"
    );
    filled(&template, &[("relation_name", name)])
}

/// The scalar subquery reading the description of the relation named `name`'s `column`.
fn relation_description(name: &Expr, column: &Expr) -> Option<Expr> {
    let template = format!(
        "(SELECT min(found.description) FROM (SELECT described.description, \
         described.objsubid, \
         quote_ident(found_schema.nspname) || '.' || quote_ident(found_class.relname) \
         AS qualified_name \
         FROM pg_catalog.pg_description AS described \
         JOIN pg_catalog.pg_class AS found_class ON described.objoid = found_class.oid \
         JOIN pg_catalog.pg_namespace AS found_schema \
         ON found_class.relnamespace = found_schema.oid) AS found \
         WHERE found.objsubid = described_column AND found.qualified_name = {QUALIFIED_NAME})"
    );
    filled(
        &template,
        &[("relation_name", name), ("described_column", column)],
    )
}

/// The scalar subquery reading the oid of the type named `type_name`.
fn type_oid(type_name: &Expr) -> Option<Expr> {
    filled(
        "(SELECT min(found_type.oid) FROM pg_catalog.pg_type AS found_type \
         WHERE found_type.typname = type_name)",
        &[("type_name", type_name)],
    )
}

/// The scalar subquery reading the description of `object`'s `column` (0: itself).
fn description(object: &Expr, column: &Expr) -> Option<Expr> {
    if let Some(name) = regclass_name(object) {
        return relation_description(name, column);
    }
    filled(
        "(SELECT min(described.description) FROM pg_catalog.pg_description AS described \
         WHERE described.objoid = described_object AND described.objsubid = described_column)",
        &[("described_object", object), ("described_column", column)],
    )
}

/// `template` as an expression, each identifier named in `bindings` replaced by its
/// expression, parenthesized.
fn filled(template: &str, bindings: &[(&str, &Expr)]) -> Option<Expr> {
    let mut expr = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(template)
        .ok()?
        .parse_expr()
        .ok()?;
    let _ = visit_expressions_mut(&mut expr, |node| {
        if let Expr::Identifier(ident) = node
            && let Some((_, value)) = bindings.iter().find(|(name, _)| ident.value == *name)
        {
            *node = Expr::Nested(Box::new((*value).clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    Some(expr)
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
            "SELECT typname FROM pg_type t WHERE t.oid = (SELECT min(found_type.oid) FROM pg_catalog.pg_type AS found_type WHERE found_type.typname = ($1))"
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

    #[test]
    fn computed_relation_names_become_lookups() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT CAST(CAST(format('%I.%I', c.s, c.t) AS REGCLASS) AS OID), 'x'::regclass, \
             c.oid::regclass FROM c",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            CatalogLookups.rewrite(statement).to_string(),
            "SELECT CAST((SELECT min(found.oid) FROM (SELECT found_class.oid, \
             quote_ident(found_schema.nspname) || '.' || quote_ident(found_class.relname) AS qualified_name \
             FROM pg_catalog.pg_class AS found_class JOIN pg_catalog.pg_namespace AS found_schema \
             ON found_class.relnamespace = found_schema.oid) AS found \
             WHERE found.qualified_name = CASE WHEN strpos((format('%I.%I', c.s, c.t)), '.') > 0 \
             THEN (format('%I.%I', c.s, c.t)) \
             ELSE quote_ident(current_schema()) || '.' || (format('%I.%I', c.s, c.t)) END) AS OID), \
             'x'::REGCLASS, c.oid::REGCLASS FROM c"
        );
    }
}
