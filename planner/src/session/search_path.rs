//! The client's `search_path`, as PostgreSQL follows it: unqualified names resolve in its
//! first schema that exists in the tenant's catalog, and `current_schema()` /
//! `current_schemas(bool)` report it. `"$user"` stands for the schema named as the login.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The schema PostgreSQL searches before any in the path.
const SYSTEM_SCHEMA: &str = "pg_catalog";

/// Plans one query of `user` in `state` as `search_path` (the client's, if it set one)
/// says: its unqualified names resolve in the path's first schema, and `current_schema()`
/// and `current_schemas()` report the path.
///
/// # Errors
/// If the functions cannot be registered.
pub(crate) fn follow(
    state: &mut SessionState,
    search_path: Option<String>,
    user: &str,
) -> Result<()> {
    let Some(search_path) = search_path else {
        return Ok(());
    };
    let catalog = state
        .catalog_list()
        .catalog(&state.config().options().catalog.default_catalog);
    let found = schemas(&search_path, user, |name| {
        catalog
            .as_ref()
            .is_some_and(|catalog| catalog.schema(name).is_some())
    });
    if let Some(first) = first_schema(&found) {
        state.config_mut().options_mut().catalog.default_schema = first.to_owned();
    }
    state.register_udf(Arc::new(current_schema_udf(&found)))?;
    state.register_udf(Arc::new(current_schemas_udf(&found)))?;
    Ok(())
}

/// The schemas of `search_path` that `exists`, in order, with `"$user"` read as `user`.
/// Unquoted names are folded to lower case, as identifiers are; quoted ones are kept.
pub(crate) fn schemas(search_path: &str, user: &str, exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for item in search_path.split(',') {
        let item = item.trim();
        let name = match item
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
        {
            Some("$user") => user.to_owned(),
            Some(quoted) => quoted.replace("\"\"", "\""),
            None if item == "$user" => user.to_owned(),
            None => item.to_lowercase(),
        };
        if !name.is_empty() && exists(&name) && !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// The schema unqualified names resolve in: the first of `schemas` that is not
/// `pg_catalog` (whose relations resolve anyway).
pub(crate) fn first_schema(schemas: &[String]) -> Option<&str> {
    schemas
        .iter()
        .map(String::as_str)
        .find(|schema| *schema != SYSTEM_SCHEMA)
}

/// `current_schema()`: the first schema of the path that exists (NULL when none does).
pub(crate) fn current_schema_udf(schemas: &[String]) -> ScalarUDF {
    let first = schemas.first().cloned();
    create_udf(
        "current_schema",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(first.clone())))),
    )
}

/// `current_schemas(include_implicit)`: the schemas of the path that exist, after
/// `pg_catalog` when `include_implicit` is true.
pub(crate) fn current_schemas_udf(schemas: &[String]) -> ScalarUDF {
    let schemas = schemas.to_vec();
    create_udf(
        "current_schemas",
        vec![DataType::Boolean],
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let implicit = match args.first() {
                Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(implicit)))) => *implicit,
                _ => false,
            };
            let mut names: Vec<&str> = Vec::new();
            if implicit && !schemas.iter().any(|s| s == SYSTEM_SCHEMA) {
                names.push(SYSTEM_SCHEMA);
            }
            names.extend(schemas.iter().map(String::as_str));
            let values: ArrayRef = Arc::new(StringArray::from(names));
            let list = ListArray::try_new(
                Arc::new(Field::new("item", DataType::Utf8, true)),
                datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
                values,
                None,
            )?;
            Ok(ColumnarValue::Scalar(ScalarValue::List(Arc::new(list))))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_keeps_the_schemas_that_exist_in_order() {
        let exists = |name: &str| ["public", "tpch", "acme", "Mixed"].contains(&name);
        assert_eq!(
            schemas("\"$user\", public", "acme", exists),
            ["acme", "public"]
        );
        assert_eq!(
            schemas("TPCH, nosuch, public", "globex", exists),
            ["tpch", "public"]
        );
        assert_eq!(schemas("\"Mixed\", mixed", "globex", exists), ["Mixed"]);
        assert!(schemas("nosuch", "globex", exists).is_empty());
        let path = schemas("pg_catalog, tpch", "globex", |_| true);
        assert_eq!(first_schema(&path), Some("tpch"));
    }
}
