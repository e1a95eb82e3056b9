//! A tenant's session: its scoped catalog and what it may run there.
//!
//! `tenant` builds the tenant's DataFusion session (only its grants, scoped `pg_catalog` and
//! `information_schema`), `policy` parses and admits statements, `system` and `usage` are the
//! tenant's own `tollgate` schema, `roles` and `session_parameters` the session's user and
//! settings as SQL functions read them, `search_path` the schema unqualified names resolve in.

pub mod policy;
pub(crate) mod roles;
pub(crate) mod search_path;
pub mod session_parameters;
pub(crate) mod system;
pub mod tenant;
pub(crate) mod usage;
