//! Feature replay for training and evaluation: events go through each user's [`UserState`] in
//! order, exactly as a user actor folds them in, and come out as model features. The analyst
//! labels of the whole period are indexed up front; each event sees only those older than the
//! label delay at its own time, as live scoring does.

use crate::label_risk::LabelRisk;
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
    labels: Arc<LabelRisk>,
}

impl FeatureReplay {
    /// An empty replay with the node's allowed lateness and the analyst labels known.
    pub fn new(lateness_ms: i64, labels: Arc<LabelRisk>) -> Self {
        FeatureReplay {
            users: HashMap::new(),
            lateness_ms,
            labels,
        }
    }

    /// The features of `event` as its user's next event; feed each user's events in the order
    /// the node processed (or would process) them.
    pub fn features(&mut self, event: &Transaction) -> FeatureVector {
        let state = match self.users.get_mut(event.user_id.as_str()) {
            Some(state) => state,
            None => self.users.entry(event.user_id.clone()).or_default(),
        };
        state.features(event, &self.labels, self.lateness_ms)
    }

    /// Users seen.
    pub fn users(&self) -> usize {
        self.users.len()
    }
}
