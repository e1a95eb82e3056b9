//! The planner's errors and the protocol-neutral kinds front ends map to their wire codes.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

use crate::metering::{LedgerError, Outcome};
use crate::session::session_parameters::ParameterRefused;
use crate::sources::source_error::DatasetError;

/// What went wrong, in terms a front end can translate to SQLSTATE, gRPC or HTTP codes.
///
/// Each front end keeps one mapping table from these kinds (see `gateway::pgwire::errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The SQL text does not parse.
    Syntax,
    /// A table (dataset) that does not exist for this tenant.
    UndefinedTable,
    /// A column that does not exist.
    UndefinedColumn,
    /// A function that does not exist or does not accept these arguments.
    UndefinedFunction,
    /// Another named object that does not exist (a session parameter).
    UndefinedObject,
    /// The statement is well formed but not allowed (writes, DDL, engine settings).
    Denied,
    /// A feature Tollgate does not offer.
    Unsupported,
    /// Bad values: wrong parameter count or type, an impossible cast.
    InvalidInput,
    /// Division by zero.
    DivisionByZero,
    /// The statement is too large or too deeply nested.
    TooComplex,
    /// The tenant's memory limit (or spill quota) was reached.
    OutOfMemory,
    /// The disk of the spill directory is full.
    DiskFull,
    /// The tenant's queue is full, a query waited too long, or it has too many connections.
    Busy,
    /// The tenant sent queries faster than its rate limit.
    RateLimited,
    /// A query's result passed the rows or bytes its profile allows.
    ResultTooLarge,
    /// A query would do more work than its profile allows: compare more join pairs,
    /// recurse into more rows, or build a larger value.
    WorkTooLarge,
    /// The query was cancelled by the client.
    Cancelled,
    /// The statement ran longer than the profile allows.
    Timeout,
    /// A part of a result was asked for after the result's layout changed (new files in a
    /// source since the parts were handed out); the client should ask for the parts again.
    StaleResult,
    /// The usage ledger could not keep the query's record, so the query is not reported
    /// complete; or a dataset's source could not be read.
    Unavailable,
    /// The gateway is shutting down: no new statement, and running ones stopped when its
    /// grace period ends.
    ShuttingDown,
    /// A failure inside Tollgate or a source; details are logged, not sent.
    Internal,
}

impl ErrorKind {
    /// Every kind, for front ends' mapping tests.
    pub const ALL: [ErrorKind; 22] = [
        Self::Syntax,
        Self::UndefinedTable,
        Self::UndefinedColumn,
        Self::UndefinedFunction,
        Self::UndefinedObject,
        Self::Denied,
        Self::Unsupported,
        Self::InvalidInput,
        Self::DivisionByZero,
        Self::TooComplex,
        Self::OutOfMemory,
        Self::DiskFull,
        Self::Busy,
        Self::RateLimited,
        Self::ResultTooLarge,
        Self::WorkTooLarge,
        Self::Cancelled,
        Self::Timeout,
        Self::StaleResult,
        Self::Unavailable,
        Self::ShuttingDown,
        Self::Internal,
    ];

    /// The SQLSTATE of the kind: PostgreSQL's code for the same condition. Front ends of
    /// the Postgres wire send it; the usage ledger records it for every protocol.
    pub fn sqlstate(self) -> &'static str {
        match self {
            Self::Syntax => "42601",
            Self::UndefinedTable => "42P01",
            Self::UndefinedColumn => "42703",
            Self::UndefinedFunction => "42883",
            Self::UndefinedObject => "42704",
            Self::Denied => "42501",
            Self::Unsupported => "0A000",
            Self::InvalidInput => "22023",
            Self::DivisionByZero => "22012",
            Self::TooComplex => "54001",
            Self::OutOfMemory => "53200",
            Self::DiskFull => "53100",
            Self::Busy => "53300",
            Self::RateLimited => "53400",
            Self::ResultTooLarge | Self::WorkTooLarge => "54000",
            Self::Cancelled | Self::Timeout => "57014",
            Self::StaleResult => "55000",
            Self::Unavailable => "58000",
            Self::ShuttingDown => "57P01",
            Self::Internal => "XX000",
        }
    }
}

