//! What the service refuses, each with a code and a message that say why: Tollgate is
//! read-only, plans only SQL, and runs every query on its own snapshot.

use tonic::Status;

/// Updates, ingestion and prepared updates.
pub(super) fn read_only() -> Status {
    Status::permission_denied("Tollgate is read-only: only queries are allowed")
}

/// Substrait plans, as statements or prepared statements.
pub(super) fn substrait() -> Status {
    Status::unimplemented("Substrait plans are not supported; send SQL")
}

/// `BeginTransaction`.
pub(super) fn begin_transaction() -> Status {
    Status::unimplemented(
        "transactions are not supported: every query reads a consistent snapshot on its own",
    )
}

/// `EndTransaction`.
pub(super) fn end_transaction() -> Status {
    Status::unimplemented("transactions are not supported")
}

/// `BeginSavepoint` and `EndSavepoint`.
pub(super) fn savepoints() -> Status {
    Status::unimplemented("savepoints are not supported")
}
