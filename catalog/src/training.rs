//! Labelled model features from stored history: each user's decisions are replayed in
//! processing order through the same per-user state and feature code as live scoring, and
//! events in the range become samples labelled by the stored labels. The merchant and device
//! figures come from every stored decision around the range and every stored label, each event
//! seeing only what was known `label_delay_ms` before it.
//!
//! Decisions are found by their decision day, scanned from before the range up to now: history
//! imported today has old event times but today's decision time.

use crate::backtest::{user_history, Progress};
use crate::catalog::{decode, scan_all, Catalog};
use crate::error::CatalogError;
use crate::records::{Label, LabelValue};
use chrono::{DateTime, Duration, Utc};
use sentinel_engine::{EntityActivity, FeatureReplay, RISK_WINDOWS_MS};
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
