//! Grants as views: what a tenant's names resolve to.
//!
//! `granted_view` turns a grant into a table with a security barrier (`GrantedScanExec`);
//! `file_subset` reads a grant from some of its dataset's files (a push channel's new ones);
//! `sql_pushdown` runs joins and aggregates over datasets of one SQL endpoint there, grants'
//! filters included.

pub mod file_subset;
pub mod granted_view;
pub(crate) mod sql_pushdown;
