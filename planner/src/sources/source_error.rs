//! Failures of a dataset's source while a query reads it, as tenants are told them: the
//! dataset's id and what went wrong, never the bucket, path or server behind it.
//!
//! A granted scan turns the engine's error into a [`DatasetError`] when its cause is the
//! source (the store, the files or the replica), logs the original for the operator, and
//! passes every other error (a division by zero in a grant's column, a cancel) unchanged.

use std::error::Error;

use datafusion::error::DataFusionError;

/// A dataset that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("dataset `{dataset}` {failure}")]
pub struct DatasetError {
    /// Dataset id.
    pub dataset: String,
    /// What went wrong.
    pub failure: SourceFailure,
}

/// What went wrong with a dataset's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceFailure {
    /// The store or server did not answer (connection refused, timeout, 5xx).
    #[error("is unavailable: its source cannot be reached")]
    Unreachable,
    /// The store or server refused the gateway's credentials.
    #[error("is unavailable: its source refused the gateway's credentials")]
    CredentialsRefused,
    /// A file listed for the query was gone when it was read (the dataset is being
    /// rewritten); the query can be retried.
    #[error("changed while it was read (a file was removed); retry the query")]
    FileRemoved,
    /// None of the dataset's replicas could be reached.
    #[error("is unavailable: none of its replicas can be reached")]
    ReplicasDown,
    /// A replica answered nothing for longer than its source's `read_timeout` (shown as
    /// text, e.g. `30s`) after it had sent rows: taken as hung.
    #[error("could not be read: its source sent nothing for {0}")]
    Silent(String),
    /// The source refused or failed the query the gateway sent for the dataset.
    #[error("could not be read: its source failed the query")]
    SourceQuery,
    /// A file could not be read as the dataset's schema (a column's type changed).
    #[error("has a file that cannot be read as the dataset's schema (a column's type changed)")]
    SchemaDrift,
}

impl DatasetError {
    /// The dataset error behind `error` if its cause is the source's store (unreachable,
    /// credentials refused, a file gone), or a dataset error made before.
    pub fn from_store(dataset: &str, error: &DataFusionError) -> Option<Self> {
        let mut current: Option<&(dyn Error + 'static)> = Some(error);
        while let Some(cause) = current {
            if let Some(existing) = cause.downcast_ref::<DatasetError>() {
                return Some(Self {
                    dataset: existing.dataset.clone(),
                    failure: existing.failure.clone(),
                });
            }
            if let Some(store) = cause.downcast_ref::<object_store::Error>() {
                return Some(Self {
                    dataset: dataset.to_owned(),
                    failure: store_failure(store),
                });
            }
            current = cause.source();
        }
        None
    }

    /// The dataset error behind an error of a source scan: a store failure, else a file
    /// the scan could not decode as the dataset's schema. Memory limits and cancels are not
    /// the source's doing and give `None`.
    pub fn from_scan(dataset: &str, error: &DataFusionError) -> Option<Self> {
        if let Some(found) = Self::from_store(dataset, error) {
            return Some(found);
        }
        match error.find_root() {
            DataFusionError::ResourcesExhausted(_) | DataFusionError::External(_) => None,
            _ => Some(Self {
                dataset: dataset.to_owned(),
                failure: SourceFailure::SchemaDrift,
            }),
        }
    }

    /// The dataset error an engine error carries, if any.
    pub fn find(error: &DataFusionError) -> Option<&Self> {
        let mut current: Option<&(dyn Error + 'static)> = Some(error);
        while let Some(cause) = current {
            if let Some(found) = cause.downcast_ref::<Self>() {
                return Some(found);
            }
            current = cause.source();
        }
        None
    }

    /// `error` as the tenant is told it, if `failure` found a source failure in it: the
    /// original goes to the operator's log.
    pub fn replace(
        error: DataFusionError,
        failure: impl FnOnce(&DataFusionError) -> Option<Self>,
    ) -> DataFusionError {
        match failure(&error) {
            Some(failure) => {
                if Self::find(&error).is_none() {
                    tracing::warn!(
                        dataset = %failure.dataset,
                        %error,
                        "a dataset's source failed during a query"
                    );
                }
                DataFusionError::External(Box::new(failure))
            }
            None => error,
        }
    }
}

fn store_failure(error: &object_store::Error) -> SourceFailure {
    match error {
        object_store::Error::NotFound { .. } => SourceFailure::FileRemoved,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => SourceFailure::CredentialsRefused,
        other => {
            let text = chain_text(other);
            let refused = [
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
            ];
            if refused.iter().any(|code| text.contains(code)) {
                SourceFailure::CredentialsRefused
            } else {
                SourceFailure::Unreachable
            }
        }
    }
}

/// An error and its causes as one string, to look for a store's error code.
fn chain_text(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        current = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_become_failures_without_paths() {
        let missing = DataFusionError::ObjectStore(Box::new(object_store::Error::NotFound {
            path: "lake/secret/trips/part-0.parquet".to_owned(),
            source: "404".into(),
        }));
        let error = DatasetError::from_store("lake.trips", &missing).expect("a source failure");
        assert_eq!(error.failure, SourceFailure::FileRemoved);
        assert!(!error.to_string().contains("secret"));

        let refused = DataFusionError::ObjectStore(Box::new(object_store::Error::Generic {
            store: "S3",
            source: "Client error with status 403 Forbidden: InvalidAccessKeyId".into(),
        }));
        let error = DatasetError::from_store("lake.trips", &refused).expect("a source failure");
        assert_eq!(error.failure, SourceFailure::CredentialsRefused);

        let wrapped = DataFusionError::External(Box::new(error));
        let found = DatasetError::find(&wrapped).expect("found inside External");
        assert_eq!(found.dataset, "lake.trips");
    }

    #[test]
    fn scan_errors_are_drift_unless_limits_or_cancels() {
        let cast = DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::CastError(
                "Cannot cast string 'secret value' to value of Float64 type".to_owned(),
            )),
            None,
        );
        assert!(DatasetError::from_store("lake.trips", &cast).is_none());
        let drift = DatasetError::from_scan("lake.trips", &cast).expect("drift");
        assert_eq!(drift.failure, SourceFailure::SchemaDrift);
        assert!(!drift.to_string().contains("secret"));
        let memory = DataFusionError::ResourcesExhausted("memory".to_owned());
        assert!(DatasetError::from_scan("lake.trips", &memory).is_none());
    }
}
