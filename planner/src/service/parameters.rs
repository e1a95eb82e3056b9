//! The types of a statement's positional parameters (`$1 … $n`), as a Parse reports them to
//! the client: what the engine inferred from their use (`col = $1`), else the type a
//! parameter is cast to (`$1::bigint`, which asyncpg and pgJDBC send), else unknown.

use std::collections::HashMap;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::expr::{Cast, Placeholder, TryCast};
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::error::PlannerError;

/// The type of each parameter `$1..$n` of `plan` (analyzed, so coercions are in it).
///
/// # Errors
/// [`PlannerError::Parameters`] for a parameter that is not positional, or engine errors.
pub(crate) fn parameter_types(plan: &LogicalPlan) -> Result<Vec<Option<DataType>>, PlannerError> {
    let cast_to = cast_types(plan)?;
    let mut parameters: Vec<(usize, Option<DataType>)> = plan
        .get_parameter_types()?
        .into_iter()
        .map(|(id, inferred)| {
            let data_type = inferred.or_else(|| cast_to.get(&id).cloned());
            id.trim_start_matches('$')
                .parse::<usize>()
                .map(|position| (position, data_type))
                .map_err(|_| {
                    PlannerError::Parameters(format!(
                        "parameter `{id}` is not positional ($1, $2, …)"
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    parameters.sort_by_key(|(position, _)| *position);
    let count = parameters.last().map_or(0, |(position, _)| *position);
    let mut types = vec![None; count];
    for (position, data_type) in parameters {
        if let Some(slot) = position.checked_sub(1).and_then(|i| types.get_mut(i)) {
            *slot = data_type;
        }
    }
    Ok(types)
}

/// The type each parameter is cast to where it is cast directly (the first cast wins).
fn cast_types(plan: &LogicalPlan) -> Result<HashMap<String, DataType>, PlannerError> {
    let mut found = HashMap::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|expr| {
                if let Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) =
                    expr
                    && let Expr::Placeholder(Placeholder { id, .. }) = expr.as_ref()
                {
                    found
                        .entry(id.clone())
                        .or_insert_with(|| field.data_type().clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    Ok(found)
}
