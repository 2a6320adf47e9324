use super::*;
use crate::conformance::{self, decision};
use chrono::TimeZone;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_passes_the_conformance_suite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance::run_all(|| {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("c.redb")).unwrap());
        dirs.lock().unwrap().push(dir);
        async move { store }
    })
    .await;
}

#[allow(dead_code)]
fn open() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn snapshots_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        assert!(store.snapshot("u1").await.unwrap().is_none());
        let snap = UserSnapshot {
            user_id: "u1".into(),
            seq: 42,
            state: b"state".to_vec(),
        };
        store
            .write_batch(vec![WriteOp::Snapshot(snap)])
            .await
            .unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let snap = store.snapshot("u1").await.unwrap().unwrap();
    assert_eq!((snap.seq, snap.state.as_slice()), (42, b"state".as_slice()));
}

/// Verifies with no kept head, as of a time after every test's retention pass.
/// The users with history are known again after a reopen (decisions only, snapshot only, many
/// decisions each), and a user with none is answered without a blocking thread or a read: the
/// restore completes on its first poll outside any tokio runtime, where a `spawn_blocking`
/// would panic.
#[test]
fn history_is_rebuilt_at_open_and_users_without_it_cost_no_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = EmbeddedStore::open(&path).unwrap();
        let mut ops = Vec::new();
        for user in 0..40 {
            for seq in 1..=3 {
                let txn = format!("t{user}-{seq}");
                ops.push(WriteOp::Decision(Arc::new(decision(
                    &txn,
                    &format!("u{user}"),
                    seq,
                    1,
                ))));
            }
        }
        ops.push(WriteOp::Snapshot(UserSnapshot {
            user_id: "only-snapshot".into(),
            seq: 0,
            state: b"s".to_vec(),
        }));
        store.write_batch(ops).await.unwrap();
    });
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.history.len(), 41);
    for user in (0..40)
        .map(|u| format!("u{u}"))
        .chain(["only-snapshot".into()])
    {
        assert!(store.may_have_history(&user), "{user} lost its history");
    }
    assert!(!store.may_have_history("u40"));
    runtime.block_on(async {
        let point = store.restore_point("u39", 10).await.unwrap();
        assert_eq!(point.decisions.len(), 3);
        let point = store.restore_point("only-snapshot", 10).await.unwrap();
        assert!(point.snapshot.is_some());
    });
    let mut restore = std::pin::pin!(store.restore_point("u40", 10));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(restore.as_mut(), &mut cx) {
        std::task::Poll::Ready(Ok(point)) => {
            assert!(point.snapshot.is_none() && point.decisions.is_empty())
        }
        other => panic!("a user without history waited or failed: {other:?}"),
    }
}

async fn verify(store: &EmbeddedStore) -> crate::chain::LogReport {
    verify_expecting(store, None).await
}

async fn verify_expecting(
    store: &EmbeddedStore,
    expect_head: Option<[u8; 32]>,
) -> crate::chain::LogReport {
    let now = chrono::Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let options = crate::chain::VerifyOptions { expect_head, now };
    store.verify_log(options).await.unwrap()
}

/// The earliest time a retention pass may delete decisions before `cutoff`.
fn after_retention(cutoff: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    cutoff + crate::chain::MIN_RETENTION
}

/// A store under `dir` holding five decisions of user `u` (`t1` … `t5`, decided at 10:01 …
/// 10:05, log positions 1 … 5).
async fn five(dir: &tempfile::TempDir) -> EmbeddedStore {
    let store = EmbeddedStore::open(&dir.path().join("five.redb")).unwrap();
    let ops = (1..=5)
        .map(|i| WriteOp::Decision(Arc::new(decision(&format!("t{i}"), "u", i, i as u32))))
        .collect();
    store.write_batch(ops).await.unwrap();
    store
}

mod tamper_evident_log {
    use super::*;
    use crate::chain::ProblemKind;

    fn tamper(store: &EmbeddedStore, f: impl FnOnce(&redb::WriteTransaction)) {
        let txn = store.db.begin_write().unwrap();
        f(&txn);
        txn.commit().unwrap();
    }

    async fn problem(store: &EmbeddedStore) -> (u64, ProblemKind) {
        let report = verify(store).await;
        let p = report.problem.expect("tampering must be detected");
        (p.seq, p.kind)
    }

