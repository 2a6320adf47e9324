//! The entity-risk index from the store: merchant and device activity and the fraud labels.
//!
//! Training builds it once for the period it replays ([`Catalog::entity_index`] with the
//! activity it scanned). A node keeps it live ([`Catalog::refresh_entity_risk`]): at start-up
//! it reads the decisions of the last 30 days plus the label delay, then tails the store's
//! decision index from where it stopped, and rebuilds the index periodically and whenever a
//! label is posted to it ([`Catalog::label_posted`]). Activity and labels live in the store,
//! so every node of a cluster sharing it converges.

use crate::catalog::{decode, scan_all, Catalog};
use crate::error::CatalogError;
use crate::records::{Label, LabelValue};
use chrono::{DateTime, Duration, Utc};
use sentinel_engine::opt_hash;
use sentinel_engine::{hour_visible, EntityActivity, EntityRisk, LabelSighting, RISK_WINDOWS_MS};
use sentinel_event::Decision;
use sentinel_store::{CommitObserver, DayCursor, DayEntry, RecordKind, Store};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How far back a tail pass re-reads, for decisions committed after later-stamped ones.
const TAIL_OVERLAP_US: i64 = 120_000_000;

const MICROS_PER_SECOND: i64 = 1_000_000;

/// The second (of decision time, since the epoch) a decision made at `decided_us` falls in.
fn second_of(decided_us: i64) -> i64 {
    decided_us.div_euclid(MICROS_PER_SECOND)
}

/// Decisions remembered during a first pass before those behind the overlap are forgotten.
const FORGET_WHILE_READING: usize = 1 << 21;

/// Merchant, device and event time of a labelled transaction (they never change once decided).
type LabelledEntity = (Option<String>, Option<String>, i64);

/// What the live index is rebuilt from.
#[derive(Default)]
pub(crate) struct Sources {
    /// Labelled transactions' entities, so a refresh looks each decision up once.
    labelled: HashMap<String, LabelledEntity>,
    /// Activity tailed from the store's decisions; `None` until the first pass.
    tail: Option<ActivityTail>,
    /// What the published live index was built from; `None` until the first pass.
    built: Option<BuiltFrom>,
}

/// The inputs of the published live index, to tell whether a pass would change what any
/// event sees: the labels and delay it was built with, and the earliest hour of activity
/// counted since, which it lacks.
struct BuiltFrom {
    delay_ms: i64,
    labels: Vec<LabelSighting>,
    missing_from_hour: Option<i64>,
}

/// The store's decisions read so far, as entity activity.
struct ActivityTail {
    activity: EntityActivity,
    /// The position (decision time, transaction id) of the latest decision read, or where the
    /// first pass started when it read nothing; `None` before the first pass.
    last_read: Option<DayCursor>,
    /// Decisions read within the overlap, not to be counted twice: keyed by a keyed hash of the
    /// transaction id (SipHash, this process's random key, so clients cannot craft colliding
    /// ids), not the id itself — at 10,000 decisions/s the overlap holds 1.3 million of them.
    recent: HashMap<u64, i64>,
    /// How many of `recent` were made in each second: a second of the overlap with as many
    /// keys in the day index holds nothing uncounted, and a pass looks keys up only from the
    /// first second that differs.
    recent_per_second: BTreeMap<i64, u32>,
    /// The key of those hashes.
    ids: RandomState,
    /// Decisions counted since the last successful pass, by how they arrived.
    counted: DecisionsCounted,
    /// The event time (ms) before which `activity` forgot its hours at the last pass; `None`
    /// before the first.
    kept_from_ms: Option<i64>,
    /// Read back from a saved index, no pass since (see `read_decisions`).
    read_back: bool,
}

/// Decisions counted into the activity, by how they arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionsCounted {
    /// Told by this process's commit observer (its writer's, or on a store host its members').
    pub observed: u64,
    /// Read back from the store (other nodes' decisions, those made before a start, and any the
    /// observer had to drop or that were committed while a pass scanned).
    pub read: u64,
}