/// A limit of a tenant's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `rate_limit` / `rate_burst`.
    Rate,
    /// `max_concurrent_queries` and `queue_length`.
    QueueFull,
    /// `max_queue_wait`.
    QueueWait,
    /// `max_connections`.
    Connections,
    /// `memory_limit` (and `spill_quota`).
    Memory,
    /// `max_result_rows`.
    ResultRows,
    /// `max_result_bytes`.
    ResultBytes,
    /// `max_join_pairs`.
    JoinPairs,
    /// `max_recursive_rows`.
    RecursiveRows,
    /// `max_generated_rows`.
    GeneratedRows,
    /// `max_value_size`.
    ValueSize,
}

impl Limit {
    /// The kind front ends map to a wire code.
    pub fn kind(self) -> ErrorKind {
        match self {
            Self::Rate => ErrorKind::RateLimited,
            Self::QueueFull | Self::QueueWait | Self::Connections => ErrorKind::Busy,
            Self::Memory => ErrorKind::OutOfMemory,
            Self::ResultRows | Self::ResultBytes => ErrorKind::ResultTooLarge,
            Self::JoinPairs | Self::RecursiveRows | Self::GeneratedRows | Self::ValueSize => {
                ErrorKind::WorkTooLarge
            }
        }
    }
}

/// An error of planning or running a query.
#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    /// Refused by the SQL policy; the message says what is not allowed.
    #[error("{message}")]
    Policy {
        /// [`ErrorKind::Denied`] or [`ErrorKind::Unsupported`].
        kind: ErrorKind,
        /// Shown to the client.
        message: String,
    },
    /// The SQL does not parse.
    #[error("syntax error: {0}")]
    Parse(#[from] ParserError),
    /// Wrong parameters for a prepared statement.
    #[error("{0}")]
    Parameters(String),
    /// The statement nests too deeply or has too many parts; the message names the bound.
    #[error("{0}")]
    TooComplex(String),
    /// A bug: planning or running the statement panicked. Only this statement fails; the
    /// panic's message is logged, not sent.
    #[error("the statement failed on an internal error ({0})")]
    Panicked(String),
    /// A limit of the tenant's profile was reached; the message names it and the profile.
    #[error("{message}")]
    Limit {
        /// Which limit.
        limit: Limit,
        /// Shown to the client.
        message: String,
    },
    /// Stopped on the client's request.
    #[error("canceling statement due to user request")]
    Cancelled,
    /// Refused or stopped because the gateway is shutting down.
    #[error("terminating statement due to administrator command: the gateway is shutting down")]
    ShuttingDown,
    /// Stopped by the profile's statement timeout.
    #[error("canceling statement due to statement timeout ({timeout} in profile {profile})")]
    Timeout {
        /// The limit, human-readable.
        timeout: String,
        /// The tenant's profile.
        profile: String,
    },
    /// A grant could not be turned into a view at start-up.
    #[error("grant of `{dataset}` to tenant `{tenant}`: {source}")]
    Grant {
        /// Tenant id.
        tenant: String,
        /// Dataset id.
        dataset: String,
        /// The SQL error of the grant's expression or filter.
        source: Box<PlannerError>,
    },
    /// A dataset's source could not be opened.
    #[error("dataset `{dataset}`: {message}")]
    Source {
        /// Dataset id.
        dataset: String,
        /// What failed.
        message: String,
    },
    /// A source's store could not be set up from its settings.
    #[error("source `{source_name}`: {message}")]
    SourceStore {
        /// Name of the source.
        source_name: String,
        /// What failed.
        message: String,
    },
    /// A result part was asked for with a partition count the query no longer has.
    #[error(
        "the result now splits into {planned} parts, not the {count} it was described with; request the query's endpoints again"
    )]
    LayoutChanged {
        /// Parts the query has now.
        planned: usize,
        /// Parts the caller was given.
        count: usize,
    },
    /// The usage ledger could not keep the query's record.
    #[error("{0}; the query's result is not complete")]
    Ledger(#[source] LedgerError),
    /// The query executor's threads could not be started.
    #[error("cannot start the query executor: {0}")]
    Executor(#[source] std::io::Error),
    /// An error of the query engine.
    #[error(transparent)]
    Engine(#[from] DataFusionError),
}

impl PlannerError {
    /// The kind front ends map to a wire code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Policy { kind, .. } => *kind,
            Self::Parse(ParserError::RecursionLimitExceeded) => ErrorKind::TooComplex,
            Self::Parse(_) => ErrorKind::Syntax,
            Self::Parameters(_) => ErrorKind::InvalidInput,
            Self::TooComplex(_) => ErrorKind::TooComplex,
            Self::Cancelled => ErrorKind::Cancelled,
            Self::ShuttingDown => ErrorKind::ShuttingDown,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::LayoutChanged { .. } => ErrorKind::StaleResult,
            Self::Limit { limit, .. } => limit.kind(),
            Self::Ledger(_) => ErrorKind::Unavailable,
            Self::Grant { .. }
            | Self::Source { .. }
            | Self::SourceStore { .. }
            | Self::Executor(_)
            | Self::Panicked(_) => ErrorKind::Internal,
            Self::Engine(error) => classify(error),
        }
    }

    /// The message for the client: the error's text, except for internal errors, whose
    /// details (paths, source names) stay in the log.
    pub fn client_message(&self) -> String {
        match self.kind() {
            ErrorKind::Internal => {
                "internal error while running the query; the operator's log has the details"
                    .to_owned()
            }
            ErrorKind::OutOfMemory if !matches!(self, Self::Limit { .. }) => {
                "the query needs more memory than the tenant's profile allows".to_owned()
            }
            _ => match self {
                Self::Engine(error) => engine_message(error),
                other => other.to_string(),
            },
        }
    }
}

