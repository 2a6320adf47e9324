//! Why a transaction got no decision.

use crate::validate::InvalidEvent;

/// Why a transaction got no decision. Every variant except [`DecisionError::Unavailable`] and
/// [`DecisionError::Store`] is final for that event: retrying it would fail again, so Kafka
/// consumers send it to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecisionError {
    /// The event failed validation.
    #[error("invalid event: {0}")]
    Invalid(#[from] InvalidEvent),
    /// Scoring this event crashed its user actor; the actor was restarted from its snapshot.
    #[error("scoring crashed the user actor: {0}")]
    Poisoned(String),
    /// The decision could not be stored.
    #[error("store: {0}")]
    Store(String),
    /// The node is shutting down or the user's actor kept failing.
    #[error("scoring unavailable: {0}")]
    Unavailable(String),
}
