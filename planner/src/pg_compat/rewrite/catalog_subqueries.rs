//! Scalar subqueries of catalog queries made aggregates, which DataFusion can decorrelate.
//!
//! Clients' introspection queries look values up with correlated scalar subqueries:
//! SQLAlchemy's column reflection has `(SELECT json_build_object(…) FROM pg_sequence WHERE
//! seqrelid = …)`. DataFusion plans a correlated scalar subquery only when it aggregates
//! ("must be aggregated to return at most one row"). For statements that read `pg_catalog`
//! or `information_schema`, a subquery selecting one plain value is rewritten to select
//! `min(value)`: the same answer for zero rows (NULL) and one row; where PostgreSQL would
//! fail on several rows, the smallest is taken. One that keeps the first row of an order
//! (`ORDER BY k LIMIT 1`) selects `first_value(value ORDER BY k)`. Conditions of the subquery on the outer
//! query's columns alone move out of it, into a `CASE WHEN` around it (the same answer).
//! A subquery over a table that is always empty in a tenant's `pg_catalog` (`pg_attrdef`,
//! `pg_sequence`, … see [`ALWAYS_EMPTY`]) is NULL, the value it has; so is one holding a
//! recursive query, which the engine cannot run per row (asyncpg walks domains' base
//! types so, and a tenant's catalog has no domains). Data queries are never rewritten.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CaseWhen, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, GroupByExpr, JoinOperator, LimitClause, OrderBy, OrderByExpr, OrderByKind,
    Query, Select, SelectItem, SetExpr, Statement, TableFactor, Value, visit_expressions,
    visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::pg_catalog_overlay::{ALWAYS_EMPTY, PG_CLASS_NULLS};
use crate::pg_compat::rewrite::sql_calls::{called_name, column_in, function_call};

/// Aggregate functions: a subquery selecting one of them already returns one row.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "jsonb_agg",
];

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct AggregatedScalarSubqueries;

impl SqlStatementRewriteRule for AggregatedScalarSubqueries {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Some(aggregated) = array_of_subquery(expr) {
                *expr = aggregated;
            }
            let Expr::Subquery(query) = expr else {
                return ControlFlow::<()>::Continue(());
            };
            if query.with.as_ref().is_some_and(|with| with.recursive) {
                // The engine cannot run a recursive query per outer row. In a tenant's
                // catalog it would walk domains' base types (asyncpg), and there are none.
                *expr = Expr::value(Value::Null);
                return ControlFlow::Continue(());
            }
            let first_by = first_row_order(query);
            let SetExpr::Select(select) = query.body.as_mut() else {
                return ControlFlow::Continue(());
            };
            let ungrouped = select.having.is_none()
                && matches!(&select.group_by, GroupByExpr::Expressions(keys, _) if keys.is_empty());
            let from_empty_table = reads_an_empty_table(select);
            if let ([item], true) = (select.projection.as_mut_slice(), ungrouped) {
                let value = match item {
                    SelectItem::UnnamedExpr(value) => Some(value),
                    SelectItem::ExprWithAlias { expr, .. } => Some(expr),
                    _ => None,
                };
                if let Some(value) = value
                    && !has_aggregate(value)
                {
                    if from_empty_table {
                        // No row, so no value, whatever the correlation.
                        *expr = Expr::value(Value::Null);
                        return ControlFlow::Continue(());
                    }
                    *value = match first_by {
                        Some(order) => {
                            query.order_by = None;
                            query.limit_clause = None;
                            ordered_first_value(value.clone(), order)
                        }
                        None => function_call("min", vec![value.clone()]),
                    };
                }
            }
            if let Some(condition) = take_outer_conditions(select) {
                *expr = Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: None,
                    conditions: vec![CaseWhen {
                        condition,
                        result: expr.clone(),
                    }],
                    else_result: None,
                };
            }
            ControlFlow::Continue(())
        });
        statement
    }
}

/// `ARRAY(SELECT v FROM …)` as the scalar subquery `(SELECT array_agg(v) FROM …)`, or NULL
/// when it reads nothing (psql's `\d+` collects `unnest(tc.reloptions)`, always NULL for
/// a tenant's views). An empty result is NULL rather than an empty array.
fn array_of_subquery(expr: &Expr) -> Option<Expr> {
    let Expr::Function(function) = expr else {
        return None;
    };
    let FunctionArguments::Subquery(query) = &function.args else {
        return None;
    };
    if called_name(function).as_deref() != Some("array") {
        return None;
    }
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    if reads_an_empty_table(select) {
        return Some(Expr::value(Value::Null));
    }
    let [SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }] =
        select.projection.as_mut_slice()
    else {
        return None;
    };
    *value = function_call("array_agg", vec![value.clone()]);
    Some(Expr::Subquery(query))
}

