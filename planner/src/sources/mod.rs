//! Where datasets' rows come from.
//!
//! Object stores and their listings (`stores`, `listing_cache`), the datasets' tables in a
//! private session (`tables`), their size and freshness (`dataset_stats`), their declared
//! keys against their files (`key_columns`), and the clients of their sources
//! (`source_clients`), remote SQL sources — PostgreSQL replicas (`replicas`,
//! `postgres_table`, the keys their own catalogs declare in `replica_keys`) and Athena
//! (`athena`) — with what may be pushed into them (`pushdown`, `leakproof`,
//! `sql_endpoint`), their scans (`remote_scan`, `source_scan`) and their failures
//! reported by dataset (`source_error`); slices of a dataset's rows (`source_slice`) read once
//! for several queries (`shared_rows`).

pub(crate) mod athena;
pub mod dataset_stats;
pub(crate) mod key_columns;
pub(crate) mod leakproof;
pub(crate) mod listing_cache;
pub(crate) mod postgres_table;
pub(crate) mod pushdown;
pub(crate) mod remote_scan;
pub(crate) mod replica_keys;
pub(crate) mod replicas;
pub mod shared_rows;
pub(crate) mod source_clients;
pub mod source_error;
pub(crate) mod source_scan;
pub mod source_slice;
pub(crate) mod sql_endpoint;
pub(crate) mod stores;
pub(crate) mod tables;
pub(crate) mod watermark;
