//! Labelled model features from stored history: each user's decisions are replayed in
//! processing order through the same per-user state and feature code as live scoring, and
//! events in the range become samples labelled by the stored labels. The merchant and device
//! figures come from every stored decision around the range and every stored label, each event
//! seeing only what was known `label_delay_ms` before it.
//!
//! Decisions are found by their decision day, scanned from before the range up to now: history
//! imported today has old event times but today's decision time.
//!
//! Labelled events held in memory (a CSV file in the [`csv`] schema, or simulated traffic) go
//! through the same replay in [`replayed_samples`]; [`evaluation_report`] measures a model on
//! the samples.

pub mod csv;
mod evaluation;

pub use evaluation::{evaluation_report, EvaluationReport};

use crate::backtest::{user_history, Progress};
use crate::catalog::{decode, scan_all, Catalog};
use crate::error::CatalogError;
use crate::records::{Label, LabelValue};
use chrono::{DateTime, Duration, Utc};
use sentinel_engine::{EntityActivity, EntityRisk, FeatureReplay, LabelSighting, RISK_WINDOWS_MS};
use sentinel_event::Transaction;
use sentinel_model::Sample;
use sentinel_store::{RecordKind, Store};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What an event without a label counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unlabelled {
    /// Legitimate: no one reported it (the usual reading of a chargeback file).
    #[default]
    Legit,
    /// Left out of the samples.
    Skip,
}

/// One stored event as training and evaluation read it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledSample {
    /// The transaction.
    pub transaction_id: String,
    /// Features, time and label.
    pub sample: Sample,
    /// The card (its `card_id`, or the user id when the event names no card).
    pub card: String,
    /// The fraud pattern the label names, if any.
    pub scenario: Option<String>,
    /// When its fraud label was given (ms); `None` when not labelled fraud.
    pub known_ms: Option<i64>,
}

impl LabelledSample {
    /// The sample as training sees it when only the fraud labels given before `by_ms` are
    /// known (every label when `None`): a fraud reported later counts as legit.
    pub fn known_by(&self, by_ms: Option<i64>) -> Sample {
        let mut sample = self.sample.clone();
        if let Some(by) = by_ms {
            sample.fraud &= self.known_ms.is_some_and(|k| k < by);
        }
        sample
    }
}

/// One labelled event before its features are computed.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledEvent {
    /// The transaction.
    pub event: Transaction,
    /// The truth: fraud or not.
    pub fraud: bool,
    /// When its fraud label was given (ms); `None`: never reported, or legit.
    pub known_ms: Option<i64>,
    /// The fraud pattern, if known.
    pub scenario: Option<String>,
}

impl LabelledEvent {
    /// The fraud label as the entity-risk index reads it, when it was reported: a fraud
    /// without a label time is the truth when testing, but unknown to the index (and, with a
    /// label cut-off, to training).
    pub fn reported_fraud(&self) -> Option<LabelSighting> {
        let known = self.known_ms?;
        Some(LabelSighting::new(
            self.event.event_time_ms(),
            known,
            self.event.merchant_id.as_deref(),
            self.event.device_id.as_deref(),
            true,
        ))
    }
}

/// Samples of `events` (in event-time order), their features replayed per user as live
/// scoring computes them, with merchant and device figures from every event and `labels`,
/// each event seeing only the labels given `label_delay_ms` before it.
pub fn replayed_samples(
    events: Vec<LabelledEvent>,
    labels: Vec<LabelSighting>,
    lateness_ms: i64,
    label_delay_ms: i64,
    progress: &dyn Progress,
) -> LabelledHistory {
    let total = events.len() as u64;
    let mut activity = EntityActivity::default();
    for e in &events {
        activity.record_event(&e.event);
    }
    let index = Arc::new(EntityRisk::build(label_delay_ms, &activity, labels));
    drop(activity);
    let mut replay = FeatureReplay::new(lateness_ms, index);
    let mut history = LabelledHistory {
        samples: Vec::with_capacity(events.len()),
        compromised_since: HashMap::new(),
    };
    for (done, e) in events.into_iter().enumerate() {
        progress.update(done as u64 + 1, total);
        let card = card_of(&e.event).to_owned();
        if let Some(known) = e.known_ms {
            history
                .compromised_since
                .entry(card.clone())
                .and_modify(|t| *t = (*t).min(known))
                .or_insert(known);
        }
        history.samples.push(LabelledSample {
            transaction_id: e.event.transaction_id.clone(),
            sample: Sample {
                time_ms: e.event.event_time_ms(),
                features: replay.features(&e.event),
                fraud: e.fraud,
            },
            card,
            scenario: e.scenario,
            known_ms: e.known_ms,
        });
    }
    history
}

/// Labelled samples of a period, with what evaluation needs to know about cards.
#[derive(Debug, Clone, Default)]
pub struct LabelledHistory {
    /// In event-time order.
    pub samples: Vec<LabelledSample>,
    /// Per card, when its first fraud label was given (ms): from then on it is known
    /// compromised.
    pub compromised_since: HashMap<String, i64>,
}

/// The card an event is counted under.
pub fn card_of(event: &sentinel_event::Transaction) -> &str {
    event.card_id.as_deref().unwrap_or(&event.user_id)
}

