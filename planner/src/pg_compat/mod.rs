//! PostgreSQL's dialect and catalogs, for the clients that expect them.
//!
//! `rewrite` holds the compatibility rules applied to statements (one rule a file), `functions`
//! the PostgreSQL functions the engine lacks, `pg_catalog_overlay` the `pg_catalog` tables
//! drivers read, and `information_schema` the scoped `information_schema`; `dataset_keys`
//! finds the keys a tenant sees, which `pg_catalog_keys` and `information_schema_keys` list. It is the bottom of
//! the crate: it uses no other folder.

pub mod dataset_keys;
pub mod functions;
pub mod information_schema;
pub(crate) mod information_schema_keys;
pub(crate) mod pg_catalog_keys;
pub(crate) mod pg_catalog_overlay;
pub(crate) mod pg_settings;
pub(crate) mod rewrite;
