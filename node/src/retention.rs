//! Retention for the embedded store: every hour, decisions older than the configured number of
//! days are deleted in small transactions, so the writer is never held up for long.

use chrono::{DateTime, Utc};
use sentinel_store::metrics::DECISIONS_PRUNED;
use sentinel_store::DecisionLog;
use std::sync::Arc;
use std::time::Duration;

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);
/// Decisions deleted per write transaction.
const PER_TRANSACTION: usize = 2_000;

/// Prunes on the hour until the process ends.
pub async fn run(store: Arc<dyn DecisionLog>, days: u32) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        prune(store.as_ref(), days, Utc::now(), PER_TRANSACTION).await;
    }
}

/// One pass: deletes the decisions decided more than `days` before `now`, `per_transaction`
/// at a time, and returns how many went.
async fn prune(
    store: &dyn DecisionLog,
    days: u32,
    now: DateTime<Utc>,
    per_transaction: usize,
) -> u64 {
    let cutoff = now - chrono::Duration::days(i64::from(days));
    let mut total = 0;
    loop {
        match store
            .prune_decided_before(cutoff, now, per_transaction)
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
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_store::chain::VerifyOptions;
    use sentinel_store::conformance::decision;
    use sentinel_store::{EmbeddedEngine, WriteOp};

    /// A store on `engine` holding, in log order, decisions `t1`… decided the given hours
    /// before `now`.
    fn store_with(
        engine: EmbeddedEngine,
        dir: &tempfile::TempDir,
        rt: &tokio::runtime::Runtime,
        hours_ago: &[i64],
        now: DateTime<Utc>,
    ) -> Arc<dyn DecisionLog> {
        let options = sentinel_store::EmbeddedOptions {
            cache_bytes: 1 << 20,
            ..Default::default()
        };
        let store = sentinel_store::open_embedded(dir.path(), engine, options).unwrap();
        let ops = hours_ago
            .iter()
            .enumerate()
            .map(|(i, hours)| {
                let mut d = decision(&format!("t{}", i + 1), "u", i as u64 + 1, 0);
                d.decided_at = now - chrono::Duration::hours(*hours);
                WriteOp::Decision(Arc::new(d))
            })
            .collect();
        rt.block_on(store.write_batch(ops)).unwrap();
        store
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_pass_deletes_what_is_older_than_the_period_keeps_the_rest_and_counts() {
        for engine in EmbeddedEngine::ALL {
            a_pass_deletes_what_is_older_on(engine);
        }
    }

    fn a_pass_deletes_what_is_older_on(engine: EmbeddedEngine) {
        let (dir, rt, now) = (tempfile::tempdir().unwrap(), runtime(), Utc::now());
        // 40 days and 31 days and an hour ago go; 31 days less an hour and 1 day ago stay.
        let hours = [40 * 24, 31 * 24 + 1, 31 * 24 - 1, 24];
        let store = store_with(engine, &dir, &rt, &hours, now);
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        // One decision per transaction: the pass loops until nothing old is left.
        let pruned = metrics::with_local_recorder(&recorder, || {
            rt.block_on(prune(store.as_ref(), 31, now, 1))
        });
        assert_eq!(pruned, 2);
        assert!(
            metrics.render().contains(&format!("{DECISIONS_PRUNED} 2")),
            "{}",
            metrics.render()
        );
        rt.block_on(async {
            for gone in ["t1", "t2"] {
                assert!(store.decision(gone).await.unwrap().is_none(), "{gone}");
            }
            for kept in ["t3", "t4"] {
                assert!(store.decision(kept).await.unwrap().is_some(), "{kept}");
            }
            // The kept chain still verifies, with one declaration per deleting transaction.
            let options = VerifyOptions {
                expect_head: None,
                now,
            };
            let report = store.verify_log(options).await.unwrap();
            assert!(report.problem.is_none(), "{:?}", report.problem);
            assert_eq!(report.retention.len(), 2);
            // A second pass finds nothing more to delete.
            assert_eq!(prune(store.as_ref(), 31, now, 1).await, 0);
        });
    }

    #[test]
    fn a_period_shorter_than_the_windows_deletes_nothing() {
        let (dir, rt, now) = (tempfile::tempdir().unwrap(), runtime(), Utc::now());
        let store = store_with(EmbeddedEngine::Lsm, &dir, &rt, &[40 * 24, 24], now);
        assert_eq!(
            rt.block_on(prune(store.as_ref(), 7, now, PER_TRANSACTION)),
            0
        );
        assert_eq!(rt.block_on(store.decision_count()).unwrap(), 2);
    }
}