    #[tokio::test]
    async fn an_intact_log_verifies_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        let report = verify(&store).await;
        assert_eq!((report.verified, report.problem), (5, None));
        drop(store);
        let store = EmbeddedStore::open(&dir.path().join("five.redb")).unwrap();
        let more = vec![WriteOp::Decision(Arc::new(decision("t6", "u", 6, 6)))];
        store.write_batch(more).await.unwrap();
        let again = vec![WriteOp::Decision(Arc::new(decision("t6", "u", 6, 6)))];
        store.write_batch(again).await.unwrap();
        let report = verify(&store).await;
        assert_eq!(
            (report.verified, report.problem),
            (6, None),
            "duplicates add nothing"
        );
        assert_eq!(report.head.len(), 64);
    }

    #[tokio::test]
    async fn an_edited_decision_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        tamper(&store, |txn| {
            let mut t = txn.open_table(DECISIONS).unwrap();
            let mut d = decision("t3", "u", 3, 3);
            d.outcome = sentinel_event::Outcome::Decline;
            let bytes = serde_json::to_vec(&d).unwrap();
            t.insert("t3", bytes.as_slice()).unwrap();
        });
        assert_eq!(problem(&store).await, (3, ProblemKind::Edited));
    }

    #[tokio::test]
    async fn reordered_entries_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        tamper(&store, |txn| {
            let mut t = txn.open_table(LOG).unwrap();
            let two = t.get(2).unwrap().unwrap().value().to_vec();
            let four = t.get(4).unwrap().unwrap().value().to_vec();
            t.insert(2, four.as_slice()).unwrap();
            t.insert(4, two.as_slice()).unwrap();
        });
        assert_eq!(problem(&store).await, (2, ProblemKind::Reordered));
    }

    #[tokio::test]
    async fn removed_entries_and_decisions_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        tamper(&store, |txn| {
            txn.open_table(LOG).unwrap().remove(3).unwrap();
        });
        assert_eq!(problem(&store).await, (3, ProblemKind::Removed));

        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        tamper(&store, |txn| {
            txn.open_table(DECISIONS).unwrap().remove("t2").unwrap();
        });
        assert_eq!(problem(&store).await, (2, ProblemKind::Removed));

        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        tamper(&store, |txn| {
            txn.open_table(LOG).unwrap().remove(5).unwrap();
        });
        assert_eq!(
            problem(&store).await,
            (5, ProblemKind::Removed),
            "the newest entry too"
        );
    }

    /// The hash of log entry `seq` as stored.
    fn entry_hash_at(store: &EmbeddedStore, seq: u64) -> [u8; 32] {
        let txn = store.db.begin_read().unwrap();
        let log = txn.open_table(LOG).unwrap();
        let entry = log.get(seq).unwrap().unwrap();
        crate::chain::decode_entry(entry.value()).unwrap().1
    }

    /// Cuts entries `from..` (and their decisions) off the end and writes `head` as the head.
    fn truncate(store: &EmbeddedStore, from: u64, head: Head) {
        tamper(store, |txn| {
            let mut log = txn.open_table(LOG).unwrap();
            let mut decisions = txn.open_table(DECISIONS).unwrap();
            for seq in from..=5 {
                log.remove(seq).unwrap();
                decisions.remove(format!("t{seq}").as_str()).unwrap();
            }
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(LOG_HEAD, head.encode().as_slice()).unwrap();
        });
    }

    #[tokio::test]
    async fn a_cut_tail_with_a_rewritten_head_is_found() {
        // Only the position rewritten: the recorded hash is not the chain's end.
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        let kept = store.log_head().await.unwrap();
        truncate(
            &store,
            4,
            Head {
                next_seq: 4,
                hash: kept.hash,
            },
        );
        assert_eq!(problem(&store).await, (4, ProblemKind::HeadMismatch));

        // Position and hash rewritten consistently: the store alone cannot tell, the head the
        // operator kept elsewhere can.
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        let kept = store.log_head().await.unwrap();
        let three = entry_hash_at(&store, 3);
        truncate(
            &store,
            4,
            Head {
                next_seq: 4,
                hash: three,
            },
        );
        assert_eq!(verify(&store).await.problem, None);
        let report = verify_expecting(&store, Some(kept.hash)).await;
        let p = report.problem.expect("the kept head is gone");
        assert_eq!(p.kind, ProblemKind::ExpectedHeadMissing);
        // An older kept head the chain still passes through is fine.
        let report = verify_expecting(&store, Some(entry_hash_at(&store, 2))).await;
        assert_eq!(report.problem, None);
        assert_eq!(
            (report.head_seq, report.head),
            (3, crate::chain::hex(&three))
        );
    }

    #[tokio::test]
    async fn an_edited_head_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        tamper(&store, |txn| {
            let mut meta = txn.open_table(META).unwrap();
            let head = Head {
                next_seq: 6,
                hash: [7; 32],
            };
            meta.insert(LOG_HEAD, head.encode().as_slice()).unwrap();
        });
        assert_eq!(problem(&store).await, (6, ProblemKind::HeadMismatch));
    }

    #[tokio::test]
    async fn a_deleted_start_disguised_as_retention_is_found() {
        // The entries and decisions of positions 1 and 2 deleted, and an anchor written as
        // retention would: no declaration in the chain covers it.
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        let two = entry_hash_at(&store, 2);
        tamper(&store, |txn| {
            let mut log = txn.open_table(LOG).unwrap();
            let mut decisions = txn.open_table(DECISIONS).unwrap();
            for seq in 1..=2u64 {
                log.remove(seq).unwrap();
                decisions.remove(format!("t{seq}").as_str()).unwrap();
            }
            let anchor = Head {
                next_seq: 3,
                hash: two,
            };
            let mut meta = txn.open_table(META).unwrap();
            meta.insert(LOG_ANCHOR, anchor.encode().as_slice()).unwrap();
        });
        assert_eq!(problem(&store).await, (3, ProblemKind::UndeclaredDeletion));

        // With a forged declaration appended too: it must claim a cutoff at least the minimum
        // retention before its own time, so decisions younger than that cannot be disguised.
        let young = crate::chain::RetentionDeclaration {
            first_kept: 3,
            anchor_hash: crate::chain::hex(&two),
            cutoff: decision("t2", "u", 2, 2).decided_at + chrono::TimeDelta::minutes(1),
            at: decision("t5", "u", 5, 5).decided_at,
        };
        tamper(&store, |txn| {
            let mut meta = txn.open_table(META).unwrap();
            let mut head = read_head(&meta).unwrap();
            let (seq, entry) = young.append(&mut head);
            txn.open_table(LOG)
                .unwrap()
                .insert(seq, entry.as_slice())
                .unwrap();
            meta.insert(LOG_HEAD, head.encode().as_slice()).unwrap();
        });
        assert_eq!(problem(&store).await, (6, ProblemKind::EarlyDeletion));
    }
}