impl PlannerError {
    /// How the error ends a query, as its usage record says, and its SQLSTATE.
    pub fn outcome(&self) -> (Outcome, &'static str) {
        let outcome = match self {
            Self::Cancelled | Self::ShuttingDown => Outcome::Cancelled,
            Self::Timeout { .. } => Outcome::Timeout,
            Self::Limit { .. } => Outcome::Limit,
            _ => Outcome::Error,
        };
        (outcome, self.kind().sqlstate())
    }

    /// The planner's own error an engine error carries from inside a running plan (a
    /// profile limit passed there), if it is one.
    pub fn carried(error: &DataFusionError) -> Option<&PlannerError> {
        match error.find_root() {
            DataFusionError::External(inner) => inner.downcast_ref::<PlannerError>(),
            _ => None,
        }
    }
}

/// Classifies an engine error by its root cause.
fn classify(error: &DataFusionError) -> ErrorKind {
    if let Some(carried) = PlannerError::carried(error) {
        return carried.kind();
    }
    if DatasetError::find(error).is_some() {
        return ErrorKind::Unavailable;
    }
    if storage_full(error).is_some() {
        return ErrorKind::DiskFull;
    }
    match ParameterRefused::find(error) {
        Some(ParameterRefused::Unknown(_)) => return ErrorKind::UndefinedObject,
        Some(ParameterRefused::ReadOnly(_) | ParameterRefused::EngineSetting(_)) => {
            return ErrorKind::Denied;
        }
        Some(ParameterRefused::InvalidValue(..)) => return ErrorKind::InvalidInput,
        None => {}
    }
    match error.find_root() {
        DataFusionError::SQL(parser, _) => match parser.as_ref() {
            ParserError::RecursionLimitExceeded => ErrorKind::TooComplex,
            _ => ErrorKind::Syntax,
        },
        DataFusionError::SchemaError(schema_error, _) => match schema_error.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { .. } => ErrorKind::UndefinedColumn,
            _ => ErrorKind::InvalidInput,
        },
        DataFusionError::Plan(message) => classify_plan_message(message),
        DataFusionError::NotImplemented(_) => ErrorKind::Unsupported,
        DataFusionError::ResourcesExhausted(_) => ErrorKind::OutOfMemory,
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::DivideByZero => ErrorKind::DivisionByZero,
            ArrowError::CastError(_)
            | ArrowError::ParseError(_)
            | ArrowError::ComputeError(_)
            | ArrowError::InvalidArgumentError(_) => ErrorKind::InvalidInput,
            _ => ErrorKind::Internal,
        },
        DataFusionError::Execution(message) if message.contains("Divide by zero") => {
            ErrorKind::DivisionByZero
        }
        DataFusionError::Execution(message) if message.starts_with("Cast error") => {
            ErrorKind::InvalidInput
        }
        _ => ErrorKind::Internal,
    }
}

fn classify_plan_message(message: &str) -> ErrorKind {
    if message.starts_with("table '") && message.contains("not found") {
        ErrorKind::UndefinedTable
    } else if message.contains("Invalid function")
        || message.contains("No function matches")
        || message.contains("function") && message.contains("not found")
    {
        ErrorKind::UndefinedFunction
    } else {
        ErrorKind::InvalidInput
    }
}

