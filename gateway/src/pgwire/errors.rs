//! The SQLSTATE mapping table: every planner error kind to its PostgreSQL code.

use pgwire::error::{ErrorInfo, PgWireError};
use tollgate_planner::{ErrorKind, PlannerError};

/// The SQLSTATE sent for each kind of planner error.
pub fn sqlstate(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Syntax => "42601",
        ErrorKind::UndefinedTable => "42P01",
        ErrorKind::UndefinedColumn => "42703",
        ErrorKind::UndefinedFunction => "42883",
        ErrorKind::UndefinedObject => "42704",
        ErrorKind::Denied => "42501",
        ErrorKind::Unsupported => "0A000",
        ErrorKind::InvalidInput => "22023",
        ErrorKind::DivisionByZero => "22012",
        ErrorKind::TooComplex => "54001",
        ErrorKind::OutOfMemory => "53200",
        ErrorKind::Busy => "53300",
        ErrorKind::RateLimited => "53400",
        ErrorKind::ResultTooLarge => "54000",
        ErrorKind::Cancelled | ErrorKind::Timeout => "57014",
        ErrorKind::StaleResult => "55000",
        ErrorKind::Internal => "XX000",
    }
}

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
    user_error(sqlstate(kind), error.client_message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_valid_sqlstate_of_the_right_class() {
        for kind in ErrorKind::ALL {
            let code = sqlstate(kind);
            assert_eq!(code.len(), 5, "{kind:?}");
            let class = &code[..2];
            let expected_class = match kind {
                ErrorKind::Syntax
                | ErrorKind::UndefinedTable
                | ErrorKind::UndefinedColumn
                | ErrorKind::UndefinedFunction
                | ErrorKind::UndefinedObject
                | ErrorKind::Denied => "42",
                ErrorKind::Unsupported => "0A",
                ErrorKind::InvalidInput | ErrorKind::DivisionByZero => "22",
                ErrorKind::TooComplex | ErrorKind::ResultTooLarge => "54",
                ErrorKind::OutOfMemory | ErrorKind::Busy | ErrorKind::RateLimited => "53",
                ErrorKind::Cancelled | ErrorKind::Timeout => "57",
                ErrorKind::StaleResult => "55",
                ErrorKind::Internal => "XX",
            };
            assert_eq!(class, expected_class, "{kind:?}");
        }
    }
}
