//! A granted column as the configuration and the API write it: a name, or an expression
//! with an output name.

use serde::{Deserialize, Serialize};

/// A granted column: a plain column name, or an expression with an output name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum GrantColumnOptions {
    /// A column of the dataset, shown under its own name.
    Name(String),
    /// A SQL expression over the dataset's columns, shown as `name`.
    Expr {
        /// The output column name.
        name: String,
        /// The SQL expression.
        expr: String,
    },
}
