//! Entity risk: how busy an event's merchant and device have been, and what share of their
//! transactions turned out to be fraud, over the last 1, 7 and 30 days — point-in-time correct.
//!
//! Fraud becomes known late (chargebacks come days or weeks after the fraud), so an event at
//! time `t` looks only at what was known at its *horizon* `h = t - delay`:
//!
//! - **transactions** at the entity in the window: counted per hour, over the complete hours
//!   that end at or before `h` (`w / 1 h` of them), so nothing after the horizon — and nothing
//!   after the event itself, even with no delay — is ever counted;
//! - **known frauds** among them: transactions in those hours whose fraud label was given at
//!   or before `h`. A chargeback file lists only the frauds, so every other transaction of the
//!   window counts as legitimate; a transaction re-labelled legit counts with its latest label.
//!
//! The share is `frauds / transactions`, zero for an entity with no transactions in the window:
//! it is non-zero exactly when a fraud label old enough for the event exists.
//!
//! One immutable [`EntityRisk`] answers training (events in time order, the whole period's
//! activity and labels indexed up front) and live scoring (the activity tailed from the store
//! and the labels known when the snapshot was built) alike, by the same
//! [`EntityRisk::features`]. Live, every user actor reads the current index through an
//! [`EntityRiskFeed`]: an `ArcSwap`, so reading takes no lock and allocates nothing, and a
//! refresh swaps in a new index whole.

use crate::hash::opt_hash;
use arc_swap::{ArcSwap, Guard};
use sentinel_event::Transaction;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The look-backs of the entity-risk features, ending at the event's horizon.
pub const RISK_WINDOWS_MS: [i64; 3] = [DAY_MS, 7 * DAY_MS, 30 * DAY_MS];
/// Label delay when none is configured: a day.
pub const DEFAULT_LABEL_DELAY_MS: i64 = DAY_MS;
/// Number of entity-risk values: per merchant then per device, the transaction counts over the
/// three windows, then the fraud shares over the same.
pub const N_RISK_VALUES: usize = 12;

/// One label as the index needs it: the labelled transaction's time and entities, and when the
/// label was given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelSighting {
    /// When the labelled transaction happened (event time, ms).
    pub event_ms: i64,
    /// When the label was given (ms): the fraud counts for events whose horizon reaches it.
    pub labelled_ms: i64,
    /// Hash of the labelled event's merchant id; zero when it had none.
    pub merchant: u64,
    /// Hash of the labelled event's device id; zero when it had none.
    pub device: u64,
    /// Fraud (true) or legit (false).
    pub fraud: bool,
}

impl LabelSighting {
    /// A label given at `labelled_ms` on an event at `event_ms` with these merchant and device.
    pub fn new(
        event_ms: i64,
        labelled_ms: i64,
        merchant_id: Option<&str>,
        device_id: Option<&str>,
        fraud: bool,
    ) -> Self {
        LabelSighting {
            event_ms,
            labelled_ms,
            merchant: opt_hash(merchant_id),
            device: opt_hash(device_id),
            fraud,
        }
    }
}

/// Transactions per merchant and per device, counted per hour of event time; the mutable side
/// that training fills from its events and a node tails from the store.
///
/// It serializes to its counts, so a node can save it and read it back at start-up instead of
/// recounting a month of decisions; what it reads is checked (a saved file is untrusted input):
/// entity keys non-zero, each entity's hours strictly ascending with non-zero counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SavedActivity")]
pub struct EntityActivity {
    merchants: HashMap<u64, HourCounts>,
    devices: HashMap<u64, HourCounts>,
    transactions: u64,
    /// The earliest hour counted since [`EntityActivity::take_earliest_new_hour`] last ran.
    #[serde(skip)]
    earliest_new_hour: Option<i64>,
}

/// [`EntityActivity`] as read, before its checks.
#[derive(Deserialize)]
struct SavedActivity {
    merchants: HashMap<u64, HourCounts>,
    devices: HashMap<u64, HourCounts>,
    transactions: u64,
}

