//! Which tenant predicates may run inside a grant's barrier: the leakproof ones.
//!
//! As PostgreSQL does for `security_barrier` views, a predicate that can neither fail nor
//! have a side effect may be evaluated on rows the grant hides, since it cannot reveal
//! them. Pushing such predicates into the grant lets the source prune with them (Parquet
//! row groups and pages, partitions, a replica's index), and pruning is what the tenant is
//! billed for.
//!
//! Leakproof here means: comparisons (`=`, `<>`, `<`, `<=`, `>`, `>=`, `IS [NOT] DISTINCT
//! FROM`), `AND`, `OR`, `NOT`, `IS [NOT] NULL`, `BETWEEN` and `IN (…)`, over literals and
//! columns the grant passes through unchanged. No casts (a cast can fail), no functions, no
//! arithmetic, and no computed grant columns (their expression could fail on a hidden row).

use std::collections::HashSet;

use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};

/// The output columns of a grant's plan that are source columns passed through unchanged.
pub(crate) fn passthrough_columns(plan: &LogicalPlan) -> HashSet<String> {
    match plan {
        LogicalPlan::Projection(projection) => projection
            .expr
            .iter()
            .filter_map(|expr| match expr {
                Expr::Column(column) => Some(column.name.clone()),
                Expr::Alias(alias) if matches!(alias.expr.as_ref(), Expr::Column(_)) => {
                    Some(alias.name.clone())
                }
                _ => None,
            })
            .collect(),
        LogicalPlan::Filter(_) | LogicalPlan::TableScan(_) | LogicalPlan::SubqueryAlias(_) => plan
            .schema()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect(),
        _ => HashSet::new(),
    }
}

/// Whether `expr` is leakproof over the `passthrough` columns.
pub(crate) fn is_leakproof(expr: &Expr, passthrough: &HashSet<String>) -> bool {
    match expr {
        Expr::Column(column) => passthrough.contains(&column.name),
        Expr::Literal(..) => true,
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            leakproof_operator(*op)
                && is_leakproof(left, passthrough)
                && is_leakproof(right, passthrough)
        }
        Expr::Not(inner) | Expr::IsNull(inner) | Expr::IsNotNull(inner) => {
            is_leakproof(inner, passthrough)
        }
        Expr::Between(between) => {
            is_leakproof(&between.expr, passthrough)
                && is_leakproof(&between.low, passthrough)
                && is_leakproof(&between.high, passthrough)
        }
        Expr::InList(in_list) => {
            is_leakproof(&in_list.expr, passthrough)
                && in_list
                    .list
                    .iter()
                    .all(|item| matches!(item, Expr::Literal(..)))
        }
        _ => false,
    }
}

/// `expr` with its columns named as the grant's plan names them (without the tenant's
/// table qualifier).
pub(crate) fn unqualified(expr: Expr) -> Result<Expr> {
    expr.transform(|expr| {
        Ok(match expr {
            Expr::Column(column) => {
                Transformed::yes(Expr::Column(Column::new_unqualified(column.name)))
            }
            other => Transformed::no(other),
        })
    })
    .map(|transformed| transformed.data)
}

fn leakproof_operator(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::And
            | Operator::Or
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{cast, col, lit};

    use super::*;

    fn columns() -> HashSet<String> {
        HashSet::from(["a".to_owned(), "b".to_owned()])
    }

    #[test]
    fn comparisons_of_passed_through_columns_are_leakproof() {
        let expr = col("a")
            .lt(lit(5))
            .and(col("b").in_list(vec![lit("x"), lit("y")], false));
        assert!(is_leakproof(&expr, &columns()));
        assert!(is_leakproof(&col("a").between(lit(1), lit(2)), &columns()));
    }

    #[test]
    fn arithmetic_casts_functions_and_computed_columns_are_not() {
        let division = (lit(1) / col("a")).eq(lit(1));
        assert!(!is_leakproof(&division, &columns()));
        let casted = cast(col("b"), DataType::Int64).gt(lit(3));
        assert!(!is_leakproof(&casted, &columns()));
        assert!(!is_leakproof(&col("computed").eq(lit(1)), &columns()));
    }
}