/// The `ORDER BY` of a subquery that keeps its first row (`ORDER BY k LIMIT 1`): the value
/// of that row is `first_value(v ORDER BY k)` (asyncpg's type introspection finds a
/// domain's base type so).
fn first_row_order(query: &Query) -> Option<Vec<OrderByExpr>> {
    let Some(LimitClause::LimitOffset {
        limit: Some(limit),
        offset: None,
        limit_by,
    }) = &query.limit_clause
    else {
        return None;
    };
    let keeps_one =
        matches!(limit, Expr::Value(v) if v.value == Value::Number("1".to_owned(), false));
    if !keeps_one || !limit_by.is_empty() {
        return None;
    }
    let Some(OrderBy {
        kind: OrderByKind::Expressions(order),
        interpolate: None,
    }) = &query.order_by
    else {
        return None;
    };
    Some(order.clone())
}

/// `first_value(value ORDER BY order)`.
fn ordered_first_value(value: Expr, order: Vec<OrderByExpr>) -> Expr {
    let mut call = function_call("first_value", vec![value]);
    if let Expr::Function(Function {
        args: FunctionArguments::List(list),
        ..
    }) = &mut call
    {
        list.clauses.push(FunctionArgumentClause::OrderBy(order));
    }
    call
}

/// Removes from `select`'s WHERE the conditions that read only the outer query's columns,
/// and returns them: `(SELECT v FROM t WHERE outer AND inner)` is
/// `CASE WHEN outer THEN (SELECT v FROM t WHERE inner) END`, and DataFusion cannot
/// decorrelate a subquery holding such a condition. A condition counts as the outer
/// query's when each of its columns is qualified by a relation the subquery does not have.
fn take_outer_conditions(select: &mut Select) -> Option<Expr> {
    let relations = relation_names(select);
    let selection = select.selection.take()?;
    let (outer, inner): (Vec<Expr>, Vec<Expr>) = conjuncts(selection)
        .into_iter()
        .partition(|condition| reads_only_outer(condition, &relations));
    select.selection = and_all(inner);
    and_all(outer)
}

/// The names the subquery's FROM gives its relations (aliases, else table names).
fn relation_names(select: &Select) -> Vec<String> {
    let name_of = |factor: &TableFactor| match factor {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } => Some(alias.name.value.clone()),
        TableFactor::Table { name, .. } => name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.clone()),
        _ => None,
    };
    select
        .from
        .iter()
        .flat_map(|table| {
            std::iter::once(&table.relation).chain(table.joins.iter().map(|join| &join.relation))
        })
        .filter_map(name_of)
        .map(|name| name.to_ascii_lowercase())
        .collect()
}

/// Whether the subquery's rows all come through a table of `pg_catalog` that is always
/// empty (its FROM lists such a table, inner-joined or crossed with others: psql's trigger
/// listing reads `pg_trigger AS u, pg_partition_ancestors(…)`).
fn reads_an_empty_table(select: &Select) -> bool {
    let empty = |factor: &TableFactor| match factor {
        // `unnest` of a column that is NULL on every row of a tenant's `pg_class`.
        TableFactor::Table {
            name,
            args: Some(args),
            ..
        } => {
            name.0
                .last()
                .and_then(|part| part.as_ident())
                .is_some_and(|ident| ident.value.eq_ignore_ascii_case("unnest"))
                && matches!(args.args.as_slice(),
                    [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))]
                        if column_in(array, PG_CLASS_NULLS))
        }
        TableFactor::UNNEST { array_exprs, .. } => {
            matches!(array_exprs.as_slice(), [array] if column_in(array, PG_CLASS_NULLS))
        }
        TableFactor::Table { name, .. } => {
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(|part| part.as_ident())
                .map(|ident| ident.value.to_ascii_lowercase())
                .collect();
            match parts.as_slice() {
                [table] | [_, table] if parts.len() == 1 || parts[0] == "pg_catalog" => {
                    ALWAYS_EMPTY.contains(&table.as_str())
                }
                _ => false,
            }
        }
        _ => false,
    };
    let inner_joins = select
        .from
        .iter()
        .flat_map(|table| &table.joins)
        .all(|join| {
            matches!(
                join.join_operator,
                JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_)
            )
        });
    inner_joins
        && select.from.iter().any(|table| {
            empty(&table.relation) || table.joins.iter().any(|join| empty(&join.relation))
        })
}

