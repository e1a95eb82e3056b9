//! PostgreSQL functions drivers call that the engine lacks (`pg_functions`), and `format()`
//! (`format_function`).

pub(crate) mod format_function;
pub mod pg_functions;
