//! The one child of a node that wraps exactly one: the plan and expression wrappers of this
//! crate (`PassThroughExec`, the join filters' `StopCheck`) rebuild themselves from it.

use datafusion::error::{DataFusionError, Result};

/// The only element of `children`, as `node`'s `with_new_children` receives them.
///
/// # Errors
/// An internal error naming `node` when there is not exactly one.
pub(crate) fn only_child<T>(mut children: Vec<T>, node: &str) -> Result<T> {
    match (children.pop(), children.is_empty()) {
        (Some(child), true) => Ok(child),
        _ => Err(DataFusionError::Internal(format!(
            "{node} takes exactly one child"
        ))),
    }
}
