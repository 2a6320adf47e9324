//! What the node decided about one transaction, and why.

use crate::transaction::Transaction;
use chrono::{DateTime, Utc};
use sentinel_rules::{Action, OwnedValue};
use serde::{Deserialize, Serialize};

/// The three possible answers to the payment gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    /// Let it through.
    Approve,
    /// Let a human look at it.
    Review,
    /// Refuse it.
    Decline,
}

impl Outcome {
    /// Every outcome, for metrics that must exist before the first decision.
    pub const ALL: [Outcome; 3] = [Outcome::Approve, Outcome::Review, Outcome::Decline];

    /// The lower-case name used in JSON, metrics labels and topic routing.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approve => "approve",
            Outcome::Review => "review",
            Outcome::Decline => "decline",
        }
    }
}

/// One rule that fired, with the values it looked at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reason {
    /// The rule's name.
    pub rule: String,
    /// What the rule asks for.
    pub action: Action,
    /// Each value the rule looked at, labelled by its source text (`amount`, `count(user, 5m)`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<serde_json::Value>>))]
    pub values: Vec<(String, OwnedValue)>,
}

/// Score thresholds that turn a 0..1 risk score into an [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thresholds {
    /// At or above this score the outcome is at least `review`.
    pub review: f64,
    /// At or above this score the outcome is `decline`.
    pub decline: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            review: 0.5,
            decline: 0.8,
        }
    }
}

impl Thresholds {
    /// Combines the actions of the fired rules into a score and an outcome.
    ///
    /// The score is the sum of `add_score` contributions, raised to the review threshold by a
    /// `review` rule and to the decline threshold by a `decline` rule, capped at 1. `flag`
    /// records a reason without moving the score. The outcome always follows from the score.
    pub fn decide<'a>(&self, actions: impl IntoIterator<Item = &'a Action>) -> (Outcome, f64) {
        let mut sum = 0.0f64;
        let mut floor = 0.0f64;
        for action in actions {
            match action {
                Action::Flag => {}
                Action::Review => floor = floor.max(self.review),
                Action::Decline => floor = floor.max(self.decline),
                Action::AddScore(n) => sum += n,
            }
        }
        let score = sum.max(floor).clamp(0.0, 1.0);
        (self.outcome(score), score)
    }

    /// The outcome for a score.
    pub fn outcome(&self, score: f64) -> Outcome {
        if score >= self.decline {
            Outcome::Decline
        } else if score >= self.review {
            Outcome::Review
        } else {
            Outcome::Approve
        }
    }
}

/// A stored, immutable decision together with the event it judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    /// The judged transaction's id (the decision's identity).
    pub transaction_id: String,
    /// The account holder.
    pub user_id: String,
    /// Approve, review or decline.
    pub outcome: Outcome,
    /// Risk score in 0..=1.
    pub score: f64,
    /// Active rules that fired, highest priority first.
    pub reasons: Vec<Reason>,
    /// Shadow rules that fired: recorded, never affecting the outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow_hits: Vec<Reason>,
    /// Version of the rule set that decided.
    pub rule_set_version: u64,
    /// Position of this event in its user's processing order; restores replay decisions after a
    /// snapshot's sequence number.
    pub user_seq: u64,
    /// The event arrived later than the allowed lateness and was decided without entering the
    /// user's windows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    /// Wall-clock time of the decision.
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub decided_at: DateTime<Utc>,
    /// Microseconds from the node receiving the event to the decision being made.
    pub latency_us: u64,
    /// The transaction that was judged.
    #[cfg_attr(feature = "openapi", schema(value_type = Transaction))]
    pub event: std::sync::Arc<Transaction>,
    /// What the machine-learned models said, when a model was active. Absent on decisions
    /// made without one (and on every decision stored before models existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml: Option<MlScore>,
}