/// Why saved counts were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActivityError {
    /// An entity keyed zero, which stands for "no merchant" or "no device".
    #[error("an entity with key zero")]
    ZeroKey,
    /// An entity with no hours, hours out of order or repeated, or an hour counted zero times.
    #[error("entity {0:#x}: hours not strictly ascending with non-zero counts")]
    BadHours(u64),
}

impl TryFrom<SavedActivity> for EntityActivity {
    type Error = ActivityError;

    fn try_from(saved: SavedActivity) -> Result<Self, ActivityError> {
        for map in [&saved.merchants, &saved.devices] {
            for (&key, hours) in map {
                if key == 0 {
                    return Err(ActivityError::ZeroKey);
                }
                let ascending = hours.windows(2).all(|pair| pair[0].0 < pair[1].0);
                if hours.is_empty() || !ascending || hours.iter().any(|&(_, n)| n == 0) {
                    return Err(ActivityError::BadHours(key));
                }
            }
        }
        Ok(EntityActivity {
            merchants: saved.merchants,
            devices: saved.devices,
            transactions: saved.transactions,
            earliest_new_hour: None,
        })
    }
}

/// One entity's (hour, transactions) with hours ascending. Most entities (a card holder's
/// device) have an hour or two, so a sorted vector (16 bytes an hour) beats a B-tree, whose
/// first node alone takes 144 bytes; a node tails millions of them.
type HourCounts = Vec<(i64, u32)>;

/// Counts one transaction in `hour`. Events arrive nearly in time order, so the hour is almost
/// always the last one or a new last one.
fn count_in(hours: &mut HourCounts, hour: i64) {
    match hours.last_mut() {
        Some((last, n)) if *last == hour => *n = n.saturating_add(1),
        Some((last, _)) if *last > hour => match hours.binary_search_by_key(&hour, |&(h, _)| h) {
            Ok(i) => hours[i].1 = hours[i].1.saturating_add(1),
            Err(i) => hours.insert(i, (hour, 1)),
        },
        _ => hours.push((hour, 1)),
    }
}

impl EntityActivity {
    /// Counts one transaction at `event_ms` for its merchant and device hashes (zero: none).
    pub fn record(&mut self, merchant: u64, device: u64, event_ms: i64) {
        let hour = event_ms.div_euclid(HOUR_MS);
        for (key, map) in [(merchant, &mut self.merchants), (device, &mut self.devices)] {
            if key != 0 {
                // Room for one hour: what most entities ever have (a vector's first push
                // would make room for four).
                let hours = map.entry(key).or_insert_with(|| Vec::with_capacity(1));
                count_in(hours, hour);
            }
        }
        self.transactions += 1;
        self.earliest_new_hour = Some(self.earliest_new_hour.map_or(hour, |h| h.min(hour)));
    }

    /// The earliest hour counted since the last call (`None`: nothing counted), so that a
    /// holder of an index built earlier can tell when it misses counts an event would see
    /// ([`hour_visible`]).
    pub fn take_earliest_new_hour(&mut self) -> Option<i64> {
        self.earliest_new_hour.take()
    }

    /// Counts `event` for its merchant and device.
    pub fn record_event(&mut self, event: &Transaction) {
        self.record(
            opt_hash(event.merchant_id.as_deref()),
            opt_hash(event.device_id.as_deref()),
            event.event_time_ms(),
        );
    }

    /// Forgets the hours that end before `event_ms` (no window of a later event reaches them).
    pub fn forget_before(&mut self, event_ms: i64) {
        let first_kept = event_ms.div_euclid(HOUR_MS);
        for map in [&mut self.merchants, &mut self.devices] {
            map.retain(|_, hours| {
                let forgotten = hours.partition_point(|&(h, _)| h < first_kept);
                hours.drain(..forgotten);
                // A merchant quiet after a busy month gives the memory back.
                if hours.capacity() > 4 * hours.len() {
                    hours.shrink_to_fit();
                }
                !hours.is_empty()
            });
        }
    }

    /// Transactions counted so far (forgotten ones included).
    pub fn transactions(&self) -> u64 {
        self.transactions
    }

