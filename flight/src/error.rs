//! The Flight SQL front end's errors, and the one table from planner error kinds to gRPC codes.

use std::net::SocketAddr;

use tollgate_planner::{ErrorKind, PlannerError};
use tonic::{Code, Status};

/// Why the Flight SQL listener could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum FlightError {
    /// `flight.signing_key` is unusable.
    #[error("flight.signing_key: {0}")]
    SigningKey(String),
    /// The listener address could not be bound.
    #[error("cannot listen on {addr} (flight.listen): {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("Flight SQL server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A failure inside the front end.
    #[error("{0}")]
    Internal(String),
}

/// The gRPC code sent for each kind of planner error.
pub fn grpc_code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::Syntax
        | ErrorKind::InvalidInput
        | ErrorKind::DivisionByZero
        | ErrorKind::TooComplex => Code::InvalidArgument,
        ErrorKind::UndefinedTable
        | ErrorKind::UndefinedColumn
        | ErrorKind::UndefinedFunction
        | ErrorKind::UndefinedObject => Code::NotFound,
        ErrorKind::Denied => Code::PermissionDenied,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::OutOfMemory
        | ErrorKind::DiskFull
        | ErrorKind::Busy
        | ErrorKind::RateLimited
        | ErrorKind::ResultTooLarge
        | ErrorKind::WorkTooLarge => Code::ResourceExhausted,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::Timeout => Code::DeadlineExceeded,
        ErrorKind::StaleResult => Code::FailedPrecondition,
        ErrorKind::Unavailable | ErrorKind::ShuttingDown => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    }
}

/// The status for a planner error; internal details go to the log only.
pub fn planner_status(error: &PlannerError) -> Status {
    let kind = error.kind();
    if kind == ErrorKind::Internal {
        tracing::error!(error = %error, "query failed");
    }
    Status::new(grpc_code(kind), error.client_message())
}

/// The status for a failure inside the front end: logged, and sent without details.
pub fn internal_status(context: &str, error: impl std::fmt::Display) -> Status {
    tracing::error!(%error, "{context}");
    Status::internal("internal error; the operator's log has the details")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_specific_code() {
        for kind in ErrorKind::ALL {
            let code = grpc_code(kind);
            assert_ne!(code, Code::Unknown, "{kind:?}");
            assert_ne!(code, Code::Ok, "{kind:?}");
            if kind != ErrorKind::Internal {
                assert_ne!(code, Code::Internal, "{kind:?} is the client's to fix");
            }
        }
        assert_eq!(grpc_code(ErrorKind::UndefinedTable), Code::NotFound);
        assert_eq!(grpc_code(ErrorKind::Denied), Code::PermissionDenied);
        assert_eq!(grpc_code(ErrorKind::Timeout), Code::DeadlineExceeded);
        assert_eq!(grpc_code(ErrorKind::OutOfMemory), Code::ResourceExhausted);
    }
}
