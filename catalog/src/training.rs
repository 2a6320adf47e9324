//! Labelled model features from stored history: each user's decisions are replayed in
//! processing order through the same per-user state and feature code as live scoring, and
//! events in the range become samples labelled by analysts. The entity-risk features read
//! every stored label, each event seeing only those given `label_delay_ms` before it.

use crate::backtest::{in_range, user_history, users_with_events, Progress};
use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::records::LabelValue;
use chrono::{DateTime, Utc};
use sentinel_actors::FeatureReplay;
use sentinel_model::Sample;
use std::sync::Arc;

/// What an event without an analyst label counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unlabelled {
    /// Legitimate: no one reported it (the usual reading of card data).
    #[default]
    Legit,
    /// Left out of the samples.
    Skip,
}

/// Samples of the events whose time is in `[from, until)`, in event-time order.
pub async fn stored_samples(
    catalog: &Catalog,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    unlabelled: Unlabelled,
    label_delay_ms: i64,
    progress: &dyn Progress,
) -> Result<Vec<Sample>, CatalogError> {
    if until <= from {
        return Err(CatalogError::invalid("until", "must be after since"));
    }
    let store = catalog.store();
    let labels = Arc::new(catalog.label_index(label_delay_ms).await?);
    let users = users_with_events(store, from, until, |_| true).await?;
    let total = users.len() as u64;
    let mut samples = Vec::new();
    for (done, user) in users.iter().enumerate() {
        let mut replay = FeatureReplay::new(catalog.lateness_ms(), Arc::clone(&labels));
        for d in &user_history(store, user).await? {
            let features = replay.features(&d.event);
            if !in_range(d, from, until) {
                continue;
            }
            let fraud = match catalog.label_of(&d.transaction_id).await? {
                Some(label) => label.label == LabelValue::Fraud,
                None if unlabelled == Unlabelled::Legit => false,
                None => continue,
            };
            samples.push(Sample {
                time_ms: d.event.event_time_ms(),
                features,
                fraud,
            });
        }
        progress.update(done as u64 + 1, total);
    }
    samples.sort_by_key(|s| s.time_ms);
    Ok(samples)
}