    /// Merchants and devices currently counted.
    pub fn entities(&self) -> usize {
        self.merchants.len() + self.devices.len()
    }
}

/// Whether the counts of `hour` (an hour index of event time, as
/// [`EntityActivity::take_earliest_new_hour`] gives it) enter the features of an event at
/// `event_ms` that sees labels `delay_ms` late: [`EntityRisk::features`] counts only the
/// complete hours ending at or before the event's horizon.
pub fn hour_visible(hour: i64, event_ms: i64, delay_ms: i64) -> bool {
    hour.saturating_add(1).saturating_mul(HOUR_MS) <= event_ms.saturating_sub(delay_ms.max(0))
}

/// Every merchant's (or every device's) hourly counts and known frauds, for O(log n) windows.
/// The counts of all entities share two arrays and an entity owns a range of them: one
/// 24-byte map entry per entity instead of two or three vectors.
#[derive(Debug, Default)]
struct Timelines {
    /// Each entity's range in `hours` and `running`.
    spans: HashMap<u64, Range<usize>>,
    /// Hours with transactions, ascending within each entity's range.
    hours: Vec<i64>,
    /// `running[i]`: the entity's transactions in its hours up to and including `hours[i]`.
    running: Vec<u32>,
    /// Fraud-labelled transactions as (hour of the transaction, label time), sorted, for the
    /// few entities with any (an entity without transactions reads zero whatever its labels).
    frauds: HashMap<u64, Vec<(i64, i64)>>,
}

impl Timelines {
    fn of(activity: &HashMap<u64, HourCounts>) -> Timelines {
        let total = activity.values().map(Vec::len).sum();
        let mut t = Timelines {
            spans: HashMap::with_capacity(activity.len()),
            hours: Vec::with_capacity(total),
            running: Vec::with_capacity(total),
            frauds: HashMap::new(),
        };
        for (&key, hours) in activity {
            let start = t.hours.len();
            let mut sum = 0u32;
            for &(hour, count) in hours {
                sum = sum.saturating_add(count);
                t.hours.push(hour);
                t.running.push(sum);
            }
            t.spans.insert(key, start..t.hours.len());
        }
        t
    }

    /// Records a fraud on `key`'s transaction in `hour`, labelled at `labelled_ms`.
    fn add_fraud(&mut self, key: u64, hour: i64, labelled_ms: i64) {
        if self.spans.contains_key(&key) {
            self.frauds
                .entry(key)
                .or_default()
                .push((hour, labelled_ms));
        }
    }

    /// `key`'s timeline; `None` for an entity without transactions.
    fn get(&self, key: u64) -> Option<Timeline<'_>> {
        let span = self.spans.get(&key)?;
        Some(Timeline {
            hours: &self.hours[span.clone()],
            running: &self.running[span.clone()],
            // An index without fraud labels (a new deployment) skips hashing the key again.
            frauds: match self.frauds.is_empty() {
                true => &[],
                false => self.frauds.get(&key).map_or(&[], Vec::as_slice),
            },
        })
    }
}

/// One entity's part of [`Timelines`].
struct Timeline<'a> {
    hours: &'a [i64],
    running: &'a [u32],
    frauds: &'a [(i64, i64)],
}

impl Timeline<'_> {
    /// (transactions, frauds known at `horizon_ms`) in the hours `first..=last`.
    fn counts(&self, first: i64, last: i64, horizon_ms: i64) -> (u32, u32) {
        let lo = self.hours.partition_point(|&h| h < first);
        let hi = self.hours.partition_point(|&h| h <= last).max(lo);
        let before = |i: usize| if i == 0 { 0 } else { self.running[i - 1] };
        let txns = before(hi) - before(lo);
        let lo = self.frauds.partition_point(|&(h, _)| h < first);
        let hi = self.frauds.partition_point(|&(h, _)| h <= last);
        let frauds = self.frauds[lo..hi.max(lo)]
            .iter()
            .filter(|&&(_, labelled)| labelled <= horizon_ms)
            .count() as u32;
        (txns, frauds)
    }
}

