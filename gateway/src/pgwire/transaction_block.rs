//! A transaction block that failed, as PostgreSQL has it: after an error between `BEGIN`
//! and its end, every statement is refused with 25P02 until `ROLLBACK` (or `COMMIT`, which
//! then rolls back and says so) ends the block, or `ROLLBACK TO SAVEPOINT` returns it to
//! before the failure. psycopg and SQLAlchemy rely on it.
//!
//! pgwire keeps the block's state (`I`, `T`, `E` in ReadyForQuery) and moves it to `E` on
//! an error inside a block; it has no way back from `E` but the block's end. A
//! `ROLLBACK TO SAVEPOINT` of a failed block is therefore noted on the connection, and the
//! message loop sets the state back to `T` before the next message.

use std::sync::atomic::{AtomicBool, Ordering};

use pgwire::error::PgWireError;
use tollgate_planner::datafusion::sql::sqlparser::ast::Statement;

use super::errors::user_error;

/// The refusal of a statement in a block that `failed`: anything but a session statement
/// (`None`: a query, a copy, a cursor) that ends the failure.
pub(super) fn refusal(failed: bool, statement: Option<&Statement>) -> Option<PgWireError> {
    let ends_failure = statement
        .is_some_and(|s| matches!(s, Statement::Rollback { .. } | Statement::Commit { .. }));
    (failed && !ends_failure).then(|| {
        user_error(
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block",
        )
    })
}

/// A failed block returned to a savepoint, until the message loop has told pgwire.
#[derive(Debug, Default)]
pub struct Recovery(AtomicBool);

impl Recovery {
    /// Notes that the failed block goes on.
    pub(super) fn recovered(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the block went on since the last call; the state to set is `T`.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}
