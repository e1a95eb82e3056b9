//! The client's `search_path`, as PostgreSQL follows it: unqualified names resolve in its
//! first schema that exists in the tenant's catalog, `current_schema()` /
//! `current_schemas(bool)` report it, and `pg_table_is_visible(oid)` is true for a relation
//! its unqualified name would find (`pg_catalog` first, then the path), as `regclassin(name)`
//! (`'name'::regclass`) finds it. `"$user"` stands for the schema named as the login.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListArray, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::Int32Type;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::expr_fn::SimpleScalarUDF;
use datafusion::logical_expr::{
    ColumnarValue, ScalarUDF, Signature, TypeSignature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;

use crate::pg_compat::functions::format_function::quote_identifier;

/// The schema PostgreSQL searches before any in the path.
const SYSTEM_SCHEMA: &str = "pg_catalog";
/// PostgreSQL's default path, for a front end that keeps no settings.
const DEFAULT_PATH: &str = "\"$user\", public";

/// The relations of a session's `pg_class`: schema and name by oid.
#[derive(Debug, Default)]
pub(crate) struct Relations(HashMap<i32, (String, String)>);

impl Relations {
    /// Reads `pg_class` and `pg_namespace` of `context` once: their oids are stable for the
    /// session.
    ///
    /// # Errors
    /// If the catalog cannot be read.
    pub(crate) async fn load(context: &SessionContext) -> Result<Self> {
        let batches = context
            .sql(
                "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid",
            )
            .await?
            .collect()
            .await?;
        let mut relations = HashMap::new();
        for batch in &batches {
            let oids = batch.column(0).as_primitive::<Int32Type>();
            let schemas = batch.column(1).as_string::<i32>();
            let names = batch.column(2).as_string::<i32>();
            for row in 0..batch.num_rows() {
                relations.insert(
                    oids.value(row),
                    (schemas.value(row).to_owned(), names.value(row).to_owned()),
                );
            }
        }
        Ok(Self(relations))
    }
}

/// Plans one query of `user` in `state` as `search_path` (the client's, PostgreSQL's default
/// for a front end without settings) says: its unqualified names resolve in the path's
/// first schema, `current_schema()` and `current_schemas()` report the path, and
/// `pg_table_is_visible()` follows it over `relations`.
///
/// # Errors
/// If the functions cannot be registered.
pub(crate) fn follow(
    state: &mut SessionState,
    search_path: Option<String>,
    user: &str,
    relations: &Arc<Relations>,
) -> Result<()> {
    let search_path = search_path.unwrap_or_else(|| DEFAULT_PATH.to_owned());
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
    state.register_udf(Arc::new(table_is_visible_udf(&found, relations)))?;
    state.register_udf(Arc::new(regclassin_udf(&found, relations)))?;
    state.register_udf(Arc::new(regclassout_udf(&found, relations)))?;
    Ok(())
}

/// The schemas an unqualified relation name is looked for in, in order: `pg_catalog`, then
/// `schemas`.
fn searched(schemas: &[String]) -> Vec<String> {
    let mut searched = vec![SYSTEM_SCHEMA.to_owned()];
    searched.extend(schemas.iter().filter(|s| *s != SYSTEM_SCHEMA).cloned());
    searched
}

/// `regclassin(name)`, what `'name'::regclass` reads: the oid of the relation `name` finds.
/// An unqualified name is looked for in `pg_catalog` and then `schemas`, a qualified one in
/// its schema; a name that finds none fails the statement with 42P01, as in PostgreSQL.
fn regclassin_udf(schemas: &[String], relations: &Arc<Relations>) -> ScalarUDF {
    let searched = searched(schemas);
    let relations = Arc::clone(relations);
    let find = move |name: &str| -> Result<i32> {
        let parts = identifier_parts(name)
            .ok_or_else(|| DataFusionError::Plan(format!("invalid name syntax: \"{name}\"")))?;
        let wanted: Vec<(&str, &str)> = match parts.as_slice() {
            [relation] => searched
                .iter()
                .map(|schema| (schema.as_str(), relation.as_str()))
                .collect(),
            [schema, relation] => vec![(schema.as_str(), relation.as_str())],
            _ => {
                return Err(DataFusionError::Plan(format!(
                    "improper relation name (too many dotted names): {name}"
                )));
            }
        };
        wanted
            .iter()
            .find_map(|(schema, relation)| {
                relations
                    .0
                    .iter()
                    .find(|(_, (s, r))| s == schema && r == relation)
                    .map(|(oid, _)| *oid)
            })
            // The engine's wording, which the front ends report as PostgreSQL does.
            .ok_or_else(|| DataFusionError::Plan(format!("table '{name}' not found")))
    };
    let answer = move |args: &[ColumnarValue]| {
        let names = ColumnarValue::values_to_arrays(args)?;
        let names = cast(&names[0], &DataType::Utf8)?;
        let oids = names
            .as_string::<i32>()
            .iter()
            .map(|name| name.map(&find).transpose())
            .collect::<Result<Int32Array>>()?;
        Ok(ColumnarValue::Array(Arc::new(oids) as ArrayRef))
    };
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "regclassin",
        Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        DataType::Int32,
        Arc::new(answer),
    ))
}

/// The parts of a dotted name, as `parse_ident` splits it: quoted parts kept as written
/// (`""` is a quote), unquoted ones trimmed and folded to lower case; `None` when it is not
/// a name.
fn identifier_parts(name: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = name.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' if chars.next_if_eq(&'"').is_some() => part.push('"'),
                    '"' => break,
                    c => part.push(c),
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
        } else {
            while let Some(c) = chars.next_if(|c| *c != '.') {
                part.push(c);
            }
            part = part.trim().to_lowercase();
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}

