//! The figures `sentinel train` and `sentinel evaluate` report for a model on labelled
//! samples: the model's evaluation, card precision@k per day (the analysts' view: k cards
//! checked a day) and recall per fraud pattern.

use super::LabelledSample;
use sentinel_model::card_precision::{
    card_precision_at_k, mean_precision, DailyCardPrecision, ScoredCard,
};
use sentinel_model::{evaluate, Evaluation, Model, Sample};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A model's figures on labelled samples.
#[derive(Debug, Serialize)]
pub struct EvaluationReport {
    /// AUC-ROC, average precision, precision@100 and the confusion matrix.
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// k of the card precision.
    pub k: usize,
    /// Mean of the daily card precision@k.
    pub card_precision_at_k: Option<f64>,
    /// Card precision@k per test day.
    pub daily: Vec<DailyCardPrecision>,
    /// Per fraud pattern: (frauds, caught at the threshold).
    pub recall_by_scenario: BTreeMap<String, (u64, u64)>,
}

fn card_key(card: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    card.hash(&mut h);
    h.finish()
}

/// Scores `samples` with `model`: the confusion matrix and recall at `threshold`, card
/// precision@`k` per day with cards counted compromised from `compromised_since`.
pub fn evaluation_report(
    model: &Model,
    samples: &[&LabelledSample],
    compromised_since: &HashMap<String, i64>,
    threshold: f64,
    k: usize,
) -> EvaluationReport {
    let plain: Vec<Sample> = samples.iter().map(|s| s.sample.clone()).collect();
    let evaluation = evaluate(model, &plain, threshold);
    let mut scored = Vec::with_capacity(samples.len());
    let mut recall_by_scenario: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in samples {
        let score = model.score(&s.sample.features).score;
        scored.push(ScoredCard {
            time_ms: s.sample.time_ms,
            card: card_key(&s.card),
            score,
            fraud: s.sample.fraud,
        });
        if let (true, Some(scenario)) = (s.sample.fraud, &s.scenario) {
            let entry = recall_by_scenario.entry(scenario.clone()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(score >= threshold);
        }
    }
    let compromised: HashMap<u64, i64> = compromised_since
        .iter()
        .map(|(card, t)| (card_key(card), *t))
        .collect();
    let daily = card_precision_at_k(&scored, &compromised, k);
    EvaluationReport {
        evaluation,
        k,
        card_precision_at_k: mean_precision(&daily),
        daily,
        recall_by_scenario,
    }
}
