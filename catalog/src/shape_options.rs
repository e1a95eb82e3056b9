//! What a provider declares about a dataset's shape beside its columns: whether tenants see
//! it as a table or a view, its primary key, and its foreign keys to other datasets. Drivers
//! and BI tools read these from the catalog to build relationships and join paths.

use serde::{Deserialize, Serialize};

/// What a dataset is in the tenants' catalogs (`pg_class.relkind`, `TABLE_TYPE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// A table (`r`): the default.
    #[default]
    Table,
    /// A view (`v`), for a dataset the provider derives from others.
    View,
}

impl DatasetKind {
    /// Whether this is the default kind (a table), which configurations leave out.
    #[must_use]
    pub fn is_table(&self) -> bool {
        *self == Self::Table
    }
}

/// A foreign key: columns of the dataset whose values are the primary key of another.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignKeyOptions {
    /// The dataset's columns, in key order.
    pub columns: Vec<String>,
    /// The referenced dataset's id, `domain.name`.
    pub references: String,
    /// The referenced columns, in the order of `columns`; absent means the referenced
    /// dataset's primary key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referenced_columns: Vec<String>,
}
