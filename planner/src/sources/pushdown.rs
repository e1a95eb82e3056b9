//! Which filters a SQL source (a PostgreSQL replica, Athena) can run for the gateway, and
//! their SQL text in the source's dialect; a scan's query.

use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, Operator};
use datafusion::scalar::ScalarValue;
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::Dialect;

use crate::sources::leakproof;

/// `filter` as SQL of `dialect` if it is made only of what a SQL source evaluates exactly
/// as DataFusion would: columns, literals, comparisons, boolean logic, `+ - *`, `IN`,
/// `BETWEEN`, `LIKE` without `ESCAPE`, and null tests. Columns lose their qualifiers.
pub(crate) fn filter_sql(filter: &Expr, dialect: &dyn Dialect) -> Option<String> {
    if !pushable(filter) {
        return None;
    }
    let unqualified = leakproof::unqualified(filter.clone()).ok()?;
    Unparser::new(dialect)
        .expr_to_sql(&unqualified)
        .ok()
        .map(|sql| sql.to_string())
}

/// Whether `expr` is made only of what a SQL source evaluates exactly as DataFusion would.
pub(crate) fn pushable(expr: &Expr) -> bool {
    match expr {
        Expr::Column(_) => true,
        Expr::Literal(value, _) => matches!(
            value,
            ScalarValue::Boolean(Some(_))
                | ScalarValue::Int8(Some(_))
                | ScalarValue::Int16(Some(_))
                | ScalarValue::Int32(Some(_))
                | ScalarValue::Int64(Some(_))
                | ScalarValue::Float64(Some(_))
                | ScalarValue::Utf8(Some(_))
                | ScalarValue::Utf8View(Some(_))
                | ScalarValue::LargeUtf8(Some(_))
                | ScalarValue::Date32(Some(_))
                | ScalarValue::Decimal128(Some(_), _, _)
        ),
        Expr::BinaryExpr(binary) => {
            matches!(
                binary.op,
                Operator::Eq
                    | Operator::NotEq
                    | Operator::Lt
                    | Operator::LtEq
                    | Operator::Gt
                    | Operator::GtEq
                    | Operator::And
                    | Operator::Or
                    | Operator::Plus
                    | Operator::Minus
                    | Operator::Multiply
            ) && pushable(&binary.left)
                && pushable(&binary.right)
        }
        Expr::Not(inner) | Expr::IsNull(inner) | Expr::IsNotNull(inner) => pushable(inner),
        Expr::Between(between) => {
            pushable(&between.expr) && pushable(&between.low) && pushable(&between.high)
        }
        Expr::InList(list) => pushable(&list.expr) && list.list.iter().all(pushable),
        Expr::Like(like) => {
            !like.case_insensitive
                && like.escape_char.is_none()
                && pushable(&like.expr)
                && pushable(&like.pattern)
        }
        _ => false,
    }
}

/// `SELECT <select> FROM <relation> [WHERE <filters>] [LIMIT <limit>]` in `dialect`, for a
/// scan whose filters were all accepted by [`filter_sql`]; an empty `select` selects `1`
/// (the rows are only counted).
///
/// # Errors
/// If a filter cannot be pushed after all.
pub(crate) fn scan_sql(
    select: &[String],
    relation: &str,
    filters: &[Expr],
    limit: Option<usize>,
    dialect: &dyn Dialect,
) -> Result<String> {
    let select = if select.is_empty() {
        "1".to_owned()
    } else {
        select.join(", ")
    };
    let mut sql = format!("SELECT {select} FROM {relation}");
    let conditions = filters
        .iter()
        .map(|filter| {
            filter_sql(filter, dialect).ok_or_else(|| {
                DataFusionError::Internal(format!("filter `{filter}` cannot be pushed"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    Ok(sql)
}

/// Double-quotes an identifier, as both dialects of the SQL sources write them.
pub(crate) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}