/// Whether every column of `condition` is qualified by a relation not in `relations` (and
/// it has at least one, and no subquery).
fn reads_only_outer(condition: &Expr, relations: &[String]) -> bool {
    let mut columns = 0;
    let inner = visit_expressions(condition, |expr| match expr {
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            columns += 1;
            let qualifier = parts[parts.len() - 2].value.to_ascii_lowercase();
            if relations.contains(&qualifier) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        Expr::Identifier(_) | Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    });
    inner.is_continue() && columns > 0
}

fn conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(*left);
            all.extend(conjuncts(*right));
            all
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

fn and_all(conditions: Vec<Expr>) -> Option<Expr> {
    conditions.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
}

/// Whether `expr` calls an aggregate function anywhere.
fn has_aggregate(expr: &Expr) -> bool {
    visit_expressions(expr, |inner| {
        if let Expr::Function(function) = inner
            && let Some(name) = called_name(function)
            && AGGREGATES.contains(&name.as_str())
        {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })
    .is_break()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        crate::pg_compat::rewrite::sql_calls::rewritten_by(&AggregatedScalarSubqueries, sql)
    }

    #[test]
    fn plain_values_of_scalar_subqueries_are_aggregated() {
        assert_eq!(
            rewritten(
                "SELECT a.attname, (SELECT d.description FROM pg_description d WHERE d.objoid = a.attrelid) \
                 FROM pg_attribute a"
            ),
            "SELECT a.attname, (SELECT min(d.description) FROM pg_description d WHERE d.objoid = a.attrelid) \
             FROM pg_attribute a"
        );
    }

    #[test]
    fn recursive_subqueries_are_null() {
        assert_eq!(
            rewritten(
                "SELECT (CASE WHEN t.typtype = 'd' THEN (WITH RECURSIVE b(oid, depth) AS \
                 (SELECT t2.typbasetype, 0 FROM pg_type t2 WHERE t2.oid = t.oid) \
                 SELECT oid FROM b ORDER BY depth DESC LIMIT 1) ELSE NULL END) FROM pg_type t"
            ),
            "SELECT (CASE WHEN t.typtype = 'd' THEN NULL ELSE NULL END) FROM pg_type t"
        );
    }

    #[test]
    fn arrays_of_subqueries_are_aggregates() {
        assert_eq!(
            rewritten(
                "SELECT array(SELECT 'toast.' || x FROM pg_catalog.unnest(tc.reloptions) x) FROM pg_class tc"
            ),
            "SELECT NULL FROM pg_class tc"
        );
        assert_eq!(
            rewritten("SELECT array(SELECT n.nspname FROM pg_namespace n) FROM pg_class c"),
            "SELECT (SELECT array_agg(n.nspname) FROM pg_namespace n) FROM pg_class c"
        );
    }

    #[test]
    fn the_first_row_of_an_order_is_its_first_value() {
        assert_eq!(
            rewritten(
                "SELECT (SELECT oid FROM typebases ORDER BY depth DESC LIMIT 1) FROM pg_type"
            ),
            "SELECT (SELECT first_value(oid ORDER BY depth DESC) FROM typebases) FROM pg_type"
        );
    }

    #[test]
    fn conditions_on_outer_columns_alone_move_out() {
        assert_eq!(
            rewritten(
                "SELECT (SELECT d.description FROM pg_catalog.pg_description d \
                 WHERE a.atthasdef AND d.objoid = a.attrelid) FROM pg_catalog.pg_attribute a"
            ),
            "SELECT CASE WHEN a.atthasdef THEN (SELECT min(d.description) FROM pg_catalog.pg_description d \
             WHERE d.objoid = a.attrelid) END FROM pg_catalog.pg_attribute a"
        );
    }

    #[test]
    fn plain_values_from_always_empty_tables_are_null() {
        assert_eq!(
            rewritten(
                "SELECT (SELECT json_build_object('start', s.seqstart) FROM pg_catalog.pg_sequence s \
                 WHERE s.seqrelid = CAST(a.attrelid AS REGCLASS)) FROM pg_catalog.pg_attribute a"
            ),
            "SELECT NULL FROM pg_catalog.pg_attribute a"
        );
        let counted = "SELECT (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid) FROM pg_class c";
        assert_eq!(rewritten(counted), counted);
    }

    #[test]
    fn aggregates_groups_and_other_subqueries_are_kept() {
        for sql in [
            "SELECT (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid) FROM pg_namespace n",
            "SELECT (SELECT x FROM t GROUP BY x) FROM u",
            "SELECT 1 FROM u WHERE EXISTS (SELECT x FROM t)",
            "SELECT 1 FROM u WHERE u.a IN (SELECT x FROM t)",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}
