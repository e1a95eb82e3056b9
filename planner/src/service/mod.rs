//! The engine API: the one protocol-neutral service every front end calls.
//!
//! `engine` holds `QueryService` and the per-query `QueryContext` (parse, plan, execute,
//! parts of a result), `parameters` types `$1 … $n`, `partitions` finds results that split
//! into independent parts, and `stream` is the `QueryStream` front ends read. It sits on top:
//! it uses every folder below it and nothing uses it but the front ends.

pub(crate) mod engine;
pub(crate) mod parameters;
pub(crate) mod partitions;
pub(crate) mod stream;

pub use engine::{PlannedQuery, QueryContext, QueryService, ResultPart};