/// An immutable index of entity activity and fraud labels per merchant and per device.
#[derive(Debug)]
pub struct EntityRisk {
    delay_ms: i64,
    merchants: Timelines,
    devices: Timelines,
    labels: usize,
}

impl Default for EntityRisk {
    fn default() -> Self {
        EntityRisk::build(DEFAULT_LABEL_DELAY_MS, &EntityActivity::default(), [])
    }
}

impl EntityRisk {
    /// Indexes `activity` and `labels`; an event sees only what was known `delay_ms` before it.
    pub fn build(
        delay_ms: i64,
        activity: &EntityActivity,
        labels: impl IntoIterator<Item = LabelSighting>,
    ) -> EntityRisk {
        let mut merchants = Timelines::of(&activity.merchants);
        let mut devices = Timelines::of(&activity.devices);
        let mut count = 0;
        for label in labels {
            count += 1;
            if !label.fraud {
                continue;
            }
            let hour = label.event_ms.div_euclid(HOUR_MS);
            for (key, map) in [
                (label.merchant, &mut merchants),
                (label.device, &mut devices),
            ] {
                if key != 0 {
                    map.add_fraud(key, hour, label.labelled_ms);
                }
            }
        }
        for frauds in merchants
            .frauds
            .values_mut()
            .chain(devices.frauds.values_mut())
        {
            frauds.sort_unstable();
        }
        EntityRisk {
            delay_ms: delay_ms.max(0),
            merchants,
            devices,
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

    /// For an event at `event_ms` with these merchant and device hashes: the merchant's
    /// transaction counts over 1, 7 and 30 days, its known fraud shares over the same, then the
    /// device's counts and shares. Allocation-free.
    pub fn features(&self, merchant: u64, device: u64, event_ms: i64) -> [f64; N_RISK_VALUES] {
        let horizon = event_ms.saturating_sub(self.delay_ms);
        // The last complete hour at the horizon.
        let last = horizon.div_euclid(HOUR_MS) - 1;
        let mut out = [0.0; N_RISK_VALUES];
        for (k, (key, timelines)) in [(merchant, &self.merchants), (device, &self.devices)]
            .into_iter()
            .enumerate()
        {
            // Zero: the event has no such entity, so there is nothing to look up.
            if key == 0 {
                continue;
            }
            let Some(timeline) = timelines.get(key) else {
                continue;
            };
            for (w, span) in RISK_WINDOWS_MS.iter().enumerate() {
                let first = last - span / HOUR_MS + 1;
                let (txns, frauds) = timeline.counts(first, last, horizon);
                out[k * 6 + w] = f64::from(txns);
                out[k * 6 + 3 + w] = if txns == 0 {
                    0.0
                } else {
                    f64::from(frauds.min(txns)) / f64::from(txns)
                };
            }
        }
        out
    }
}

/// The live index shared by every user actor; cheap to clone (one `Arc`).
#[derive(Debug, Clone, Default)]
pub struct EntityRiskFeed(Arc<ArcSwap<EntityRisk>>);

impl EntityRiskFeed {
    /// The current index, without locking or allocating.
    pub fn load(&self) -> Guard<Arc<EntityRisk>> {
        self.0.load()
    }

    /// Replaces the index every reader sees from its next event on.
    pub fn publish(&self, index: Arc<EntityRisk>) {
        self.0.store(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::id_hash;

    const T: i64 = 100 * DAY_MS;

    fn activity(times: &[i64]) -> EntityActivity {
        let mut a = EntityActivity::default();
        for &t in times {
            a.record(id_hash("m1"), id_hash("d1"), t);
        }
        a
    }

    fn fraud(event_ms: i64, labelled_ms: i64) -> LabelSighting {
        LabelSighting::new(event_ms, labelled_ms, Some("m1"), Some("d1"), true)
    }

    fn merchant(index: &EntityRisk, t: i64) -> [f64; 6] {
        let f = index.features(id_hash("m1"), 0, t);
        f[..6].try_into().unwrap()
    }

    #[test]
    fn a_fraud_counts_once_its_label_is_the_delay_old() {
        let tx = T - 3 * DAY_MS;
        let labelled = T - 2 * DAY_MS;
        let index = EntityRisk::build(DAY_MS, &activity(&[tx, tx + 1]), [fraud(tx, labelled)]);
        // Horizon = labelled: visible, one fraud of the two transactions.
        assert_eq!(
            merchant(&index, labelled + DAY_MS),
            [2.0, 2.0, 2.0, 0.5, 0.5, 0.5]
        );
        // A millisecond earlier: the label is too young; the transactions are counted.
        assert_eq!(
            merchant(&index, labelled + DAY_MS - 1),
            [2.0, 2.0, 2.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn an_hour_is_visible_exactly_when_the_features_count_it() {
        for delay in [0, 90_000, DAY_MS] {
            let counted_at = T - 5 * HOUR_MS + 1_234;
            let mut recorded = activity(&[counted_at]);
            let hour = recorded.take_earliest_new_hour().unwrap();
            assert_eq!(recorded.take_earliest_new_hour(), None, "taken once");
            let index = EntityRisk::build(delay, &recorded, []);
            let first_seen = (hour + 1) * HOUR_MS + delay;
            for event_ms in [
                first_seen - HOUR_MS,
                first_seen - 1,
                first_seen,
                first_seen + 1,
            ] {
                assert_eq!(
                    hour_visible(hour, event_ms, delay),
                    merchant(&index, event_ms)[0] > 0.0,
                    "delay {delay}, event {} ms after the hour could first be seen",
                    event_ms - first_seen
                );
            }
        }
    }

    #[test]
    fn the_earliest_new_hour_is_the_earliest_counted_since_the_last_look() {
        let mut a = activity(&[T, T - 3 * HOUR_MS, T - HOUR_MS]);
        assert_eq!(a.take_earliest_new_hour(), Some(T / HOUR_MS - 3));
        a.record(id_hash("m2"), 0, T + 2 * HOUR_MS);
        assert_eq!(a.take_earliest_new_hour(), Some(T / HOUR_MS + 2));
    }

    #[test]
    fn only_complete_hours_before_the_horizon_count() {
        let hour_start = T - 10 * HOUR_MS;
        let index = EntityRisk::build(0, &activity(&[hour_start + 5]), []);
        // The event's own hour is not complete: even with no delay, nothing of it is seen.
        assert_eq!(merchant(&index, hour_start + 10)[..3], [0.0; 3]);
        assert_eq!(merchant(&index, hour_start + HOUR_MS - 1)[..3], [0.0; 3]);
        assert_eq!(merchant(&index, hour_start + HOUR_MS)[..3], [1.0; 3]);
        // The day window ends 24 complete hours later.
        assert_eq!(
            merchant(&index, hour_start + 25 * HOUR_MS)[..3],
            [0.0, 1.0, 1.0]
        );
        assert_eq!(
            merchant(&index, hour_start + 24 * HOUR_MS)[..3],
            [1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn windows_reach_back_1_7_and_30_days() {
        let t = T;
        let tx = |days_before: i64| t - days_before * DAY_MS - HOUR_MS;
        let times = [tx(0), tx(3), tx(10), tx(40)];
        let labels = [
            fraud(tx(0), tx(0)),
            fraud(tx(10), tx(0)),
            fraud(tx(40), tx(0)),
        ];
        let index = EntityRisk::build(0, &activity(&times), labels);
        assert_eq!(merchant(&index, t), [1.0, 2.0, 3.0, 1.0, 0.5, 2.0 / 3.0]);
        assert_eq!(index.labels(), 3);
    }

    #[test]
    fn merchant_and_device_are_separate_and_unknown_entities_read_zero() {
        let tx = T - 2 * HOUR_MS;
        let mut a = activity(&[tx]);
        a.record(id_hash("m2"), id_hash("d1"), tx);
        let index = EntityRisk::build(
            0,
            &a,
            [
                fraud(tx, tx + 1),
                LabelSighting::new(tx, tx + 1, Some("m2"), Some("d1"), false),
            ],
        );
        let f = index.features(id_hash("m1"), id_hash("d1"), T);
        assert_eq!(f[..6], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(f[6..], [2.0, 2.0, 2.0, 0.5, 0.5, 0.5]);
        assert_eq!(index.features(id_hash("m3"), 0, T), [0.0; N_RISK_VALUES]);
    }

    #[test]
    fn an_entity_known_only_from_labels_reads_zero() {
        // Its transactions are not in the activity (forgotten, or not read yet).
        let index = EntityRisk::build(0, &activity(&[]), [fraud(T - DAY_MS, T - HOUR_MS)]);
        assert_eq!(merchant(&index, T), [0.0; 6]);
    }

    #[test]
    fn hours_recorded_out_of_order_count_as_in_order() {
        // 60 transactions over ~32 days, in a scrambled order, some sharing an hour.
        let times: Vec<i64> = (0..60)
            .map(|i| T - ((i * 37) % 60) * 13 * HOUR_MS - (i % 3) * 1_000)
            .collect();
        let mut sorted = times.clone();
        sorted.sort_unstable();
        let labels = [
            fraud(times[5], times[5] + DAY_MS),
            fraud(times[17], times[17] + 2 * HOUR_MS),
        ];
        let shuffled = EntityRisk::build(0, &activity(&times), labels);
        let ordered = EntityRisk::build(0, &activity(&sorted), labels);
        for hours_before in 0..800 {
            let at = T + HOUR_MS - hours_before * HOUR_MS;
            let f = shuffled.features(id_hash("m1"), id_hash("d1"), at);
            assert_eq!(
                f,
                ordered.features(id_hash("m1"), id_hash("d1"), at),
                "at {at}"
            );
        }
        assert_eq!(merchant(&ordered, T + HOUR_MS)[..3], [2.0, 13.0, 56.0]);
    }

    #[test]
    fn forgotten_hours_leave_the_index() {
        let mut a = activity(&[T - 40 * DAY_MS, T - 2 * DAY_MS]);
        a.forget_before(T - 31 * DAY_MS);
        assert_eq!(a.entities(), 2);
        let index = EntityRisk::build(0, &a, []);
        assert_eq!(merchant(&index, T)[..3], [0.0, 1.0, 1.0]);
        a.forget_before(T);
        assert_eq!(a.entities(), 0);
        assert_eq!(a.transactions(), 2);
    }

    #[test]
    fn the_feed_swaps_the_index_readers_see() {
        let feed = EntityRiskFeed::default();
        assert_eq!(feed.load().labels(), 0);
        feed.publish(Arc::new(EntityRisk::build(
            0,
            &activity(&[]),
            [fraud(0, 0)],
        )));
        assert_eq!(feed.load().labels(), 1);
    }

    #[test]
    fn saved_activity_reads_back_equal_and_bad_counts_are_refused() {
        let mut a = activity(&[T, T + 1, T - 5 * HOUR_MS, T + 2 * DAY_MS]);
        a.record(id_hash("m2"), 0, T);
        a.take_earliest_new_hour();
        let json = serde_json::to_string(&a).unwrap();
        let back: EntityActivity = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.transactions(), 5);
        assert_eq!(back.entities(), 3);

        let m = id_hash("m1");
        let refused = |merchants: &str| {
            let json = format!(r#"{{"merchants":{merchants},"devices":{{}},"transactions":1}}"#);
            serde_json::from_str::<EntityActivity>(&json)
                .unwrap_err()
                .to_string()
        };
        assert!(refused(r#"{"0":[[1,1]]}"#).contains("key zero"));
        for hours in ["[]", "[[2,1],[1,1]]", "[[1,1],[1,1]]", "[[1,0]]"] {
            let error = refused(&format!(r#"{{"{m}":{hours}}}"#));
            assert!(error.contains("not strictly ascending"), "{hours}: {error}");
        }
        serde_json::from_str::<EntityActivity>(&format!(
            r#"{{"merchants":{{"{m}":[[1,1],[2,3]]}},"devices":{{}},"transactions":4}}"#
        ))
        .unwrap();
    }
}