/// Figures of one refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityIndexSize {
    /// Labels indexed.
    pub labels: usize,
    /// Merchants and devices with activity in the index.
    pub entities: usize,
    /// Whether this pass built and published a new index (or the published one still gives
    /// every event what a new one would).
    pub rebuilt: bool,
    /// Decisions counted into the activity since the last successful pass, this one included
    /// (each decision is counted once, whichever way it arrives first).
    pub counted: DecisionsCounted,
}

/// Oldest event time any window of an event at `now` can reach.
fn oldest_needed(now: DateTime<Utc>, delay_ms: i64) -> DateTime<Utc> {
    now - Duration::milliseconds(delay_ms + RISK_WINDOWS_MS[2]) - Duration::hours(1)
}

/// Most decisions committed here that wait for the next pass; beyond, the pass reads the new
/// decisions from the store instead (bounded memory when passes stop or fall behind).
const MAX_COMMITTED_PENDING: usize = 1 << 20;

/// Most new decisions of a pass that neither this node committed nor it has read, fetched one
/// by one; with more (another node's traffic) the pass reads pages from the first of them.
const FETCH_ONE_BY_ONE: usize = 256;

/// What the activity counts of a decision committed in this process.
struct Committed {
    /// Keyed hash of the transaction id (see `ActivityTail::recent`).
    id: u64,
    decided_us: i64,
    merchant: u64,
    device: u64,
    event_ms: i64,
}

/// The decisions committed in this process since the last pass ([`CommitObserver`]: its
/// writer's, and on a store host the ones members stored through it):
/// the live index counts them from here instead of reading them back from the store.
#[derive(Default)]
pub(crate) struct CommittedHere {
    /// The key of the transaction id hashes, shared with the tail.
    ids: RandomState,
    pending: std::sync::Mutex<Vec<Committed>>,
    /// Some were dropped (the pending list was full): the next pass reads the store.
    overflowed: AtomicBool,
}

impl CommitObserver for CommittedHere {
    fn committed(&self, decisions: &[Arc<Decision>]) {
        let batch: Vec<Committed> = decisions
            .iter()
            .map(|d| Committed {
                id: self.ids.hash_one(&d.transaction_id),
                decided_us: d.decided_at.timestamp_micros(),
                merchant: opt_hash(d.event.merchant_id.as_deref()),
                device: opt_hash(d.event.device_id.as_deref()),
                event_ms: d.event.event_time_ms(),
            })
            .collect();
        let Ok(mut pending) = self.pending.lock() else {
            self.overflowed.store(true, Ordering::Relaxed);
            return;
        };
        if pending.len() + batch.len() > MAX_COMMITTED_PENDING {
            self.overflowed.store(true, Ordering::Relaxed);
            return;
        }
        pending.extend(batch);
    }
}

impl CommittedHere {
    /// What was committed since the last call.
    fn take(&self) -> Vec<Committed> {
        self.pending
            .lock()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default()
    }

    /// Whether some were dropped since the last call (a pass then reads them from the store).
    fn take_overflowed(&self) -> bool {
        self.overflowed.swap(false, Ordering::Relaxed)
    }
}