/// The root message without DataFusion's stage prefixes ("Error during planning: …").
fn engine_message(error: &DataFusionError) -> String {
    if let Some(carried) = PlannerError::carried(error) {
        return carried.client_message();
    }
    if let Some(failure) = DatasetError::find(error) {
        return failure.to_string();
    }
    if let Some(refusal) = ParameterRefused::find(error) {
        return refusal.to_string();
    }
    if storage_full(error).is_some() {
        // The error's own text may name the spill file: the directory is the provider's.
        return "could not write to a spill file: No space left on device".to_owned();
    }
    let root = error.find_root();
    let text = match root {
        DataFusionError::Plan(message)
        | DataFusionError::Execution(message)
        | DataFusionError::NotImplemented(message) => message.clone(),
        DataFusionError::SQL(parser, _) => parser.to_string(),
        DataFusionError::SchemaError(schema_error, _) => schema_error.to_string(),
        DataFusionError::ArrowError(arrow, _) => arrow.to_string(),
        other => other.to_string(),
    };
    relation_message(&text).unwrap_or(text)
}

/// The "no space left on device" somewhere in `error`'s chain of causes, if there is one.
fn storage_full(error: &DataFusionError) -> Option<&std::io::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::StorageFull
        {
            return Some(io);
        }
        cause = current.source();
    }
    None
}

/// PostgreSQL's wording for a missing table: `relation "tpch.customer" does not exist`,
/// without the catalog (database) part DataFusion puts in front.
fn relation_message(text: &str) -> Option<String> {
    let name = text.strip_prefix("table '")?.strip_suffix("' not found")?;
    let parts: Vec<&str> = name.split('.').collect();
    let shown = if parts.len() == 3 {
        parts[1..].join(".")
    } else {
        name.to_owned()
    };
    Some(format!("relation \"{shown}\" does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_are_classified_by_root_cause() {
        let missing = DataFusionError::Plan("table 'tollgate.tpch.customer' not found".to_owned());
        let wrapped = DataFusionError::Context("planning".to_owned(), Box::new(missing));
        let error = PlannerError::Engine(wrapped);
        assert_eq!(error.kind(), ErrorKind::UndefinedTable);
        assert_eq!(
            error.client_message(),
            "relation \"tpch.customer\" does not exist"
        );
        let internal = PlannerError::Engine(DataFusionError::Internal(
            "/data/secret/path.parquet".to_owned(),
        ));
        assert_eq!(internal.kind(), ErrorKind::Internal);
        assert!(!internal.client_message().contains("secret"));
    }

    #[test]
    fn a_full_disk_deep_in_a_spill_error_is_53100_without_its_path() {
        let full = std::io::Error::from_raw_os_error(28);
        let arrow = ArrowError::IoError("/spill/acme/tmp-1.arrow".to_owned(), full);
        let wrapped = DataFusionError::Context(
            "spilling".to_owned(),
            Box::new(DataFusionError::ArrowError(Box::new(arrow), None)),
        );
        let error = PlannerError::Engine(DataFusionError::Shared(std::sync::Arc::new(wrapped)));
        assert_eq!(error.kind(), ErrorKind::DiskFull);
        assert_eq!(error.kind().sqlstate(), "53100");
        let text = error.client_message();
        assert!(text.contains("No space left on device"), "{text}");
        assert!(!text.contains("/spill"), "{text}");
    }

    #[test]
    fn every_kind_has_a_valid_sqlstate_of_the_right_class() {
        for kind in ErrorKind::ALL {
            let code = kind.sqlstate();
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
                ErrorKind::TooComplex | ErrorKind::ResultTooLarge | ErrorKind::WorkTooLarge => "54",
                ErrorKind::OutOfMemory
                | ErrorKind::DiskFull
                | ErrorKind::Busy
                | ErrorKind::RateLimited => "53",
                ErrorKind::Cancelled | ErrorKind::Timeout | ErrorKind::ShuttingDown => "57",
                ErrorKind::StaleResult => "55",
                ErrorKind::Unavailable => "58",
                ErrorKind::Internal => "XX",
            };
            assert_eq!(class, expected_class, "{kind:?}");
        }
    }
}
