//! PostgreSQL functions drivers call that the engine lacks (`pg_functions`), `format()`
//! (`format_function`), and `to_char()` with PostgreSQL's template patterns (`to_char`).

pub(crate) mod format_function;
pub mod pg_functions;
pub(crate) mod to_char;