/// Reads into `tail` every decision it has not counted: at the first pass those made from
/// `from_us` (decision time) to now; afterwards those after the last one read that were not
/// committed here (`overflowed`: some committed here were not passed on), and any committed
/// late within [`TAIL_OVERLAP_US`] before it. Both are found through the day index first, so
/// that decisions already counted cost a key, not a read and a decode; and keys are looked up
/// in the decisions counted only from the first second whose number of keys differs from
/// theirs. The first pass after a saved index was read back reads the entries from the
/// overlap's start instead, in one walk.
async fn read_decisions(
    store: &dyn Store,
    tail: &mut ActivityTail,
    from_us: i64,
    now: DateTime<Utc>,
    overflowed: bool,
) -> Result<(), CatalogError> {
    let Some(last) = tail.last_read.clone() else {
        let start = DayCursor {
            decided_us: from_us,
            transaction_id: String::new(),
        };
        count_entries_after(store, tail, start.clone(), now).await?;
        tail.recent.shrink_to_fit();
        // Nothing read yet: the next pass goes on from here, not from the start of time.
        tail.last_read.get_or_insert(start);
        return Ok(());
    };
    let overlap_from = second_of(last.decided_us - TAIL_OVERLAP_US);
    let second_start = |second: i64| DayCursor {
        decided_us: second * MICROS_PER_SECOND,
        transaction_id: String::new(),
    };
    if std::mem::take(&mut tail.read_back) {
        // The first pass after a saved index was read back: what was stored since its save may
        // be weeks of decisions. One walk of the entries from the overlap on counts each not
        // counted yet (those of the overlap are known by id); looking keys up first would walk
        // those weeks' keys twice more.
        count_entries_after(store, tail, second_start(overlap_from), now).await?;
        return Ok(());
    }
    let look_up_from = if overflowed {
        // Some committed here were not passed on: every key is looked up, and pages are read
        // from `last` below.
        overlap_from
    } else {
        // First the day index's keys counted per second against the decisions counted: every
        // decision counted is stored, so a second with as many keys as counted decisions
        // holds none uncounted. Only from the first second that differs (at rest, the last
        // second or two: decisions committed while this pass runs; in a cluster, where other
        // nodes' new decisions start) are keys looked up one by one, instead of all 130 s of
        // them (1.3 million at 10,000 decisions/s). On a store whose reads may lag its writes
        // (ScyllaDB below quorum), a decision counted here but not yet readable can hide
        // another node's in the same second until it is: counted a pass or more later.
        let mut seconds = SecondCounts::new(&tail.recent_per_second);
        let newest = crate::decision_days::for_each_decision_key(
            store,
            second_start(overlap_from),
            now,
            |key| seconds.see(key.decided_us),
        )
        .await?;
        let Some(first) = seconds.first_differing() else {
            if let Some(newest) = newest {
                tail.advance(newest.decided_us, &newest.transaction_id);
            }
            tail.forget_behind(now);
            return Ok(());
        };
        first
    };
    let mut late = Vec::new();
    // New decisions not counted yet (other nodes' or committed during this pass), kept one past
    // the limit of those fetched one by one: more are read by pages.
    let mut fresh = Vec::new();
    // Where the first of them is: decisions committed here while this pass scans are not
    // passed on yet, so with many the pass reads pages from there, not from `last`.
    let mut first_fresh = None;
    let (recent, ids) = (&tail.recent, &tail.ids);
    let from = second_start(look_up_from);
    let newest = crate::decision_days::for_each_decision_key(store, from, now, |key| {
        let before_last = (key.decided_us, key.transaction_id.as_str())
            <= (last.decided_us, last.transaction_id.as_str());
        if !recent.contains_key(&ids.hash_one(&key.transaction_id)) {
            if before_last {
                late.push(key.transaction_id.clone());
            } else {
                first_fresh.get_or_insert_with(|| DayCursor {
                    decided_us: key.decided_us,
                    transaction_id: String::new(),
                });
                if fresh.len() <= FETCH_ONE_BY_ONE {
                    fresh.push(key.transaction_id.clone());
                }
            }
        }
    })
    .await?;
    let page_from = match first_fresh {
        _ if overflowed => Some(last.clone()),
        Some(first) if fresh.len() > FETCH_ONE_BY_ONE => Some(first),
        _ => None,
    };
    if let Some(from) = page_from {
        // After a long stop (a saved index read back), that may be weeks of decisions.
        count_entries_after(store, tail, from, now).await?;
        fresh.clear();
    }
    late.extend(fresh);
    for_each_decision_of(store, late, |d| tail.record(&d)).await?;
    if let Some(newest) = newest {
        tail.advance(newest.decided_us, &newest.transaction_id);
    }
    tail.forget_behind(now);
    Ok(())
}

/// Counts into `tail` the day index's entries after `from` up to `now`, in decision-time
/// order, forgetting as it goes the ids behind the overlap ([`ActivityTail::forget_behind`]):
/// they are never looked up again, and weeks of a busy store's decisions would not fit in
/// memory.
async fn count_entries_after(
    store: &dyn Store,
    tail: &mut ActivityTail,
    from: DayCursor,
    now: DateTime<Utc>,
) -> Result<(), CatalogError> {
    // The next forget waits until the set holds twice what this one kept: walking it costs at
    // most twice the inserts.
    let mut forget_at = FORGET_WHILE_READING;
    crate::decision_days::for_each_day_entry_after(store, from, now, |e| {
        tail.record_entry(e);
        if tail.recent.len() >= forget_at {
            tail.forget_behind(now);
            forget_at = forget_at.max(2 * tail.recent.len());
        }
    })
    .await?;
    tail.forget_behind(now);
    Ok(())
}

