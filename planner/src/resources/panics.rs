//! Panics contained to the statement that caused them.
//!
//! A panic is a bug, but it must cost one statement, not the connection or the process:
//! the work that can panic (parsing, the compatibility rewrites, planning, a query's job)
//! runs under [`contained`] (a query's job on the executor catches its own), and a panic
//! becomes
//! [`PlannerError::Panicked`] (SQLSTATE XX000), its message logged for the operator.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::PlannerError;

/// Runs `work`; a panic in it is returned as [`PlannerError::Panicked`].
///
/// The work's state is dropped with the panic (nothing of it is used afterwards), which is
/// why asserting unwind safety is sound here.
pub(crate) fn contained<T>(
    during: &'static str,
    work: impl FnOnce() -> Result<T, PlannerError>,
) -> Result<T, PlannerError> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| Err(panicked(during, &*panic)))
}

/// The error for a panic while `during`, logged with the panic's message.
pub(crate) fn panicked(during: &'static str, panic: &(dyn Any + Send)) -> PlannerError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    tracing::error!(during, panic = %message, "a statement panicked; only it fails");
    PlannerError::Panicked(during.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_panic_is_an_internal_error_of_the_statement() {
        let error = contained("testing", || -> Result<(), PlannerError> {
            panic!("index out of bounds")
        })
        .expect_err("panicked");
        assert_eq!(error.kind(), ErrorKind::Internal);
        assert!(!error.client_message().contains("index out of bounds"));
    }
}
