//! Catalogue errors, shaped for the API's status table.

use sentinel_store::StoreError;

/// Why a catalogue operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The rule, list, version or decision does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts the current state (a duplicate name, a list still in use).
    #[error("{0}")]
    Conflict(String),
    /// A field is invalid; for rule text, `line` and `column` point at the problem.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong, for an analyst.
        message: String,
        /// 1-based line in the rule text, when the error is in it.
        line: Option<u32>,
        /// 1-based column in the rule text, when the error is in it.
        column: Option<u32>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CatalogError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        CatalogError::Invalid {
            field: field.to_owned(),
            message: message.into(),
            line: None,
            column: None,
        }
    }
}
