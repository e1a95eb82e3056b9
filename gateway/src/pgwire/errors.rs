//! The SQLSTATE mapping table: every planner error kind to its PostgreSQL code.

use pgwire::error::{ErrorInfo, PgWireError};
use tollgate_planner::{ErrorKind, PlannerError};

/// An `ERROR` response with `code` and `message`.
pub fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// A `FATAL` response: the connection ends after it.
pub fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// The wire error for a planner error; internal details go to the log only.
pub fn planner_error(error: &PlannerError) -> PgWireError {
    let kind = error.kind();
    if kind == ErrorKind::Internal {
        tracing::error!(error = %error, "query failed");
    }
    user_error(kind.sqlstate(), error.client_message())
}
