//! Feature replay for training and evaluation: events go through each user's [`UserState`] in
//! order, exactly as a user actor folds them in, and come out as model features. The merchant
//! and device activity and the fraud labels of the whole period are indexed up front; each event
//! sees only what was known a label delay before its own time, as live scoring does.

use crate::entity_risk::EntityRisk;
use crate::state::UserState;
use sentinel_event::Transaction;
use sentinel_model::FeatureVector;
use std::collections::HashMap;
use std::sync::Arc;

/// Per-user states built up from the events seen so far.
#[derive(Debug)]
pub struct FeatureReplay {
    users: HashMap<String, UserState>,
    lateness_ms: i64,
    risk: Arc<EntityRisk>,
}

impl FeatureReplay {
    /// An empty replay with the node's allowed lateness and the period's entity-risk index.
    pub fn new(lateness_ms: i64, risk: Arc<EntityRisk>) -> Self {
        FeatureReplay {
            users: HashMap::new(),
            lateness_ms,
            risk,
        }
    }

    /// The features of `event` as its user's next event; feed each user's events in the order
    /// the node processed (or would process) them.
    pub fn features(&mut self, event: &Transaction) -> FeatureVector {
        let state = match self.users.get_mut(event.user_id.as_str()) {
            Some(state) => state,
            None => self.users.entry(event.user_id.clone()).or_default(),
        };
        state.features(event, &self.risk, self.lateness_ms)
    }

    /// Users seen.
    pub fn users(&self) -> usize {
        self.users.len()
    }
}
