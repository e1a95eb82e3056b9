//! PostgreSQL functions drivers call that the engine lacks (`pg_functions`), `format()`
//! (`format_function`), `to_char()` with PostgreSQL's template patterns (`to_char`),
//! `age()` as a symbolic interval (`age`), and the definitions of a session's keys
//! (`key_definitions`).

pub(crate) mod age;
pub(crate) mod format_function;
pub(crate) mod key_definitions;
pub mod pg_functions;
pub(crate) mod to_char;