/// The day index's keys per second of decision time, against the decisions counted in each.
struct SecondCounts<'a> {
    counted: &'a BTreeMap<i64, u32>,
    /// The second being counted, and its keys so far.
    second: i64,
    keys: u32,
    first_differing: Option<i64>,
}

impl<'a> SecondCounts<'a> {
    fn new(counted: &'a BTreeMap<i64, u32>) -> Self {
        SecondCounts {
            counted,
            second: i64::MIN,
            keys: 0,
            first_differing: None,
        }
    }

    /// Counts a key of the day index (they come in decision-time order).
    fn see(&mut self, decided_us: i64) {
        let second = second_of(decided_us);
        if second != self.second {
            self.close();
            self.second = second;
        }
        self.keys += 1;
    }

    fn close(&mut self) {
        let differs =
            self.keys > 0 && self.counted.get(&self.second).copied().unwrap_or(0) != self.keys;
        if differs && self.first_differing.is_none() {
            self.first_differing = Some(self.second);
        }
        self.keys = 0;
    }

    /// The first second whose keys differ in number from the decisions counted in it.
    fn first_differing(mut self) -> Option<i64> {
        self.close();
        self.first_differing
    }
}

impl ActivityTail {
    /// The first second the next pass re-reads (the overlap before the last position read);
    /// `None` before anything was read.
    fn overlap_start(&self) -> Option<i64> {
        let last = self.last_read.as_ref()?;
        Some(second_of(last.decided_us - TAIL_OVERLAP_US))
    }

    /// Forgets the decisions counted before the overlap of the next pass, which it will not
    /// re-read; except those made from an overlap before `now`: committed here while a pass
    /// read (a long one: weeks of decisions after a read-back), they reach the next pass
    /// through the observer too, which must find them.
    fn forget_behind(&mut self, now: DateTime<Utc>) {
        if let Some(overlap) = self.overlap_start() {
            self.forget_before(overlap.min(second_of(now.timestamp_micros() - TAIL_OVERLAP_US)));
        }
    }

    /// Forgets the decisions counted in seconds before `keep_from` (whole seconds, as passes
    /// compare them).
    fn forget_before(&mut self, keep_from: i64) {
        self.recent
            .retain(|_, decided| second_of(*decided) >= keep_from);
        self.recent_per_second = self.recent_per_second.split_off(&keep_from);
    }

    /// Notes a decision counted, made at `decided_us`.
    fn remember(&mut self, id: u64, decided_us: i64) {
        self.recent.insert(id, decided_us);
        *self
            .recent_per_second
            .entry(second_of(decided_us))
            .or_default() += 1;
    }

    /// Counts one decision's event, once.
    fn record(&mut self, d: &Decision) {
        self.count_read(
            d.decided_at.timestamp_micros(),
            &d.transaction_id,
            d.event.merchant_id.as_deref(),
            d.event.device_id.as_deref(),
            d.event.event_time_ms(),
        );
    }

    /// Counts one decision's entry of the day index, once.
    fn record_entry(&mut self, e: &DayEntry) {
        self.count_read(
            e.position.decided_us,
            &e.position.transaction_id,
            e.merchant_id.as_deref(),
            e.device_id.as_deref(),
            e.event_ms,
        );
    }

    /// Counts a decision read from the store, once.
    fn count_read(
        &mut self,
        decided_us: i64,
        transaction_id: &str,
        merchant: Option<&str>,
        device: Option<&str>,
        event_ms: i64,
    ) {
        let id = self.ids.hash_one(transaction_id);
        if self.recent.contains_key(&id) {
            return;
        }
        self.activity
            .record(opt_hash(merchant), opt_hash(device), event_ms);
        self.remember(id, decided_us);
        self.counted.read += 1;
        self.advance(decided_us, transaction_id);
    }

