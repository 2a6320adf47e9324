//! Analyst feedback on simulated traffic, arriving late as it does in a bank: a share of the
//! frauds is charged back days after the event, and a few legitimate transactions are
//! confirmed by the customer after a shorter wait. Training turns these into the entity-risk
//! features; the scoring path sees them only after the label delay.
//!
//! A bank's chargeback file ([`Feedback::chargeback_file`] with [`LateTail::default`]) has
//! no confirmations: most reported frauds arrive within 1 to 30 days, a tail of them 30 to 120
//! days late, and a share is never reported at all.

use super::{Scenario, SimEvent};
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

impl Feedback {
    /// A bank's chargeback file: 90% of frauds reported, 1 to 30 days after the event (see
    /// [`LateTail`] for the late ones), no legit confirmations.
    pub fn chargeback_file() -> Self {
        Feedback {
            chargeback_share: 0.9,
            chargeback_delay: (Duration::days(1), Duration::days(30)),
            confirm_share: 0.0,
            confirm_delay: (Duration::zero(), Duration::zero()),
        }
    }
}

/// Chargebacks reported long after the usual delay: this share of the reported ones arrives
/// uniformly within `delay` instead of [`Feedback::chargeback_delay`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LateTail {
    /// Share of reported chargebacks that arrive late, 0..=1.
    pub share: f64,
    /// Their delay after the event, uniformly between the bounds.
    pub delay: (Duration, Duration),
}

impl Default for LateTail {
    /// 15% of chargebacks 30 to 120 days after the event.
    fn default() -> Self {
        LateTail {
            share: 0.15,
            delay: (Duration::days(30), Duration::days(120)),
        }
    }
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
    /// The event's scenario (`None` for a confirmed legit event).
    pub scenario: Option<Scenario>,
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

/// Labels events one at a time, in the order given (same seed, same events, same labels), so
/// a long history can be labelled while it streams past.
#[derive(Debug, Clone)]
pub struct Labeller {
    feedback: Feedback,
    tail: Option<LateTail>,
    rng: StdRng,
}

impl Labeller {
    /// A labeller giving `feedback`, drawn from `seed`.
    pub fn new(feedback: Feedback, seed: u64) -> Self {
        Labeller {
            feedback,
            tail: None,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A bank's chargeback file: [`Feedback::chargeback_file`] with [`LateTail::default`].
    /// `sentinel simulate --seed S` writes these labels for the seed `S`.
    pub fn chargebacks(seed: u64) -> Self {
        Labeller::new(Feedback::chargeback_file(), seed).with_late_tail(LateTail::default())
    }

    /// Also reports a share of the chargebacks late (see [`LateTail`]).
    pub fn with_late_tail(mut self, tail: LateTail) -> Self {
        self.tail = Some(tail);
        self
    }

    /// The label given on `event`, if any.
    pub fn label(&mut self, event: &SimEvent) -> Option<SimLabel> {
        let fraud = event.label.is_some();
        let (share, mut bounds) = if fraud {
            (
                self.feedback.chargeback_share,
                self.feedback.chargeback_delay,
            )
        } else {
            (self.feedback.confirm_share, self.feedback.confirm_delay)
        };
        // Draw the same numbers for every event, so one event's label never shifts another's.
        let (labelled, delay) = (
            self.rng.random_bool(share.clamp(0.0, 1.0)),
            self.rng.random::<f64>(),
        );
        if let Some(tail) = self.tail {
            let late = self.rng.random_bool(tail.share.clamp(0.0, 1.0));
            if late && fraud {
                bounds = tail.delay;
            }
        }
        let (lo, hi) = bounds;
        let span = (hi - lo).num_milliseconds().max(0) as f64;
        labelled.then(|| SimLabel {
            transaction_id: event.txn.transaction_id.clone(),
            merchant_id: event.txn.merchant_id.clone(),
            device_id: event.txn.device_id.clone(),
            at: event.txn.timestamp + lo + Duration::milliseconds((span * delay) as i64),
            fraud,
            scenario: event.label,
        })
    }
}

/// The labels analysts give on `events` (same `seed`, same labels), in label-time order.
pub fn analyst_labels(events: &[SimEvent], feedback: &Feedback, seed: u64) -> Vec<SimLabel> {
    let mut labeller = Labeller::new(*feedback, seed);
    let mut labels: Vec<SimLabel> = events.iter().filter_map(|e| labeller.label(e)).collect();
    labels.sort_by_key(|l| l.at);
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scenario, SimConfig, Simulator};

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

    #[test]
    fn a_chargeback_file_reports_most_frauds_within_a_month_some_months_late() {
        let mut sim = Simulator::new(SimConfig {
            seed: 5,
            users: 300,
            rate_per_sec: 5.0,
            fraud_ratio: 0.05,
            start: Utc::now(),
            daily_rhythm: false,
            scenarios: Scenario::EVERY.to_vec(),
        });
        let events: Vec<SimEvent> = (0..20_000).map(|_| sim.next_event()).collect();
        let file = || Labeller::chargebacks(9);
        let mut labeller = file();
        let labels: Vec<(SimLabel, &SimEvent)> = events
            .iter()
            .filter_map(|e| labeller.label(e).map(|l| (l, e)))
            .collect();
        let mut again = file();
        assert!(labels.iter().map(|(l, _)| l).eq(events
            .iter()
            .filter_map(|e| again.label(e))
            .collect::<Vec<_>>()
            .iter()));
        let frauds = events.iter().filter(|e| e.label.is_some()).count();
        let reported = labels.len() as f64 / frauds as f64;
        assert!((0.85..0.95).contains(&reported), "{reported}");
        let mut late = 0;
        for (label, event) in &labels {
            assert!(label.fraud, "a chargeback file lists frauds only");
            assert_eq!(label.scenario, event.label);
            let delay = label.at - event.txn.timestamp;
            if delay > Duration::days(30) {
                late += 1;
                assert!(delay <= Duration::days(120), "{delay}");
            } else {
                assert!(delay >= Duration::days(1), "{delay}");
            }
        }
        let late_share = f64::from(late) / labels.len() as f64;
        assert!((0.1..0.2).contains(&late_share), "{late_share}");
    }
}
