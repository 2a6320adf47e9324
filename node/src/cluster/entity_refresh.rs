//! Keeps the user actors' entity-risk index current: built from the store at start-up (the
//! decisions of the last 30 days plus the label delay, and every label), then refreshed every
//! `[model] label_refresh_secs` from the decisions stored since and every label (decisions and
//! labels of the other nodes of a cluster arrive this way; a label posted here refreshes at
//! once, in the catalogue). A refresh rebuilds the index only when an event could see the
//! difference (`Catalog::refresh_entity_risk`): with a day of label delay, live traffic's
//! activity about once a day.

use crate::startup_model::ModelConfig;
use crate::telemetry as t;
use anyhow::Context;
use chrono::Utc;
use sentinel_catalog::{Catalog, EntityIndexSize};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

fn record(size: EntityIndexSize) {
    metrics::gauge!(t::LABEL_INDEX_LABELS).set(size.labels as f64);
    metrics::gauge!(t::ENTITY_INDEX_ENTITIES).set(size.entities as f64);
    if size.rebuilt {
        metrics::counter!(t::ENTITY_INDEX_REBUILDS).increment(1);
    }
    metrics::counter!(t::ENTITY_INDEX_DECISIONS, "source" => "observed")
        .increment(size.counted.observed);
    metrics::counter!(t::ENTITY_INDEX_DECISIONS, "source" => "read").increment(size.counted.read);
}

/// Builds the first index, then refreshes it in the background until the task is aborted.
/// `future_skew` is how far ahead of this node's clock an event may be stamped.
pub async fn start(
    catalog: Arc<Catalog>,
    config: &ModelConfig,
    future_skew: Duration,
) -> anyhow::Result<JoinHandle<()>> {
    let delay_ms = i64::try_from(config.label_delay_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    let every = Duration::from_secs(config.label_refresh_secs.max(1));
    // Any event scored before the next pass is stamped at most this far past this one.
    let lead_ms = i64::try_from((future_skew + every).as_millis()).unwrap_or(i64::MAX);
    let started = std::time::Instant::now();
    let size = catalog
        .refresh_entity_risk(delay_ms, Utc::now(), lead_ms)
        .await
        .context("indexing merchant and device activity and the labels")?;
    record(size);
    // What a start-up on a store with history spends here grows with the decisions read.
    tracing::info!(
        labels = size.labels,
        entities = size.entities,
        decisions = size.counted.read + size.counted.observed,
        secs = started.elapsed().as_secs_f64(),
        delay_secs = config.label_delay_secs,
        "entity-risk index built"
    );
    Ok(tokio::spawn(async move {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await;
        loop {
            tokio::select! {
                _ = timer.tick() => {}
                () = catalog.label_posted() => {}
            }
            match catalog
                .refresh_entity_risk(delay_ms, Utc::now(), lead_ms)
                .await
            {
                Ok(size) => record(size),
                Err(e) => {
                    metrics::counter!(t::LABEL_INDEX_REFRESH_FAILURES).increment(1);
                    tracing::warn!(error = %e, "refreshing the entity-risk index failed");
                }
            }
        }
    }))
}