    /// Counts the decisions committed here since the last call, each once.
    fn record_committed_here(&mut self, here: &CommittedHere) {
        for c in &here.take() {
            self.record_committed(c);
        }
    }

    /// Counts a decision committed here, once.
    fn record_committed(&mut self, c: &Committed) {
        if self.recent.contains_key(&c.id) {
            return;
        }
        self.activity.record(c.merchant, c.device, c.event_ms);
        self.remember(c.id, c.decided_us);
        self.counted.observed += 1;
    }

    /// Moves the last position read forward to (`decided_us`, `transaction_id`) if it is
    /// later.
    fn advance(&mut self, decided_us: i64, transaction_id: &str) {
        match &mut self.last_read {
            Some(last)
                if (decided_us, transaction_id) <= (last.decided_us, &last.transaction_id) => {}
            Some(last) => {
                // In place: a first pass moves it forward at every decision it reads.
                last.decided_us = decided_us;
                last.transaction_id.clear();
                last.transaction_id.push_str(transaction_id);
            }
            None => {
                self.last_read = Some(DayCursor {
                    decided_us,
                    transaction_id: transaction_id.to_owned(),
                })
            }
        }
    }
}

/// Transaction ids read from the store in one call: a page of decisions in memory at once.
const IDS_PER_READ: usize = 1_024;

/// Calls `f` with the stored decision of each of `transaction_ids` that has one, reading them
/// [`IDS_PER_READ`] at a time (one blocking call, or one request to a cluster's store host,
/// where a read each cost a call each).
async fn for_each_decision_of(
    store: &dyn Store,
    transaction_ids: Vec<String>,
    mut f: impl FnMut(Decision),
) -> Result<(), CatalogError> {
    for chunk in transaction_ids.chunks(IDS_PER_READ) {
        for decision in store.decisions(chunk.to_vec()).await?.into_iter().flatten() {
            f(decision);
        }
    }
    Ok(())
}

impl Catalog {
    /// A tail of `activity` that has read nothing yet, hashing ids as this process's commit
    /// observer does.
    fn new_tail(&self, activity: EntityActivity) -> ActivityTail {
        ActivityTail {
            activity,
            last_read: None,
            recent: HashMap::new(),
            recent_per_second: BTreeMap::new(),
            ids: self.committed_here.ids.clone(),
            counted: DecisionsCounted::default(),
            kept_from_ms: None,
            read_back: false,
        }
    }

    /// Every stored label as the index needs it, looking up (once per labelled transaction)
    /// the merchant, device and time of the decision it labels.
    async fn label_sightings(
        &self,
        known: &mut HashMap<String, LabelledEntity>,
    ) -> Result<Vec<LabelSighting>, CatalogError> {
        let store = self.store();
        let labels = scan_all(&**store, RecordKind::Label)
            .await?
            .into_iter()
            .map(|(transaction_id, bytes)| Ok((transaction_id, decode::<Label>(&bytes)?)))
            .collect::<Result<Vec<_>, CatalogError>>()?;
        let unknown = labels
            .iter()
            .filter(|(transaction_id, _)| !known.contains_key(transaction_id))
            .map(|(transaction_id, _)| transaction_id.clone())
            .collect();
        let mut looked_up = HashMap::new();
        for_each_decision_of(&**store, unknown, |d| {
            let entity = (
                d.event.merchant_id.clone(),
                d.event.device_id.clone(),
                d.event.event_time_ms(),
            );
            looked_up.insert(d.transaction_id, entity);
        })
        .await?;
        let mut seen = HashMap::with_capacity(known.len());
        let mut sightings = Vec::new();
        for (transaction_id, label) in labels {
            let entity = match known.remove(&transaction_id) {
                Some(entity) => entity,
                None => match looked_up.remove(&transaction_id) {
                    Some(entity) => entity,
                    // A label without its decision names no entity.
                    None => continue,
                },
            };
            sightings.push(LabelSighting::new(
                entity.2,
                label.labelled_at.timestamp_millis(),
                entity.0.as_deref(),
                entity.1.as_deref(),
                label.label == LabelValue::Fraud,
            ));
            seen.insert(transaction_id, entity);
        }
        // Only transactions still labelled stay remembered.
        *known = seen;
        Ok(sightings)
    }

