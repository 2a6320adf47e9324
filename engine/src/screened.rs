//! The answer of a what-if screening (the actors crate screens on detached copies of users'
//! state; the REST API reports it).

use sentinel_event::Decision;

/// What live scoring would answer for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Screened {
    /// The decision (not stored).
    pub decision: Decision,
    /// The transaction id was already decided (stored, or earlier in the batch) and this is
    /// that decision, as live scoring answers a redelivery.
    pub duplicate: bool,
}
