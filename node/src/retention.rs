//! Retention for the embedded store: every hour, decisions older than the configured number of
//! days are deleted in small transactions, so the writer is never held up for long.

use sentinel_store::metrics::DECISIONS_PRUNED;
use sentinel_store::EmbeddedStore;
use std::time::Duration;

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);
/// Decisions deleted per write transaction.
const PER_TRANSACTION: usize = 2_000;

/// Prunes on the hour until the process ends.
pub async fn run(store: EmbeddedStore, days: u32) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        let cutoff = now - chrono::Duration::days(i64::from(days));
        let mut total = 0;
        loop {
            match store
                .prune_decided_before(cutoff, now, PER_TRANSACTION)
                .await
            {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    metrics::counter!(DECISIONS_PRUNED).increment(n);
                    // Let queued decision batches in between pruning transactions.
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention failed; retrying in an hour");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(pruned = total, %cutoff, "retention deleted old decisions");
        }
    }
}