/// The machine-learned score of one decision. The model moves the outcome only through rules
/// that name `ml.score` or `ml.anomaly`; the decision's `score` is the rules' score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MlScore {
    /// The active (champion) model's calibrated fraud probability, 0..1.
    pub score: f64,
    /// Its isolation-forest anomaly score, 0..1.
    pub anomaly: f64,
    /// The model that scored (its artifact id).
    pub model_version: String,
    /// The features that pushed the score up most, largest first.
    pub top_features: Vec<String>,
    /// The challenger model's score, when one runs in shadow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenger_score: Option<f64>,
    /// The challenger model's id, when one runs in shadow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenger_version: Option<String>,
}

/// A [`Decision`] without the event it judged, which it names by `transaction_id`: what is
/// published where consumers already hold the event (the approved topic by default). Its JSON
/// is the decision's JSON without the `event` field.
#[derive(Debug, Serialize)]
pub struct DecisionSummary<'a> {
    /// See [`Decision::transaction_id`].
    pub transaction_id: &'a str,
    /// See [`Decision::user_id`].
    pub user_id: &'a str,
    /// See [`Decision::outcome`].
    pub outcome: Outcome,
    /// See [`Decision::score`].
    pub score: f64,
    /// See [`Decision::reasons`].
    pub reasons: &'a [Reason],
    /// See [`Decision::shadow_hits`].
    #[serde(skip_serializing_if = "<[Reason]>::is_empty")]
    pub shadow_hits: &'a [Reason],
    /// See [`Decision::rule_set_version`].
    pub rule_set_version: u64,
    /// See [`Decision::user_seq`].
    pub user_seq: u64,
    /// See [`Decision::late`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    /// See [`Decision::decided_at`].
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub decided_at: &'a DateTime<Utc>,
    /// See [`Decision::latency_us`].
    pub latency_us: u64,
    /// See [`Decision::ml`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ml: Option<&'a MlScore>,
}

impl Decision {
    /// This decision without its event.
    pub fn summary(&self) -> DecisionSummary<'_> {
        DecisionSummary {
            transaction_id: &self.transaction_id,
            user_id: &self.user_id,
            outcome: self.outcome,
            score: self.score,
            reasons: &self.reasons,
            shadow_hits: &self.shadow_hits,
            rule_set_version: self.rule_set_version,
            user_seq: self.user_seq,
            late: self.late,
            decided_at: &self.decided_at,
            latency_us: self.latency_us,
            ml: self.ml.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decision with every field set away from its default.
    fn everything_set() -> Decision {
        let reason = |rule: &str| Reason {
            rule: rule.into(),
            action: Action::Review,
            values: vec![("amount".into(), OwnedValue::Number(950.0))],
        };
        let event: Transaction = serde_json::from_value(serde_json::json!({
            "transaction_id": "t-1", "user_id": "u-1", "amount": "950.00", "currency": "EUR",
            "timestamp": "2026-12-04T10:00:00Z", "merchant_id": "m-1",
        }))
        .unwrap();
        Decision {
            transaction_id: "t-1".into(),
            user_id: "u-1".into(),
            outcome: Outcome::Review,
            score: 0.61,
            reasons: vec![reason("large_amount")],
            shadow_hits: vec![reason("shadow_rule")],
            rule_set_version: 7,
            user_seq: 12,
            late: true,
            decided_at: "2026-12-04T10:00:01Z".parse().unwrap(),
            latency_us: 140,
            event: std::sync::Arc::new(event),
            ml: Some(MlScore {
                score: 0.4,
                anomaly: 0.2,
                model_version: "model-1".into(),
                top_features: vec!["amount_z".into()],
                challenger_score: Some(0.3),
                challenger_version: Some("model-2".into()),
            }),
        }
    }

    /// The summary is the decision's JSON without `event`, field for field, with every field
    /// set and with the optional ones at their defaults: a field added to `Decision` and not
    /// to the summary fails this.
    #[test]
    fn a_summary_is_the_decision_without_its_event() {
        let full = everything_set();
        let mut bare = everything_set();
        bare.shadow_hits.clear();
        bare.late = false;
        bare.ml = None;
        for decision in [full, bare] {
            let mut expected = serde_json::to_value(&decision).unwrap();
            expected.as_object_mut().unwrap().remove("event").unwrap();
            assert_eq!(serde_json::to_value(decision.summary()).unwrap(), expected);
        }
    }
}
