//! Catalog columns used as PostgreSQL types them, in catalog statements:
//!
//! * boolean columns compared with the text `'t'` / `'f'` (psqlODBC's
//!   `i.indisprimary = 't'`): the text becomes the boolean;
//! * `int2vector` / `oidvector` columns (`pg_index.indkey`, …) subscripted from 0
//!   (psqlODBC's `i.indkey[ia.attnum - 1]`): they are lists here, subscripted from 1, so
//!   the subscript is shifted;
//! * casts to `name`, the type of catalog identifiers (psqlODBC's `'tollgate'::name`),
//!   which are text here.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, DataType, Expr, Statement, Subscript, Value, visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::rewrite::sql_calls::column_in;

/// Boolean columns of `pg_catalog` that drivers compare with `'t'`.
const BOOLEAN_COLUMNS: &[&str] = &[
    "indisprimary",
    "indisunique",
    "indisclustered",
    "indisvalid",
    "indimmediate",
    "attisdropped",
    "attnotnull",
    "atthasdef",
    "attislocal",
    "relhasindex",
    "relisshared",
    "relhasrules",
    "relhastriggers",
    "relhassubclass",
    "relispartition",
    "condeferrable",
    "condeferred",
    "convalidated",
    "typisdefined",
    "typnotnull",
    "typbyval",
    "proretset",
    "proisstrict",
    "datallowconn",
    "datistemplate",
    "rolsuper",
    "rolcanlogin",
];

/// The `int2vector` / `oidvector` columns, 0-based in PostgreSQL.
const ZERO_BASED_VECTORS: &[&str] = &["indkey", "indclass", "indcollation", "indoption"];

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct CatalogColumnTypes;

impl SqlStatementRewriteRule for CatalogColumnTypes {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            match expr {
                Expr::BinaryOp {
                    left,
                    op: BinaryOperator::Eq | BinaryOperator::NotEq,
                    right,
                } => {
                    if column_in(left, BOOLEAN_COLUMNS)
                        && let Some(flag) = boolean_text(right)
                    {
                        **right = Expr::value(Value::Boolean(flag));
                    } else if column_in(right, BOOLEAN_COLUMNS)
                        && let Some(flag) = boolean_text(left)
                    {
                        **left = Expr::value(Value::Boolean(flag));
                    }
                }
                Expr::CompoundFieldAccess { root, access_chain } => {
                    // `indkey[i]`, `t.indkey[i]` (the column in the root) or `t` `.indkey`
                    // `[i]` (the column as the chain's first step).
                    let subscript = if column_in(root, ZERO_BASED_VECTORS) {
                        access_chain.first_mut()
                    } else if matches!(access_chain.first(), Some(AccessExpr::Dot(step)) if column_in(step, ZERO_BASED_VECTORS))
                    {
                        access_chain.get_mut(1)
                    } else {
                        None
                    };
                    if let Some(AccessExpr::Subscript(Subscript::Index { index })) = subscript {
                        *index = Expr::BinaryOp {
                            left: Box::new(Expr::Nested(Box::new(index.clone()))),
                            op: BinaryOperator::Plus,
                            right: Box::new(Expr::value(Value::Number("1".to_owned(), false))),
                        };
                    }
                }
                Expr::Cast { data_type, .. } if is_name_type(data_type) => {
                    *data_type = DataType::Text;
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// Whether `data_type` is PostgreSQL's `name` (`name`, `pg_catalog.name`).
fn is_name_type(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Custom(name, modifiers)
        if modifiers.is_empty()
            && name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .is_some_and(|ident| ident.value.eq_ignore_ascii_case("name")))
}

/// The boolean a text literal spells as PostgreSQL reads it (`'t'`, `'false'`, …).
fn boolean_text(expr: &Expr) -> Option<bool> {
    let Expr::Value(value) = expr else {
        return None;
    };
    let Value::SingleQuotedString(text) = &value.value else {
        return None;
    };
    match text.to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn boolean_text_and_zero_based_vectors() {
        let statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT 1 FROM pg_index i, pg_attribute ta, pg_class c \
             WHERE i.indisprimary = 't' AND ta.attnum = i.indkey[ta.attnum - 1] AND c.relkind = 't' \
             AND c.relname = 'x'::name",
        )
        .expect("parses")
        .remove(0);
        assert_eq!(
            CatalogColumnTypes.rewrite(statement).to_string(),
            "SELECT 1 FROM pg_index i, pg_attribute ta, pg_class c \
             WHERE i.indisprimary = true AND ta.attnum = i.indkey[(ta.attnum - 1) + 1] AND c.relkind = 't' \
             AND c.relname = 'x'::TEXT"
        );
    }
}
