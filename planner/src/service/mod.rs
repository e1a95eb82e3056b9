//! The engine API: the one protocol-neutral service every front end calls.
//!
//! `engine` holds `QueryService` (parse, plan, execute, parts of a result), `context` the
//! per-query `QueryContext` and the `PlannedQuery`, `parameters` types `$1 … $n`,
//! `datasets` answers what the control plane asks of datasets (columns
//! before serving, size and freshness), `live` keeps the sessions of the catalog now served (swapped when it changes),
//! `drain` refuses new statements and stops running ones when the gateway shuts down,
//! `partitions` finds results that split into independent parts, `slice_read` reads a slice
//! of a dataset for push channels, and `stream` is the
//! `QueryStream` front ends read. It sits on top: it uses every folder below it and nothing
//! uses it but the front ends.

mod context;
mod datasets;
mod drain;
mod engine;
mod live;
pub(crate) mod parameters;
pub(crate) mod partitions;
mod slice_read;
pub(crate) mod stream;

pub use context::{PlannedQuery, QueryContext, ResultPart};
pub use engine::QueryService;
