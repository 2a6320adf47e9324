//! Entity risk from analyst labels: the share of labelled fraud at an event's merchant and at
//! its device over the last 1, 7 and 30 days, point-in-time correct.
//!
//! Label feedback arrives late (chargebacks come days after the fraud), so an event at time `t`
//! may only see labels given at or before its *horizon* `t - delay`; the windows end there:
//! a label given at `at` counts for the `w` window when `horizon - w < at <= horizon`. Because
//! the rule depends only on the event's own time, one immutable [`LabelRisk`] holding every
//! known label answers training (events in time order, all labels of the period loaded up
//! front) and live scoring (the labels in the store when the snapshot was built) alike, by the
//! same [`LabelRisk::shares`].
//!
//! With few labels a raw share is noise (one label is 0 % or 100 %), so each share is smoothed
//! towards a prior: `(fraud + PRIOR_SHARE * PRIOR_WEIGHT) / (labelled + PRIOR_WEIGHT)`; with
//! nothing labelled it is exactly [`PRIOR_SHARE`].
//!
//! Live, every user actor reads the current index through a [`LabelRiskFeed`]: an `ArcSwap`,
//! so reading takes no lock and allocates nothing, and a refresh swaps in a new index whole.

use crate::hash::opt_hash;
use arc_swap::{ArcSwap, Guard};
use std::collections::HashMap;
use std::sync::Arc;

const DAY_MS: i64 = 86_400_000;
/// The look-backs of the entity-risk features, ending at the event's horizon.
pub const LABEL_WINDOWS_MS: [i64; 3] = [DAY_MS, 7 * DAY_MS, 30 * DAY_MS];
/// The fraud share assumed where nothing is labelled.
pub const PRIOR_SHARE: f64 = 0.05;
/// How many labels the prior weighs, like that many pseudo-labels at [`PRIOR_SHARE`].
pub const PRIOR_WEIGHT: f64 = 2.0;
/// Label delay when none is configured: a day.
pub const DEFAULT_LABEL_DELAY_MS: i64 = DAY_MS;

/// The smoothed share of `fraud` among `labelled` labels (exactly [`PRIOR_SHARE`] with none).
pub fn smoothed_share(fraud: u32, labelled: u32) -> f64 {
    (f64::from(fraud) + PRIOR_SHARE * PRIOR_WEIGHT) / (f64::from(labelled) + PRIOR_WEIGHT)
}

/// Number of entity-risk features: merchant then device, each over the three windows.
pub const N_LABEL_FEATURES: usize = 6;

/// One analyst label as the index needs it: when it was given, on which merchant and device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSighting {
    /// When the label was given (not when the labelled event happened).
    pub at_ms: i64,
    /// Hash of the labelled event's merchant id; zero when it had none.
    pub merchant: u64,
    /// Hash of the labelled event's device id; zero when it had none.
    pub device: u64,
    /// Fraud (true) or legit (false).
    pub fraud: bool,
}

impl LabelSighting {
    /// A label given at `at_ms` on an event with these merchant and device ids.
    pub fn new(
        at_ms: i64,
        merchant_id: Option<&str>,
        device_id: Option<&str>,
        fraud: bool,
    ) -> Self {
        LabelSighting {
            at_ms,
            merchant: opt_hash(merchant_id),
            device: opt_hash(device_id),
            fraud,
        }
    }
}

/// One entity's labels in label-time order, with running fraud counts for O(log n) windows.
#[derive(Debug, Default)]
struct Timeline {
    times: Vec<i64>,
    /// `frauds_before[i]`: fraud labels among `times[..i]` (one longer than `times`).
    frauds_before: Vec<u32>,
}

impl Timeline {
    fn build(mut labels: Vec<(i64, bool)>) -> Timeline {
        labels.sort_unstable_by_key(|(t, _)| *t);
        let mut frauds_before = Vec::with_capacity(labels.len() + 1);
        let mut frauds = 0;
        frauds_before.push(0);
        for (_, fraud) in &labels {
            frauds += u32::from(*fraud);
            frauds_before.push(frauds);
        }
        Timeline {
            times: labels.into_iter().map(|(t, _)| t).collect(),
            frauds_before,
        }
    }

    /// (fraud, labelled) among labels with `from < at <= to`.
    fn counts(&self, from: i64, to: i64) -> (u32, u32) {
        let lo = self.times.partition_point(|&t| t <= from);
        let hi = self.times.partition_point(|&t| t <= to);
        if hi <= lo {
            return (0, 0);
        }
        (
            self.frauds_before[hi] - self.frauds_before[lo],
            (hi - lo) as u32,
        )
    }
}

/// An immutable index of analyst labels per merchant and per device.
#[derive(Debug)]
pub struct LabelRisk {
    delay_ms: i64,
    merchants: HashMap<u64, Timeline>,
    devices: HashMap<u64, Timeline>,
    labels: usize,
}

impl Default for LabelRisk {
    fn default() -> Self {
        LabelRisk::build(DEFAULT_LABEL_DELAY_MS, [])
    }
}