/// `pg_table_is_visible(oid)`: whether the relation is the one its unqualified name finds,
/// searching `pg_catalog` and then `schemas`; NULL for an oid of no relation.
fn table_is_visible_udf(schemas: &[String], relations: &Arc<Relations>) -> ScalarUDF {
    let visible = visible_oids(&searched(schemas), relations);
    let relations = Arc::clone(relations);
    let answer = move |args: &[ColumnarValue]| {
        let oids = ColumnarValue::values_to_arrays(args)?;
        let oids = cast(&oids[0], &DataType::Int32)?;
        let answers: BooleanArray = oids
            .as_primitive::<Int32Type>()
            .iter()
            .map(|oid| {
                let oid = oid?;
                relations
                    .0
                    .contains_key(&oid)
                    .then(|| visible.contains(&oid))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(answers) as ArrayRef))
    };
    // An oid, or an integer literal naming one.
    let signature = Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Int32]),
            TypeSignature::Exact(vec![DataType::Int64]),
        ],
        Volatility::Stable,
    );
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "pg_table_is_visible",
        signature,
        DataType::Boolean,
        Arc::new(answer),
    ))
}

/// The relations whose unqualified name finds them: the first of `searched` holding a
/// relation of that name is theirs.
fn visible_oids(searched: &[String], relations: &Relations) -> HashSet<i32> {
    let mut found_in: HashMap<&str, usize> = HashMap::new();
    for (schema, name) in relations.0.values() {
        if let Some(rank) = searched.iter().position(|s| s == schema) {
            found_in
                .entry(name.as_str())
                .and_modify(|best| *best = (*best).min(rank))
                .or_insert(rank);
        }
    }
    relations
        .0
        .iter()
        .filter(|(_, (schema, name))| {
            found_in
                .get(name.as_str())
                .is_some_and(|rank| searched[*rank] == *schema)
        })
        .map(|(oid, _)| *oid)
        .collect()
}

/// `regclassout(oid)`, what `oid::regclass` prints: the relation's name, qualified by its
/// schema when the search path would not find it unqualified; the number for an oid that
/// names no relation.
fn regclassout_udf(schemas: &[String], relations: &Arc<Relations>) -> ScalarUDF {
    let visible = visible_oids(&searched(schemas), relations);
    let relations = Arc::clone(relations);
    let answer = move |args: &[ColumnarValue]| {
        let oids = ColumnarValue::values_to_arrays(args)?;
        let oids = cast(&oids[0], &DataType::Int64)?;
        let names: StringArray = oids
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .iter()
            .map(|oid| {
                let oid = oid?;
                let known = i32::try_from(oid)
                    .ok()
                    .and_then(|oid| relations.0.get(&oid).map(|name| (oid, name)));
                Some(match known {
                    Some((oid, (_, name))) if visible.contains(&oid) => quote_identifier(name),
                    Some((_, (schema, name))) => {
                        format!("{}.{}", quote_identifier(schema), quote_identifier(name))
                    }
                    None => oid.to_string(),
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(names) as ArrayRef))
    };
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "regclassout",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Int32]),
                TypeSignature::Exact(vec![DataType::Int64]),
            ],
            Volatility::Stable,
        ),
        DataType::Utf8,
        Arc::new(answer),
    ))
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

    #[test]
    fn names_split_as_parse_ident_splits_them() {
        let parts = |name: &str| identifier_parts(name);
        assert_eq!(
            parts(" TPCH.Orders "),
            Some(vec!["tpch".into(), "orders".into()])
        );
        assert_eq!(
            parts(r#""Mixed"."It""s" "#),
            Some(vec!["Mixed".into(), r#"It"s"#.into()])
        );
        assert_eq!(parts("a.b.c").map(|p| p.len()), Some(3));
        for bad in ["", "a..b", "a.", r#""open"#, r#""a"b"#] {
            assert_eq!(parts(bad), None, "{bad}");
        }
    }

    #[test]
    fn regclassin_finds_pg_catalog_first_then_the_path() {
        let relations = Arc::new(Relations(HashMap::from([
            (1, ("pg_catalog".to_owned(), "pg_class".to_owned())),
            (2, ("tpch".to_owned(), "pg_class".to_owned())),
            (3, ("tpch".to_owned(), "orders".to_owned())),
            (4, ("public".to_owned(), "orders".to_owned())),
        ])));
        let udf = regclassin_udf(&["public".to_owned(), "tpch".to_owned()], &relations);
        let oid = |name: &str| {
            let field = Arc::new(Field::new("name", DataType::Utf8, true));
            let args = datafusion::logical_expr::ScalarFunctionArgs {
                args: vec![ColumnarValue::Scalar(ScalarValue::from(name))],
                arg_fields: vec![Arc::clone(&field)],
                number_rows: 1,
                return_field: Arc::new(Field::new("oid", DataType::Int32, true)),
                config_options: Arc::default(),
            };
            udf.invoke_with_args(args).map(|value| match value {
                ColumnarValue::Array(array) => array.as_primitive::<Int32Type>().value(0),
                ColumnarValue::Scalar(_) => unreachable!("an array"),
            })
        };
        assert_eq!(oid("pg_class").ok(), Some(1));
        assert_eq!(oid("tpch.pg_class").ok(), Some(2));
        assert_eq!(oid("orders").ok(), Some(4));
        assert_eq!(oid("TPCH.ORDERS").ok(), Some(3));
        let missing = oid("tpch.nosuch")
            .expect_err("no such relation")
            .to_string();
        assert!(
            missing.contains("table 'tpch.nosuch' not found"),
            "{missing}"
        );
        assert!(oid("a.b.c").is_err());
    }
}
