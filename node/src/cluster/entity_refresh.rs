//! Keeps the user actors' entity-risk index current: built from the store at start-up (the
//! decisions of the last 30 days plus the label delay, and every label), then refreshed every
//! `[model] label_refresh_secs` from the decisions stored since and every label (decisions and
//! labels of the other nodes of a cluster arrive this way; a label posted here refreshes at
//! once, in the catalogue). A refresh rebuilds the index only when an event could see the
//! difference (`Catalog::refresh_entity_risk`): with a day of label delay, live traffic's
//! activity about once a day.
//!
//! Counting the window's decisions at start-up grows with traffic (~2 µs a decision), so the
//! index is saved to `data_dir` every `[model] entity_index_save_secs` and at a clean stop
//! ([`Refresher::stop`]; the save takes in this node's decisions not counted yet), and a start
//! reads it back and counts only the decisions stored since (`Catalog::restore_entity_index`,
//! which refuses a damaged file, another store's, or one too short for the window or older
//! than it).

use crate::startup_model::ModelConfig;
use crate::telemetry as t;
use anyhow::Context;
use chrono::Utc;
use sentinel_catalog::{Catalog, EntityIndexSize, RestoreOutcome};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The file of the saved entity-risk index in a node's data directory.
pub fn saved_index_path(data_dir: &Path) -> PathBuf {
    data_dir.join("entity-index.bin")
}

/// Reads the saved index at `path` back into `catalog`, before its first pass; whether it was.
async fn restore(catalog: &Catalog, path: &Path, delay_ms: i64) -> bool {
    let outcome = match catalog
        .restore_entity_index(path, delay_ms, Utc::now())
        .await
    {
        Ok(RestoreOutcome::Restored(saved)) => {
            tracing::info!(
                entities = saved.entities,
                overlap = saved.overlap,
                bytes = saved.bytes,
                path = %path.display(),
                "entity-risk index read back from its last save"
            );
            "restored"
        }
        Ok(RestoreOutcome::Missing) => "missing",
        Ok(RestoreOutcome::Refused(why)) => {
            tracing::warn!(
                reason = %why,
                path = %path.display(),
                "saved entity-risk index not used; counting the window's decisions from the store"
            );
            "refused"
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "reading the saved entity-risk index failed; counting the window's decisions \
                 from the store"
            );
            "failed"
        }
    };
    metrics::counter!(t::ENTITY_INDEX_RESTORES, "outcome" => outcome).increment(1);
    outcome == "restored"
}

/// Saves `catalog`'s entity-risk index to `path`; a failure is logged and counted (the file
/// keeps its last good save, which a restart can still use). `at_stop` logs a save at info.
pub async fn save(catalog: &Catalog, path: &Path, at_stop: bool) {
    let started = Instant::now();
    match catalog.save_entity_index(path).await {
        Ok(Some(saved)) if at_stop => tracing::info!(
            entities = saved.entities,
            overlap = saved.overlap,
            bytes = saved.bytes,
            secs = started.elapsed().as_secs_f64(),
            "entity-risk index saved for the next start"
        ),
        Ok(Some(saved)) => tracing::debug!(
            entities = saved.entities,
            overlap = saved.overlap,
            bytes = saved.bytes,
            secs = started.elapsed().as_secs_f64(),
            "entity-risk index saved"
        ),
        Ok(None) => {}
        Err(e) => {
            metrics::counter!(t::ENTITY_INDEX_SAVE_FAILURES).increment(1);
            tracing::warn!(error = %e, "saving the entity-risk index failed");
        }
    }
}

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

/// The task keeping the entity-risk index current.
pub struct Refresher {
    task: JoinHandle<()>,
    stop: oneshot::Sender<()>,
}

impl Refresher {
    /// Stops the task between passes and, when saving, saves the index a last time (call once
    /// the store writer has flushed, so that the save holds all of this node's decisions).
    /// Waits at most `limit` (a pass on a member whose store host is gone waits for its
    /// requests to time out): past it, the save goes on while the process stops, and the next
    /// start reads the last one that completed.
    pub async fn stop(self, limit: Duration) {
        let _ = self.stop.send(());
        if tokio::time::timeout(limit, self.task).await.is_err() {
            tracing::warn!(
                secs = limit.as_secs(),
                "the entity-risk index was not saved in time at the stop; the next start reads \
                 its last save"
            );
        }
    }
}

/// Builds the first index (from its save at `saved`, when there is one this store can use),
/// then refreshes it in the background, saving it to `saved` now and then, until
/// [`Refresher::stop`]. `future_skew` is how far ahead of this node's clock an event may be
/// stamped.
pub async fn start(
    catalog: Arc<Catalog>,
    config: &ModelConfig,
    future_skew: Duration,
    saved: Option<PathBuf>,
) -> anyhow::Result<Refresher> {
    let delay_ms = i64::try_from(config.label_delay_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    let every = Duration::from_secs(config.label_refresh_secs.max(1));
    // Any event scored before the next pass is stamped at most this far past this one.
    let lead_ms = i64::try_from((future_skew + every).as_millis()).unwrap_or(i64::MAX);
    let restored = match &saved {
        Some(path) => restore(&catalog, path, delay_ms).await,
        None => false,
    };
    let started = Instant::now();
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
    let save_every = Duration::from_secs(config.entity_index_save_secs);
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        // Counted from the store, saved at once: a node crashing before its first period
        // need not count it all again. Read back, the file it came from serves as well.
        let mut saved_at = Instant::now();
        if let Some(path) = saved.as_ref().filter(|_| !restored) {
            save(&catalog, path, false).await;
        }
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await;
        loop {
            // A pass is never cut short: a stop waits for the one running, then saves.
            let stopping = tokio::select! {
                biased;
                _ = &mut stopped => true,
                _ = timer.tick() => false,
                () = catalog.label_posted() => false,
            };
            if stopping {
                // No last pass: the save takes in this node's decisions not counted yet, and
                // the next start reads other nodes' from the store either way.
                if let Some(path) = &saved {
                    save(&catalog, path, true).await;
                }
                return;
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
            if let Some(path) = saved.as_ref().filter(|_| saved_at.elapsed() >= save_every) {
                save(&catalog, path, false).await;
                saved_at = Instant::now();
            }
        }
    });
    Ok(Refresher { task, stop })
}