mod retention {
    use super::*;
    use crate::chain::ProblemKind;

    fn at(minute: u32, second: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, minute, second)
            .unwrap()
    }

    #[tokio::test]
    async fn old_decisions_go_from_every_table_and_the_rest_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("p.redb")).unwrap();
        crate::conformance::retention_deletes_from_every_table_and_the_rest_verifies(&store).await;
    }

    #[tokio::test]
    async fn tampering_after_pruning_is_still_found_and_is_never_pruned_away() {
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        let edit = |store: &EmbeddedStore, txn_id: &str, seq: u64, minute: u32| {
            let txn = store.db.begin_write().unwrap();
            {
                let mut t = txn.open_table(DECISIONS).unwrap();
                let mut d = decision(txn_id, "u", seq, minute);
                d.outcome = sentinel_event::Outcome::Decline;
                let bytes = serde_json::to_vec(&d).unwrap();
                t.insert(txn_id, bytes.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        };
        // An edited old decision stops retention before it: the evidence stays.
        edit(&store, "t2", 2, 2);
        assert_eq!(
            store
                .prune_decided_before(at(4, 30), after_retention(at(4, 30)), 100)
                .await
                .unwrap(),
            1
        );
        let p = verify(&store).await.problem.unwrap();
        assert_eq!((p.seq, p.kind), (2, ProblemKind::Edited));

        // An edit after the pruned prefix is found as before.
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        store
            .prune_decided_before(at(2, 30), after_retention(at(2, 30)), 100)
            .await
            .unwrap();
        edit(&store, "t4", 4, 4);
        let p = verify(&store).await.problem.unwrap();
        assert_eq!((p.seq, p.kind), (4, ProblemKind::Edited));
    }

    #[tokio::test]
    async fn removing_the_retention_anchor_shows_as_removed_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        store
            .prune_decided_before(at(2, 30), after_retention(at(2, 30)), 100)
            .await
            .unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(META).unwrap().remove(LOG_ANCHOR).unwrap();
        txn.commit().unwrap();
        let p = verify(&store).await.problem.unwrap();
        assert_eq!((p.seq, p.kind), (1, ProblemKind::Removed));
    }

    #[tokio::test]
    async fn compaction_keeps_everything_and_gives_back_space() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        {
            let store = EmbeddedStore::open(&path).unwrap();
            let ops = (1..=2_000)
                .map(|i| {
                    WriteOp::Decision(Arc::new(decision(
                        &format!("t{i}"),
                        "u",
                        i,
                        (i % 50) as u32,
                    )))
                })
                .collect();
            store.write_batch(ops).await.unwrap();
            store
                .prune_decided_before(at(59, 0), after_retention(at(59, 0)), 1_900)
                .await
                .unwrap();
        }
        let (before, after) = EmbeddedStore::compact(&path).unwrap();
        assert!(after < before, "{before} -> {after}");
        let store = EmbeddedStore::open(&path).unwrap();
        assert_eq!(store.decision_count().await.unwrap(), 100);
        assert_eq!(verify(&store).await.problem, None);
    }
}

/// Two writers (the node's writer and a peer's batch through the store host) commit at the same
/// time: every decision joins the chain exactly once, and the log verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_extend_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("race.redb")).unwrap();
    const WRITERS: u64 = 8;
    const BATCHES: u64 = 40;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES {
                    let ops = (0..3)
                        .map(|i| {
                            let n = (w * BATCHES + b) * 3 + i;
                            let user = format!("u{w}");
                            WriteOp::Decision(Arc::new(decision(&format!("t{n}"), &user, n, 0)))
                        })
                        .collect();
                    store.write_batch(ops).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let report = verify(&store).await;
    assert_eq!(report.problem, None, "{report:?}");
    assert_eq!(report.verified, WRITERS * BATCHES * 3);
}
