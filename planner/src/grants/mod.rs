//! Grants as views: what a tenant's names resolve to.
//!
//! `granted_view` turns a grant into a table with a security barrier (`GrantedScanExec`);
//! `provided_rows` reads a grant from rows it is given (a push channel's new ones, read once);
//! `sql_pushdown` runs joins and aggregates over datasets of one SQL endpoint there, grants'
//! filters included.

pub mod granted_view;
pub mod provided_rows;
pub(crate) mod sql_pushdown;