/// The stored activity of events in `[oldest, until)` and the users with events in
/// `[from, until)`, scanning decision days from a day before `oldest` to `now`.
async fn scan(
    store: &dyn Store,
    oldest: DateTime<Utc>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(EntityActivity, BTreeSet<String>), CatalogError> {
    let mut activity = EntityActivity::default();
    let mut users = BTreeSet::new();
    let first_day = (oldest - Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    crate::decision_days::for_each_decision(store, first_day, now.max(until), |d| {
        let t = d.event.timestamp;
        if t >= oldest && t < until {
            activity.record_event(&d.event);
        }
        if t >= from && t < until {
            users.insert(d.user_id.clone());
        }
    })
    .await?;
    Ok((activity, users))
}

/// Samples of the events whose time is in `[from, until)`, in event-time order.
pub async fn stored_samples(
    catalog: &Catalog,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    unlabelled: Unlabelled,
    label_delay_ms: i64,
    progress: &dyn Progress,
) -> Result<LabelledHistory, CatalogError> {
    if until <= from {
        return Err(CatalogError::invalid("until", "must be after since"));
    }
    let store = catalog.store();
    let mut labels = HashMap::new();
    for (transaction_id, bytes) in scan_all(&**store, RecordKind::Label).await? {
        labels.insert(transaction_id, decode::<Label>(&bytes)?);
    }
    let oldest = from
        - Duration::milliseconds(label_delay_ms.max(0) + RISK_WINDOWS_MS[2])
        - Duration::hours(1);
    let (activity, users) = scan(&**store, oldest, from, until, Utc::now()).await?;
    let index = Arc::new(catalog.entity_index(label_delay_ms, &activity).await?);
    drop(activity);
    let total = users.len() as u64;
    let mut history = LabelledHistory::default();
    for (done, user) in users.iter().enumerate() {
        let mut replay = FeatureReplay::new(catalog.lateness_ms(), Arc::clone(&index));
        for d in &user_history(store, user).await? {
            let features = replay.features(&d.event);
            let label = labels.get(&d.transaction_id);
            let card = card_of(&d.event);
            let known_ms = label
                .filter(|l| l.label == LabelValue::Fraud)
                .map(|l| l.labelled_at.timestamp_millis());
            if let Some(at) = known_ms {
                history
                    .compromised_since
                    .entry(card.to_owned())
                    .and_modify(|t| *t = (*t).min(at))
                    .or_insert(at);
            }
            if d.event.timestamp < from || d.event.timestamp >= until {
                continue;
            }
            let fraud = match label {
                Some(label) => label.label == LabelValue::Fraud,
                None if unlabelled == Unlabelled::Legit => false,
                None => continue,
            };
            history.samples.push(LabelledSample {
                transaction_id: d.transaction_id.clone(),
                sample: Sample {
                    time_ms: d.event.event_time_ms(),
                    features,
                    fraud,
                },
                card: card.to_owned(),
                scenario: label
                    .filter(|l| l.label == LabelValue::Fraud)
                    .and_then(|l| l.scenario.clone()),
                known_ms,
            });
        }
        progress.update(done as u64 + 1, total);
    }
    history.samples.sort_by_key(|s| s.sample.time_ms);
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::csv::history_limits;

    struct Silent;

    impl Progress for Silent {
        fn update(&self, _: u64, _: u64) {}
    }

    fn event(id: &str, card: &str, minute: u32, known_ms: Option<i64>) -> LabelledEvent {
        let json = format!(
            r#"{{"transaction_id":"{id}","user_id":"u-{card}","card_id":"{card}","amount":"10",
                "currency":"EUR","merchant_id":"m1","timestamp":"2026-01-05T10:{minute:02}:00Z"}}"#
        );
        let (event, _) = sentinel_event::parse_transaction(
            json.as_bytes(),
            sentinel_event::ParseMode::Strict,
            &history_limits(),
            Utc::now(),
        )
        .unwrap();
        LabelledEvent {
            event,
            fraud: known_ms.is_some(),
            known_ms,
            scenario: None,
        }
    }

    #[test]
    fn replayed_samples_keep_order_labels_and_when_each_card_became_known() {
        let events = vec![
            event("a", "c1", 0, None),
            event("b", "c1", 1, Some(5_000)),
            event("c", "c1", 2, Some(3_000)),
            event("d", "c2", 3, None),
        ];
        let labels = events
            .iter()
            .filter_map(LabelledEvent::reported_fraud)
            .collect();
        let history = replayed_samples(events, labels, 60_000, 0, &Silent);
        let ids: Vec<&str> = history
            .samples
            .iter()
            .map(|s| s.transaction_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        let frauds: Vec<bool> = history.samples.iter().map(|s| s.sample.fraud).collect();
        assert_eq!(frauds, [false, true, true, false]);
        assert_eq!(
            history.compromised_since,
            HashMap::from([("c1".to_owned(), 3_000)])
        );
        // The user's velocity features see the earlier events, as live scoring would.
        assert_ne!(
            history.samples[0].sample.features,
            history.samples[2].sample.features
        );
    }

    #[test]
    fn training_sees_only_the_fraud_labels_known_by_its_cut_off() {
        let history = replayed_samples(
            vec![event("a", "c1", 0, Some(5_000))],
            Vec::new(),
            60_000,
            0,
            &Silent,
        );
        let sample = &history.samples[0];
        assert!(sample.known_by(None).fraud);
        assert!(sample.known_by(Some(5_001)).fraud);
        assert!(!sample.known_by(Some(5_000)).fraud);
    }
}
