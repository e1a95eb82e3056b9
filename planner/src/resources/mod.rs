//! What a tenant's queries may hold and do, and how they stop.
//!
//! `pool` (slots, queue, rate, connections, the query list) and `executor` (the tenant's
//! threads) share the machine; `complexity`, `work_limits` and `value_size` bound a statement
//! before and while it runs; `cooperative`, `stoppable` and `stop_at_leaves` make stopped
//! work end; `drain` refuses new statements and stops running ones at shutdown; `panics`
//! contains a statement's panic; `pass_through` and `only_child` serve the
//! plan and expression wrappers.

pub mod complexity;
pub(crate) mod cooperative;
pub(crate) mod drain;
pub(crate) mod executor;
pub(crate) mod only_child;
pub(crate) mod panics;
pub(crate) mod pass_through;
pub mod pool;
pub(crate) mod stop_at_leaves;
pub(crate) mod stoppable;
pub(crate) mod value_size;
pub(crate) mod work_limits;
