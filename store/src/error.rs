//! Store errors.

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption, unreachable cluster).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("corrupt record in {table}: {reason}")]
    Corrupt {
        /// The table holding the record.
        table: &'static str,
        /// The decoding error.
        reason: String,
    },
    /// The store host refused a cluster peer's request that scoring does not need (API keys,
    /// audit entries, catalogue changes, deletes): the change belongs on the host's own API.
    #[error("refused by the store host: {0}")]
    Refused(String),
    /// The writer has shut down; nothing more can be written.
    #[error("the store writer has stopped")]
    WriterStopped,
}

impl StoreError {
    pub(crate) fn backend(e: impl std::fmt::Display) -> Self {
        StoreError::Backend(e.to_string())
    }
}
