//! Retention for the embedded store: every hour, decisions older than the configured number of
//! days are deleted in small transactions, so the writer is never held up for long. Users whose
//! snapshot does not yet cover the decisions about to go are snapshotted first, so their
//! profiles and decision sequences outlive those decisions.

use chrono::{DateTime, Utc};
use sentinel_actors::Covered;
use sentinel_store::metrics::{DECISIONS_PRUNED, RETENTION_SNAPSHOTS};
use sentinel_store::{DecisionLog, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);
/// Decisions deleted per write transaction.
const PER_TRANSACTION: usize = 2_000;
/// Users whose state cannot be rebuilt (an undecodable record) that one transaction skips;
/// beyond this it is not damage but something systemic, and the pass stops before deleting.
const MAX_UNREBUILDABLE_PER_TRANSACTION: usize = 8;

/// Prunes on the hour until the process ends; `lateness_ms` is the scorer's, which snapshots
/// rebuilt from the decisions replay them with.
pub async fn run(store: Arc<dyn DecisionLog>, days: u32, lateness_ms: i64) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        prune(
            store.as_ref(),
            days,
            Utc::now(),
            PER_TRANSACTION,
            lateness_ms,
        )
        .await;
    }
}

/// One pass: deletes the decisions decided more than `days` before `now`, `per_transaction`
/// at a time, each transaction after snapshotting the users it would otherwise take decisions
/// from that no snapshot covers, and returns how many decisions went.
async fn prune(
    store: &dyn DecisionLog,
    days: u32,
    now: DateTime<Utc>,
    per_transaction: usize,
    lateness_ms: i64,
) -> u64 {
    let cutoff = now - chrono::Duration::days(i64::from(days));
    let (mut total, mut snapshotted, mut failed) = (0, 0, 0);
    loop {
        match prune_one(store, cutoff, now, per_transaction, lateness_ms).await {
            Ok((pruned, covered)) => {
                snapshotted += covered.written;
                failed += covered.failed;
                if pruned == 0 {
                    break;
                }
                total += pruned;
                metrics::counter!(DECISIONS_PRUNED).increment(pruned);
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
        tracing::info!(pruned = total, snapshotted, failed, %cutoff, "retention deleted old decisions");
    }
    total
}

/// One transaction's worth: snapshots the users whose decisions it is about to delete where
/// their snapshot does not reach them, then deletes. Returns the decisions deleted and what
/// the snapshotting did.
async fn prune_one(
    store: &dyn DecisionLog,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
    max: usize,
    lateness_ms: i64,
) -> Result<(u64, Covered), StoreError> {
    // Only this task deletes, and writes append at the log's end (decided now, not before the
    // cutoff), so the prune below deletes exactly the front read here.
    let users = store.users_expiring(cutoff, now, max).await?;
    let covered = sentinel_actors::snapshot_uncovered(
        store,
        &users,
        lateness_ms,
        MAX_UNREBUILDABLE_PER_TRANSACTION,
    )
    .await?;
    for (outcome, users) in [("written", covered.written), ("failed", covered.failed)] {
        metrics::counter!(RETENTION_SNAPSHOTS, "outcome" => outcome).increment(users as u64);
    }
    let pruned = store.prune_decided_before(cutoff, now, max).await?;
    Ok((pruned, covered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_store::chain::VerifyOptions;
    use sentinel_store::conformance::decision;
    use sentinel_store::{EmbeddedEngine, WriteOp};

    /// A store on `engine` holding, in log order, decisions `t1`… of user `u` decided the
    /// given hours before `now`.
    fn store_with(
        engine: EmbeddedEngine,
        dir: &tempfile::TempDir,
        rt: &tokio::runtime::Runtime,
        hours_ago: &[i64],
        now: DateTime<Utc>,
    ) -> Arc<dyn DecisionLog> {
        let of_u: Vec<_> = hours_ago.iter().map(|hours| ("u", *hours)).collect();
        store_of(engine, dir, rt, &of_u, now)
    }

    /// A store on `engine` holding, in log order, decisions `t1`… of the given users (each
    /// user's numbered from 1) decided the given hours before `now`.
    fn store_of(
        engine: EmbeddedEngine,
        dir: &tempfile::TempDir,
        rt: &tokio::runtime::Runtime,
        decisions: &[(&str, i64)],
        now: DateTime<Utc>,
    ) -> Arc<dyn DecisionLog> {
        let options = sentinel_store::EmbeddedOptions {
            cache_bytes: 1 << 20,
            ..Default::default()
        };
        let store = sentinel_store::open_embedded(dir.path(), engine, options).unwrap();
        let mut seqs = std::collections::HashMap::new();
        let ops = decisions
            .iter()
            .enumerate()
            .map(|(i, (user, hours))| {
                let seq = seqs.entry(*user).or_insert(0);
                *seq += 1;
                let mut d = decision(&format!("t{}", i + 1), user, *seq, 0);
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
            rt.block_on(prune(store.as_ref(), 31, now, 1, 0))
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
            assert_eq!(prune(store.as_ref(), 31, now, 1, 0).await, 0);
        });
    }

    #[test]
    fn a_pass_first_snapshots_the_users_whose_snapshot_does_not_cover_what_it_deletes() {
        for engine in EmbeddedEngine::ALL {
            a_pass_first_snapshots_uncovered_users_on(engine);
        }
    }

    fn a_pass_first_snapshots_uncovered_users_on(engine: EmbeddedEngine) {
        let (dir, rt, now) = (tempfile::tempdir().unwrap(), runtime(), Utc::now());
        let old = 40 * 24;
        // `a`: three old decisions, no snapshot. `b`: two old ones, and a snapshot covering
        // them. `c`: one old and one recent decision, no snapshot. `d`: two old ones, and a
        // snapshot covering them from before ledgers (rebuilt from the decisions it covers).
        let decisions = [
            ("a", old),
            ("b", old),
            ("a", old),
            ("c", old),
            ("b", old),
            ("a", old),
            ("d", old),
            ("d", old),
            ("c", 24),
        ];
        let store = store_of(engine, &dir, &rt, &decisions, now);
        let snapshot_at_2 = |user: &str, ledger| {
            let state = sentinel_engine::UserState {
                seq: 2,
                ledger,
                ..Default::default()
            };
            sentinel_store::UserSnapshot {
                user_id: user.into(),
                seq: 2,
                state: sentinel_actors::encode_snapshot(&state).unwrap(),
            }
        };
        let b_snapshot = snapshot_at_2("b", Some(Default::default()));
        let d_snapshot = snapshot_at_2("d", None);
        let writes = vec![
            WriteOp::Snapshot(b_snapshot.clone()),
            WriteOp::Snapshot(d_snapshot),
        ];
        rt.block_on(store.write_batch(writes)).unwrap();
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        // Two decisions per transaction: the users of each are snapshotted before it, each
        // once (`a` is covered by the time its later decisions go).
        let pruned = metrics::with_local_recorder(&recorder, || {
            rt.block_on(prune(store.as_ref(), 31, now, 2, 0))
        });
        assert_eq!(pruned, 8);
        let written = format!("{RETENTION_SNAPSHOTS}{{outcome=\"written\"}} 3");
        assert!(metrics.render().contains(&written), "{}", metrics.render());
        rt.block_on(async {
            for (user, seq, txn_count, counted) in [("a", 3, 3, 3), ("c", 2, 2, 2), ("d", 2, 0, 2)]
            {
                let snapshot = store.snapshot(user).await.unwrap().expect(user);
                let state = sentinel_actors::decode_snapshot(&snapshot.state).unwrap();
                assert_eq!((snapshot.seq, state.seq), (seq, seq), "{user}");
                assert_eq!(state.profile.txn_count, txn_count, "{user}");
                assert_eq!(state.ledger.unwrap().counted, counted, "{user}");
            }
            // A readable snapshot with a ledger that covers what went is left as it was.
            assert_eq!(store.snapshot("b").await.unwrap(), Some(b_snapshot));
            assert_eq!(store.decision_count().await.unwrap(), 1);
        });
    }

    #[test]
    fn a_period_shorter_than_the_windows_deletes_nothing() {
        let (dir, rt, now) = (tempfile::tempdir().unwrap(), runtime(), Utc::now());
        let store = store_with(EmbeddedEngine::Lsm, &dir, &rt, &[40 * 24, 24], now);
        assert_eq!(
            rt.block_on(prune(store.as_ref(), 7, now, PER_TRANSACTION, 0)),
            0
        );
        assert_eq!(rt.block_on(store.decision_count()).unwrap(), 2);
    }
}
