//! Compatibility rewrites of statements: one rule a file, each a
//! `SqlStatementRewriteRule` over the parsed statement, and `sql_calls` to build and recognize
//! the calls and columns they rewrite.

pub(crate) mod array_parameters;
pub(crate) mod catalog_lookups;
pub(crate) mod catalog_operators;
pub(crate) mod catalog_subqueries;
pub(crate) mod catalog_types;
pub(crate) mod expand_array;
pub(crate) mod generate_subscripts;
pub(crate) mod like_escape;
pub(crate) mod output_names;
pub(crate) mod regclass_names;
pub(crate) mod regproc;
pub(crate) mod sql_calls;
pub(crate) mod unnest_from;
