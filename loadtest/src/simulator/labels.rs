//! Analyst feedback on simulated traffic, arriving late as it does in a bank: a share of the
//! frauds is charged back days after the event, and a few legitimate transactions are
//! confirmed by the customer after a shorter wait. Training turns these into the entity-risk
//! features; the scoring path sees them only after the label delay.

use super::SimEvent;
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How feedback arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback {
    /// Share of fraudulent events charged back (labelled fraud).
    pub chargeback_share: f64,
    /// Chargebacks arrive this long after the event, uniformly between the bounds.
    pub chargeback_delay: (Duration, Duration),
    /// Share of legitimate events confirmed (labelled legit).
    pub confirm_share: f64,
    /// Confirmations arrive this long after the event, uniformly between the bounds.
    pub confirm_delay: (Duration, Duration),
}

impl Default for Feedback {
    fn default() -> Self {
        Feedback {
            chargeback_share: 0.7,
            chargeback_delay: (Duration::days(1), Duration::days(7)),
            confirm_share: 0.02,
            confirm_delay: (Duration::hours(12), Duration::days(3)),
        }
    }
}

/// One analyst label on a simulated event.
#[derive(Debug, Clone, PartialEq)]
pub struct SimLabel {
    /// The labelled transaction.
    pub transaction_id: String,
    /// Its merchant.
    pub merchant_id: Option<String>,
    /// Its device.
    pub device_id: Option<String>,
    /// When the label was given.
    pub at: DateTime<Utc>,
    /// Fraud or legit.
    pub fraud: bool,
}

impl SimLabel {
    /// Hands (label time in ms, merchant id, device id, fraud) to `make`, e.g. a label-index
    /// entry's constructor, so callers need not spell the fields out.
    pub fn with_parts<T>(
        &self,
        make: impl FnOnce(i64, Option<&str>, Option<&str>, bool) -> T,
    ) -> T {
        make(
            self.at.timestamp_millis(),
            self.merchant_id.as_deref(),
            self.device_id.as_deref(),
            self.fraud,
        )
    }
}

/// The labels analysts give on `events` (same `seed`, same labels), in label-time order.
pub fn analyst_labels(events: &[SimEvent], feedback: &Feedback, seed: u64) -> Vec<SimLabel> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut labels: Vec<SimLabel> = events
        .iter()
        .filter_map(|e| {
            let fraud = e.label.is_some();
            let (share, (lo, hi)) = if fraud {
                (feedback.chargeback_share, feedback.chargeback_delay)
            } else {
                (feedback.confirm_share, feedback.confirm_delay)
            };
            // Draw both numbers for every event, so one event's label never shifts another's.
            let (labelled, delay) = (rng.random_bool(share.clamp(0.0, 1.0)), rng.random::<f64>());
            let span = (hi - lo).num_milliseconds().max(0) as f64;
            labelled.then(|| SimLabel {
                transaction_id: e.txn.transaction_id.clone(),
                merchant_id: e.txn.merchant_id.clone(),
                device_id: e.txn.device_id.clone(),
                at: e.txn.timestamp + lo + Duration::milliseconds((span * delay) as i64),
                fraud,
            })
        })
        .collect();
    labels.sort_by_key(|l| l.at);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{Scenario, SimConfig, Simulator};

    #[test]
    fn frauds_are_charged_back_late_and_some_legit_events_confirmed() {
        let mut sim = Simulator::new(SimConfig {
            seed: 4,
            users: 300,
            rate_per_sec: 5.0,
            fraud_ratio: 0.05,
            start: Utc::now(),
            daily_rhythm: false,
            scenarios: Scenario::ALL.to_vec(),
        });
        let events: Vec<SimEvent> = (0..20_000).map(|_| sim.next_event()).collect();
        let feedback = Feedback::default();
        let labels = analyst_labels(&events, &feedback, 9);
        assert_eq!(labels, analyst_labels(&events, &feedback, 9));
        let frauds = events.iter().filter(|e| e.label.is_some()).count();
        let charged_back = labels.iter().filter(|l| l.fraud).count();
        assert!(
            charged_back > frauds / 2 && charged_back < frauds,
            "{charged_back}/{frauds}"
        );
        let confirmed = labels.len() - charged_back;
        assert!(confirmed > 100 && confirmed < 1_000, "{confirmed}");
        for label in &labels {
            let event = events
                .iter()
                .find(|e| e.txn.transaction_id == label.transaction_id)
                .unwrap();
            assert_eq!(label.fraud, event.label.is_some());
            let delay = label.at - event.txn.timestamp;
            let (lo, hi) = if label.fraud {
                feedback.chargeback_delay
            } else {
                feedback.confirm_delay
            };
            assert!(delay >= lo && delay <= hi, "{delay}");
        }
        assert!(labels.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
