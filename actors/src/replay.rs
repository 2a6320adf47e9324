//! Feature replay for training and evaluation: events go through each user's [`UserState`] in
//! order, exactly as a user actor folds them in, and come out as model features.

use crate::state::UserState;
use sentinel_event::Transaction;
use sentinel_model::FeatureVector;
use std::collections::HashMap;

/// Per-user states built up from the events seen so far.
#[derive(Debug, Default)]
pub struct FeatureReplay {
    users: HashMap<String, UserState>,
    lateness_ms: i64,
}

impl FeatureReplay {
    /// An empty replay with the node's allowed lateness.
    pub fn new(lateness_ms: i64) -> Self {
        FeatureReplay {
            users: HashMap::new(),
            lateness_ms,
        }
    }

    /// The features of `event` as its user's next event; feed each user's events in the order
    /// the node processed (or would process) them.
    pub fn features(&mut self, event: &Transaction) -> FeatureVector {
        let state = match self.users.get_mut(event.user_id.as_str()) {
            Some(state) => state,
            None => self.users.entry(event.user_id.clone()).or_default(),
        };
        state.features(event, self.lateness_ms)
    }

    /// Users seen.
    pub fn users(&self) -> usize {
        self.users.len()
    }
}
