//! Output column names as PostgreSQL gives them.
//!
//! DataFusion names an unaliased column after its whole expression (`count(*)`,
//! `min(tpch.orders.o_orderdate)`); PostgreSQL names it after the function (`count`, `min`),
//! the column, the cast's (or typed literal's) target type, or `?column?`. Drivers and BI tools key results by
//! these names, so the outermost `SELECT` list gets PostgreSQL's names as aliases.

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast::{DataType, Expr, Ident, SelectItem, SetExpr, Statement};

/// Aliases the unnamed items of the outermost `SELECT` of a query with PostgreSQL's names.
/// A name already taken in the list is left to DataFusion, which needs unique names.
pub fn apply(statement: &mut Statement) {
    let Statement::Query(query) = statement else {
        return;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let mut taken: HashSet<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(ident.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(|p| p.value.clone())
            }
            _ => None,
        })
        .collect();
    for item in &mut select.projection {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            continue;
        }
        let name = postgres_name(expr);
        if taken.insert(name.clone()) {
            *item = SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: Ident::with_quote('"', name),
            };
        }
    }
}

/// The name PostgreSQL gives an output column computed by `expr`.
fn postgres_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) => ident.value.clone(),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .map_or_else(|| "?column?".to_owned(), |p| p.value.clone()),
        Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map_or_else(|| "?column?".to_owned(), |ident| ident.value.to_lowercase()),
        Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::Function(_)
            | Expr::Cast { .. }
            | Expr::Nested(_) => postgres_name(expr),
            _ => type_name(data_type),
        },
        Expr::Nested(inner) => postgres_name(inner),
        // `DATE '2024-01-01'`: the type's name, as for a cast.
        Expr::TypedString(typed) => type_name(&typed.data_type),
        Expr::Interval(_) => "interval".to_owned(),
        Expr::Case { .. } => "case".to_owned(),
        Expr::Exists { .. } => "exists".to_owned(),
        Expr::Array(_) => "array".to_owned(),
        Expr::Subquery(query) => match query.body.as_ref() {
            SetExpr::Select(select) => match select.projection.first() {
                Some(SelectItem::ExprWithAlias { alias, .. }) => alias.value.clone(),
                Some(SelectItem::UnnamedExpr(inner)) => postgres_name(inner),
                _ => "?column?".to_owned(),
            },
            _ => "?column?".to_owned(),
        },
        _ => "?column?".to_owned(),
    }
}

/// The internal name PostgreSQL gives a type (`bigint` is `int8`), which names a cast's
/// column; an array is named after its element type.
fn type_name(data_type: &DataType) -> String {
    let written = data_type.to_string().to_lowercase();
    let written = written.strip_prefix("pg_catalog.").unwrap_or(&written);
    let base = written.split(['(', '[']).next().unwrap_or_default().trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double" | "double precision" | "float" | "float8" => "float8",
        "boolean" | "bool" => "bool",
        "varchar" | "character varying" => "varchar",
        "char" | "character" | "bpchar" => "bpchar",
        "numeric" | "decimal" | "dec" => "numeric",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time" | "time without time zone" => "time",
        "timetz" | "time with time zone" => "timetz",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn names(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .expect("parses")
            .remove(0);
        apply(&mut statement);
        statement.to_string()
    }

    #[test]
    fn unnamed_expressions_get_postgres_names() {
        assert_eq!(
            names("SELECT count(*), min(t.a), 1 + 1, a::text, 1::int FROM t"),
            "SELECT count(*) AS \"count\", min(t.a) AS \"min\", 1 + 1 AS \"?column?\", a::TEXT AS \"a\", 1::INT AS \"int4\" FROM t"
        );
        assert_eq!(
            names(
                "SELECT 1::bigint, 2.5::double precision, CAST(3 AS smallint), \
                 '2024-01-01 00:00'::timestamp with time zone, 'x'::varchar(3), 4::numeric(10,2)"
            ),
            "SELECT 1::BIGINT AS \"int8\", 2.5::DOUBLE PRECISION AS \"float8\", \
             CAST(3 AS SMALLINT) AS \"int2\", \
             '2024-01-01 00:00'::TIMESTAMP WITH TIME ZONE AS \"timestamptz\", \
             'x'::VARCHAR(3) AS \"varchar\", 4::NUMERIC(10,2) AS \"numeric\""
        );
        assert_eq!(
            names("SELECT DATE '2024-01-01', TIMESTAMP '2024-01-01 10:30', INTERVAL '1 day'"),
            "SELECT DATE '2024-01-01' AS \"date\", TIMESTAMP '2024-01-01 10:30' AS \"timestamp\", \
             INTERVAL '1 day' AS \"interval\""
        );
        assert_eq!(
            names("SELECT count(*), count(a) FROM t"),
            "SELECT count(*) AS \"count\", count(a) FROM t"
        );
        assert_eq!(
            names("SELECT a, sum(b) AS total FROM t"),
            "SELECT a, sum(b) AS total FROM t"
        );
    }
}
