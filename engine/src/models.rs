//! The models a policy carries: the champion that is recorded and visible to rules, and an
//! optional challenger scored in shadow. They ride the policy broadcast, so activating a model
//! reaches every user actor as an actor message, exactly like a rule change. The entity-risk
//! index the merchant and device features read is refreshed on its own (no broadcast): every
//! policy carries the same [`EntityRiskFeed`].

use crate::entity_risk::EntityRiskFeed;
use crate::features::EventFacts;
use crate::ml_features;
use sentinel_event::MlScore;
use sentinel_model::{Model, ModelOutput, N_FEATURES};
use std::sync::Arc;

/// The champion and the challenger, either possibly absent.
#[derive(Debug, Clone, Default)]
pub struct Models {
    /// Scores every event; `ml.score` and `ml.anomaly` in rules come from it.
    pub champion: Option<Arc<Model>>,
    /// Scored beside the champion and recorded, never deciding.
    pub challenger: Option<Arc<Model>>,
    /// Merchant and device activity and known fraud for the entity-risk features, swapped in
    /// place when the node refreshes it.
    pub entity_risk: EntityRiskFeed,
}

/// Both models' output for one event, before it becomes part of a decision.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    /// The champion's output.
    pub champion: ModelOutput,
    /// The challenger's calibrated score.
    pub challenger: Option<f64>,
}

impl Models {
    /// Extracts the features once and scores them with each model present. Allocation-free
    /// and lock-free (the label index is read through an `ArcSwap` guard).
    pub fn score(&self, facts: &EventFacts<'_>) -> Option<Scored> {
        let champion = self.champion.as_deref()?;
        let mut x = [0.0; N_FEATURES];
        ml_features::extract(facts, &self.entity_risk.load(), &mut x);
        Some(Scored {
            champion: champion.score(&x),
            challenger: self.challenger.as_deref().map(|m| m.score(&x).score),
        })
    }

    /// The record of `scored` on a decision.
    pub fn record(&self, scored: &Scored) -> Option<MlScore> {
        let champion = self.champion.as_deref()?;
        Some(MlScore {
            score: scored.champion.score,
            anomaly: scored.champion.anomaly,
            model_version: champion.id().to_owned(),
            top_features: scored
                .champion
                .top_features
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .collect(),
            challenger_score: scored.challenger,
            challenger_version: self.challenger.as_deref().map(|m| m.id().to_owned()),
        })
    }
}
