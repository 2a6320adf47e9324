//! Keeps the user actors' label index current: built from the store's labels at start-up, then
//! rebuilt every `[model] label_refresh_secs` (labels posted on another node of the cluster
//! arrive this way; those posted here refresh at once, in the catalogue).

use crate::startup_model::ModelConfig;
use crate::telemetry as t;
use anyhow::Context;
use sentinel_catalog::Catalog;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Builds the first index, then refreshes it in the background until the task is aborted.
pub async fn start(catalog: Arc<Catalog>, config: &ModelConfig) -> anyhow::Result<JoinHandle<()>> {
    let delay_ms = i64::try_from(config.label_delay_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    let labels = catalog
        .refresh_label_risk(delay_ms)
        .await
        .context("indexing the analyst labels")?;
    metrics::gauge!(t::LABEL_INDEX_LABELS).set(labels as f64);
    tracing::info!(
        labels,
        delay_secs = config.label_delay_secs,
        "label index built"
    );
    let every = Duration::from_secs(config.label_refresh_secs.max(1));
    Ok(tokio::spawn(async move {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await;
        loop {
            tokio::select! {
                _ = timer.tick() => {}
                () = catalog.label_posted() => {}
            }
            match catalog.refresh_label_risk(delay_ms).await {
                Ok(labels) => metrics::gauge!(t::LABEL_INDEX_LABELS).set(labels as f64),
                Err(e) => {
                    metrics::counter!(t::LABEL_INDEX_REFRESH_FAILURES).increment(1);
                    tracing::warn!(error = %e, "refreshing the label index failed");
                }
            }
        }
    }))
}