impl LabelRisk {
    /// Indexes `labels`; an event sees only those given at least `delay_ms` before it.
    pub fn build(delay_ms: i64, labels: impl IntoIterator<Item = LabelSighting>) -> LabelRisk {
        let mut merchants: HashMap<u64, Vec<(i64, bool)>> = HashMap::new();
        let mut devices: HashMap<u64, Vec<(i64, bool)>> = HashMap::new();
        let mut count = 0;
        for label in labels {
            count += 1;
            for (key, map) in [
                (label.merchant, &mut merchants),
                (label.device, &mut devices),
            ] {
                if key != 0 {
                    map.entry(key).or_default().push((label.at_ms, label.fraud));
                }
            }
        }
        let index = |m: HashMap<u64, Vec<(i64, bool)>>| {
            m.into_iter()
                .map(|(k, v)| (k, Timeline::build(v)))
                .collect()
        };
        LabelRisk {
            delay_ms: delay_ms.max(0),
            merchants: index(merchants),
            devices: index(devices),
            labels: count,
        }
    }

    /// How long a label waits before events see it.
    pub fn delay_ms(&self) -> i64 {
        self.delay_ms
    }

    /// Labels indexed.
    pub fn labels(&self) -> usize {
        self.labels
    }

    /// Smoothed fraud shares for an event at `event_time_ms` with these merchant and device
    /// hashes: merchant over 1, 7 and 30 days, then device over the same. Allocation-free.
    pub fn shares(
        &self,
        merchant: u64,
        device: u64,
        event_time_ms: i64,
    ) -> [f64; N_LABEL_FEATURES] {
        let horizon = event_time_ms.saturating_sub(self.delay_ms);
        let mut out = [PRIOR_SHARE; N_LABEL_FEATURES];
        for (k, (key, map)) in [(merchant, &self.merchants), (device, &self.devices)]
            .into_iter()
            .enumerate()
        {
            // Zero: the event has no such entity, so there is nothing to look up.
            if key == 0 {
                continue;
            }
            let Some(timeline) = map.get(&key) else {
                continue;
            };
            for (w, span) in LABEL_WINDOWS_MS.iter().enumerate() {
                let (fraud, labelled) = timeline.counts(horizon.saturating_sub(*span), horizon);
                out[k * 3 + w] = smoothed_share(fraud, labelled);
            }
        }
        out
    }
}

/// The live label index shared by every user actor; cheap to clone (one `Arc`).
#[derive(Debug, Clone, Default)]
pub struct LabelRiskFeed(Arc<ArcSwap<LabelRisk>>);

impl LabelRiskFeed {
    /// The current index, without locking or allocating.
    pub fn load(&self) -> Guard<Arc<LabelRisk>> {
        self.0.load()
    }

    /// Replaces the index every reader sees from its next event on.
    pub fn publish(&self, index: Arc<LabelRisk>) {
        self.0.store(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn fraud_at(at_ms: i64) -> LabelSighting {
        LabelSighting::new(at_ms, Some("m1"), Some("d1"), true)
    }

    fn merchant_shares(index: &LabelRisk, t: i64) -> [f64; 3] {
        let s = index.shares(opt_hash(Some("m1")), 0, t);
        [s[0], s[1], s[2]]
    }

    #[test]
    fn a_label_younger_than_the_delay_is_not_counted() {
        let t = 100 * DAY_MS;
        let index = LabelRisk::build(DAY_MS, [fraud_at(t - DAY_MS + 1)]);
        assert_eq!(merchant_shares(&index, t), [PRIOR_SHARE; 3]);
        // Exactly the delay old: visible.
        let index = LabelRisk::build(DAY_MS, [fraud_at(t - DAY_MS)]);
        assert_eq!(merchant_shares(&index, t), [smoothed_share(1, 1); 3]);
    }

    #[test]
    fn windows_end_at_the_horizon_and_reach_back_1_7_and_30_days() {
        let t = 100 * DAY_MS;
        let horizon = t - HOUR;
        let labels = [
            // 1 day window: (horizon - 1d, horizon]
            fraud_at(horizon),
            LabelSighting::new(horizon - DAY_MS + 1, Some("m1"), None, false),
            // Just outside the day, inside the week.
            fraud_at(horizon - DAY_MS),
            LabelSighting::new(horizon - 7 * DAY_MS + 1, Some("m1"), None, false),
            // Outside the week, inside the month.
            fraud_at(horizon - 7 * DAY_MS),
            fraud_at(horizon - 30 * DAY_MS + 1),
            // Outside every window.
            fraud_at(horizon - 30 * DAY_MS),
            fraud_at(horizon - 40 * DAY_MS),
        ];
        let index = LabelRisk::build(HOUR, labels);
        assert_eq!(
            merchant_shares(&index, t),
            [
                smoothed_share(1, 2),
                smoothed_share(2, 4),
                smoothed_share(4, 6)
            ]
        );
        assert_eq!(index.labels(), 8);
    }

    #[test]
    fn merchant_and_device_are_separate_and_unknown_entities_get_the_prior() {
        let t = 50 * DAY_MS;
        let index = LabelRisk::build(
            0,
            [
                LabelSighting::new(t - HOUR, Some("m1"), Some("d1"), true),
                LabelSighting::new(t - HOUR, Some("m2"), Some("d1"), false),
            ],
        );
        let s = index.shares(opt_hash(Some("m1")), opt_hash(Some("d1")), t);
        assert_eq!(s[..3], [smoothed_share(1, 1); 3]);
        assert_eq!(s[3..], [smoothed_share(1, 2); 3]);
        assert_eq!(index.shares(opt_hash(Some("m3")), 0, t), [PRIOR_SHARE; 6]);
    }

    #[test]
    fn the_feed_swaps_the_index_readers_see() {
        let feed = LabelRiskFeed::default();
        assert_eq!(feed.load().labels(), 0);
        feed.publish(Arc::new(LabelRisk::build(0, [fraud_at(0)])));
        assert_eq!(feed.load().labels(), 1);
    }
}
