//! Errors of loading and validating the catalog.

use std::path::PathBuf;

/// Why a configuration could not be loaded. Every message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the expected shape.
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is present but not acceptable.
    #[error("invalid configuration at `{key}`: {message}")]
    Invalid {
        /// The dotted key of the offending value, e.g. `grants[2].dataset`.
        key: String,
        /// What is wrong and, where possible, what would be right.
        message: String,
    },
}

impl CatalogError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}