    /// The index of `activity` (scanned by the caller for its period) and every stored label,
    /// for events that see labels `delay_ms` after they are given.
    pub async fn entity_index(
        &self,
        delay_ms: i64,
        activity: &EntityActivity,
    ) -> Result<EntityRisk, CatalogError> {
        let mut sources = self.entity_sources.lock().await;
        let labels = self.label_sightings(&mut sources.labelled).await?;
        Ok(EntityRisk::build(delay_ms, activity, labels))
    }

    /// Reads the decisions stored since the last call (at the first, those of the last 30 days
    /// plus the delay) and every stored label; when that changes what an event may see, builds
    /// the live index anew and hands it to every user actor.
    ///
    /// An event sees the activity of complete hours up to `delay_ms` before it, so the index
    /// is rebuilt only when the labels or the delay changed, or when activity it lacks could
    /// enter the features of an event stamped up to `lead_ms` after `now` (pass the events'
    /// allowed future skew plus the time to the next call). Between, the published index
    /// already gives every event what a new one would: with the default day of delay, live
    /// traffic's activity needs a rebuild about once a day, not every pass.
    pub async fn refresh_entity_risk(
        &self,
        delay_ms: i64,
        now: DateTime<Utc>,
        lead_ms: i64,
    ) -> Result<EntityIndexSize, CatalogError> {
        let mut guard = self.entity_sources.lock().await;
        let sources = &mut *guard;
        let oldest = oldest_needed(now, delay_ms);
        let mut tail = sources
            .tail
            .take()
            .unwrap_or_else(|| self.new_tail(EntityActivity::default()));
        tail.record_committed_here(&self.committed_here);
        let overflowed = self.committed_here.take_overflowed();
        // Decisions are made after their event, so none older than this matters.
        let from_us = oldest.timestamp_micros();
        let read = read_decisions(&**self.store(), &mut tail, from_us, now, overflowed).await;
        tail.activity.forget_before(oldest.timestamp_millis());
        tail.kept_from_ms = Some(oldest.timestamp_millis());
        let new_from_hour = tail.activity.take_earliest_new_hour();
        // Keep what was read even when a page failed: the next pass goes on from there.
        let tail = sources.tail.insert(tail);
        if let Some(built) = &mut sources.built {
            built.missing_from_hour = built
                .missing_from_hour
                .into_iter()
                .chain(new_from_hour)
                .min();
        }
        read?;
        let labels = self.label_sightings(&mut sources.labelled).await?;
        // Reported only by a pass that succeeds: a failed pass's counts come with the next one.
        let counted = std::mem::take(&mut tail.counted);
        let activity = &tail.activity;
        let latest_event_ms = now.timestamp_millis().saturating_add(lead_ms.max(0));
        let current = sources.built.as_ref().is_some_and(|built| {
            built.delay_ms == delay_ms
                && built.labels == labels
                && !built
                    .missing_from_hour
                    .is_some_and(|hour| hour_visible(hour, latest_event_ms, delay_ms))
        });
        let size = EntityIndexSize {
            labels: labels.len(),
            entities: activity.entities(),
            rebuilt: !current,
            counted,
        };
        if !current {
            let index = EntityRisk::build(delay_ms, activity, labels.iter().copied());
            self.entity_risk.publish(Arc::new(index));
            sources.built = Some(BuiltFrom {
                delay_ms,
                labels,
                missing_from_hour: None,
            });
        }
        Ok(size)
    }

    /// Tells the live index of the decisions committed in this process (by its writer, see
    /// [`Writer::start_with`], or by its store host for members), so that it counts them
    /// without reading them back from the store.
    ///
    /// [`Writer::start_with`]: sentinel_store::Writer::start_with
    pub fn commit_observer(&self) -> Arc<dyn CommitObserver> {
        Arc::clone(&self.committed_here) as Arc<dyn CommitObserver>
    }

    /// Resolves once a label has been posted here since the last call (at once if one was).
    pub async fn label_posted(&self) {
        self.label_posted.notified().await;
    }
}

mod saved;
#[cfg(test)]
mod tests;

pub use saved::{Refusal, RestoreOutcome, SavedIndex, SavedIndexError};
