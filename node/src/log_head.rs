//! Exports the decision log's head so operators can keep it outside the store: a
//! `decision log head` log line (position and hash) at start-up and every few minutes, and the
//! position as a gauge. `sentinel verify-log --expect-head <hash>` later proves the chain still
//! passes through it.

use sentinel_store::chain;
use sentinel_store::DecisionLog;
use std::sync::Arc;
use std::time::Duration;

/// Gauge: the position of the decision log's last entry.
pub const LOG_POSITION: &str = "sentinel_decision_log_position";

/// How often the head is logged (the gauge moves at the same pace).
const EVERY: Duration = Duration::from_secs(300);

/// Logs the head now and every [`EVERY`] until the process ends; a change since the last line
/// is logged, an unchanged head is not repeated.
pub async fn run(store: Arc<dyn DecisionLog>) {
    let mut tick = tokio::time::interval(EVERY);
    let mut last = None;
    loop {
        tick.tick().await;
        match store.log_head().await {
            Ok(head) if last != Some(head) => {
                let position = head.next_seq - 1;
                metrics::gauge!(LOG_POSITION).set(position as f64);
                tracing::info!(
                    position,
                    hash = %chain::hex(&head.hash),
                    "decision log head; keep it off this machine for `sentinel verify-log --expect-head`"
                );
                last = Some(head);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the decision log head failed"),
        }
    }
}
