use super::*;
use crate::chain::ProblemKind;
use crate::conformance::{self, decision};
use chrono::TimeZone;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lsm_store_passes_the_conformance_suite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance::run_all(|| {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LsmStore::open(&dir.path().join("c.lsm")).unwrap());
        dirs.lock().unwrap().push(dir);
        async move { store }
    })
    .await;
}

fn at(minute: u32, second: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 22, 10, minute, second)
        .unwrap()
}

/// The earliest time a retention pass may delete decisions before `cutoff`.
fn after_retention(cutoff: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    cutoff + chain::MIN_RETENTION
}

async fn verify(store: &LsmStore) -> LogReport {
    let now = chrono::Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    store
        .verify_log(VerifyOptions {
            expect_head: None,
            now,
        })
        .await
        .unwrap()
}

/// Decisions `t{from}` … `t{to}` of user `u`, decided at 10:`i` (log positions in order).
fn decisions(from: u64, to: u64) -> Vec<WriteOp> {
    (from..=to)
        .map(|i| WriteOp::Decision(Arc::new(decision(&format!("t{i}"), "u", i, i as u32))))
        .collect()
}

/// Everything a node needs after a restart is there after reopening: decisions by every index,
/// snapshots, catalogue records, the count, the log's head, and the users with history (one
/// with decisions only, one with a snapshot only, one whose id holds a NUL byte and a prefix of
/// another's).
#[tokio::test]
async fn a_reopened_store_has_everything_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.lsm");
    let head = {
        let store = LsmStore::open(&path).unwrap();
        let mut ops = decisions(1, 3);
        for (i, user) in ["ab", "ab\0c", "a"].into_iter().enumerate() {
            let txn = format!("x{i}");
            ops.push(WriteOp::Decision(Arc::new(decision(&txn, user, 1, 30))));
        }
        ops.push(WriteOp::Snapshot(UserSnapshot {
            user_id: "only-snapshot".into(),
            seq: 42,
            state: b"state".to_vec(),
        }));
        store.write_batch(ops).await.unwrap();
        store
            .put_records(vec![RecordWrite {
                kind: RecordKind::Label,
                key: "t1".into(),
                value: Some(b"fraud".to_vec()),
            }])
            .await
            .unwrap();
        store.log_head().await.unwrap()
    };
    let store = LsmStore::open(&path).unwrap();
    assert_eq!(store.log_head().await.unwrap(), head);
    assert_eq!(head.next_seq, 7);
    assert_eq!(store.decision_count().await.unwrap(), 6);
    assert_eq!(store.inner.history.len(), 5);
    assert!(!store.may_have_history("nobody"));
    let snap = store.snapshot("only-snapshot").await.unwrap().unwrap();
    assert_eq!((snap.seq, snap.state.as_slice()), (42, b"state".as_slice()));
    for (user, txn) in [("ab", "x0"), ("ab\0c", "x1"), ("a", "x2")] {
        let found = store.decisions_for_user(user, 0, 10).await.unwrap();
        let ids: Vec<_> = found.iter().map(|d| d.transaction_id.as_str()).collect();
        assert_eq!(ids, [txn], "{user:?}");
    }
    let point = store.restore_point("u", 2).await.unwrap();
    let ids: Vec<_> = point.decisions.iter().map(|d| &d.transaction_id).collect();
    assert_eq!(ids, ["t1", "t2"]);
    let label = store.record(RecordKind::Label, "t1").await.unwrap();
    assert_eq!(label.as_deref(), Some(b"fraud".as_slice()));
    assert_eq!(verify(&store).await.problem, None);
    // The chain goes on from the reopened head.
    store.write_batch(decisions(4, 4)).await.unwrap();
    assert_eq!(verify(&store).await.verified, 7);
}

/// The day index pages in decision-time order whatever the storing order, and a cursor
/// resumes after exactly the position it names.
#[tokio::test]
async fn day_pages_follow_decision_time_and_resume_after_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("d.lsm")).unwrap();
    let early = decision("z-early", "u", 1, 5);
    let late = decision("a-late", "u", 2, 50);
    let mut next_day = decision("next-day", "u", 3, 5);
    next_day.decided_at += chrono::Duration::days(1);
    let ops = vec![
        WriteOp::Decision(Arc::new(late.clone())),
        WriteOp::Decision(Arc::new(early.clone())),
        WriteOp::Decision(Arc::new(next_day)),
    ];
    store.write_batch(ops).await.unwrap();
    let day = crate::day_of(early.decided_at);
    let page = store.decision_keys_by_day(day, None, 10).await.unwrap();
    let ids: Vec<_> = page.iter().map(|c| c.transaction_id.as_str()).collect();
    assert_eq!(ids, ["z-early", "a-late"]);
    assert_eq!(page[0].decided_us, early.decided_at.timestamp_micros());
    let rest = store
        .decisions_by_day(day, Some(page[0].clone()), 10)
        .await
        .unwrap();
    let ids: Vec<_> = rest.iter().map(|d| d.transaction_id.as_str()).collect();
    assert_eq!(ids, ["a-late"]);
}

/// A decision's entities are kept in its day-index entry: read from there without its record
/// (here removed under the store, which no reader ever sees otherwise).
#[tokio::test]
async fn day_entries_are_read_from_the_day_index_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("e.lsm")).unwrap();
    let mut d = decision("t-entities", "u", 1, 5);
    let mut event = (*d.event).clone();
    event.merchant_id = Some("m-7".into());
    d.event = Arc::new(event);
    store
        .write_batch(vec![WriteOp::Decision(Arc::new(d.clone()))])
        .await
        .unwrap();
    store.inner.decisions.remove("t-entities").unwrap();
    let day = crate::day_of(d.decided_at);
    assert!(store
        .decisions_by_day(day, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.day_entries(day, None, 10).await.unwrap(),
        [DayEntry::of(&d)]
    );
}

/// A day-index key whose decision is gone (an entry of an older release, its record removed
/// under the store) is skipped without cutting the page short: a short page reads as the end
/// of the day to the pass that pages through it.
#[tokio::test]
async fn a_key_without_its_decision_does_not_end_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("o.lsm")).unwrap();
    store.write_batch(decisions(1, 3)).await.unwrap();
    let first = decision("t1", "u", 1, 1);
    let day = crate::day_of(first.decided_at);
    let orphan_us = first.decided_at.timestamp_micros() + 1;
    let orphan = day_key(day, orphan_us, "t-orphan");
    store.inner.by_day.insert(orphan, []).unwrap();
    let page = store.day_entries(day, None, 2).await.unwrap();
    let ids: Vec<_> = page
        .iter()
        .map(|e| e.position.transaction_id.as_str())
        .collect();
    assert_eq!(ids, ["t1", "t2"]);
}

/// A damaged day-index entry is read from its decision, not an error that would stop the
/// start-up pass.
#[tokio::test]
async fn a_damaged_entry_is_read_from_its_decision() {
    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("x.lsm")).unwrap();
    store.write_batch(decisions(1, 2)).await.unwrap();
    let first = decision("t1", "u", 1, 1);
    store
        .inner
        .by_day
        .insert(day_key_of(&first), b"\x09garbage")
        .unwrap();
    let day = crate::day_of(first.decided_at);
    let entries = store.day_entries(day, None, 10).await.unwrap();
    assert_eq!(entries[0], DayEntry::of(&first));
    assert_eq!(entries.len(), 2);
}

/// A store migrated from redb (whose day index keeps no entities) has them in its day index
/// all the same: read without the decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_migrated_from_redb_keeps_the_entities_in_its_day_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut kept = decision("t-kept", "u", 1, 5);
    let mut event = (*kept.event).clone();
    event.device_id = Some("d-9".into());
    kept.event = Arc::new(event);
    {
        let redb = crate::EmbeddedStore::open(&crate::EmbeddedEngine::Redb.path(dir.path()));
        let ops = vec![WriteOp::Decision(Arc::new(kept.clone()))];
        redb.unwrap().write_batch(ops).await.unwrap();
    }
    crate::migrate(dir.path(), crate::EmbeddedEngine::Lsm, |_| {})
        .await
        .unwrap();
    let store = LsmStore::open(&crate::EmbeddedEngine::Lsm.path(dir.path())).unwrap();
    store.inner.decisions.remove("t-kept").unwrap();
    let day = crate::day_of(kept.decided_at);
    assert_eq!(
        store.day_entries(day, None, 10).await.unwrap(),
        [DayEntry::of(&kept)]
    );
}

/// Retention on this engine (the shared check), and what it stored survives reopening.
#[tokio::test]
async fn old_decisions_go_from_every_table_and_the_rest_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.lsm");
    let store = LsmStore::open(&path).unwrap();
    conformance::retention_deletes_from_every_table_and_the_rest_verifies(&store).await;
    drop(store);
    // The anchor and the count are stored, not only remembered.
    let store = LsmStore::open(&path).unwrap();
    assert_eq!(store.decision_count().await.unwrap(), 3);
    let report = verify(&store).await;
    assert_eq!(
        (report.first_seq, report.verified, report.problem),
        (4, 5, None)
    );
}

/// Edits made behind the store's back (a decision rewritten, a log entry deleted, the
/// retention anchor removed) are found, and retention never prunes the evidence away.
#[tokio::test]
async fn tampering_is_found_and_never_pruned_away() {
    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("t.lsm")).unwrap();
    store.write_batch(decisions(1, 5)).await.unwrap();
    let mut edited = decision("t2", "u", 2, 2);
    edited.outcome = sentinel_event::Outcome::Decline;
    let bytes = serde_json::to_vec(&edited).unwrap();
    store.inner.decisions.insert("t2", bytes).unwrap();
    let p = verify(&store).await.problem.unwrap();
    assert_eq!((p.seq, p.kind), (2, ProblemKind::Edited));
    // Retention stops before the edited decision.
    let pruned = store
        .prune_decided_before(at(4, 30), after_retention(at(4, 30)), 100)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let p = verify(&store).await.problem.unwrap();
    assert_eq!((p.seq, p.kind), (2, ProblemKind::Edited));

    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("r.lsm")).unwrap();
    store.write_batch(decisions(1, 5)).await.unwrap();
    store.inner.log.remove(3u64.to_be_bytes()).unwrap();
    let p = verify(&store).await.problem.unwrap();
    assert_eq!(p.seq, 3);

    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("a.lsm")).unwrap();
    store.write_batch(decisions(1, 5)).await.unwrap();
    store
        .prune_decided_before(at(2, 30), after_retention(at(2, 30)), 100)
        .await
        .unwrap();
    store.inner.meta.remove(LOG_ANCHOR).unwrap();
    let p = verify(&store).await.problem.unwrap();
    assert_eq!((p.seq, p.kind), (1, ProblemKind::Removed));
}

/// Two writers commit at the same time: every decision joins the chain exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_extend_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("race.lsm")).unwrap();
    let tasks: Vec<_> = (0..8u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..40u64 {
                    let ops = (0..3)
                        .map(|i| {
                            let n = (w * 40 + b) * 3 + i;
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
    assert_eq!((report.verified, report.problem), (960, None));
    assert_eq!(store.decision_count().await.unwrap(), 960);
}

#[tokio::test]
async fn compaction_keeps_everything_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.lsm");
    {
        let store = LsmStore::open(&path).unwrap();
        let ops = (1..=2_000)
            .map(|i| {
                let d = decision(&format!("t{i}"), "u", i, (i % 50) as u32);
                WriteOp::Decision(Arc::new(d))
            })
            .collect();
        store.write_batch(ops).await.unwrap();
        store
            .prune_decided_before(at(59, 0), after_retention(at(59, 0)), 1_900)
            .await
            .unwrap();
    }
    LsmStore::compact(&path).unwrap();
    let store = LsmStore::open(&path).unwrap();
    assert_eq!(store.decision_count().await.unwrap(), 100);
    assert_eq!(verify(&store).await.problem, None);
}

/// A batch holding the same transaction twice (a producer's retry landing in the same group
/// commit) stores the first and answers the second with it.
#[tokio::test]
async fn a_transaction_twice_in_one_batch_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = LsmStore::open(&dir.path().join("dup.lsm")).unwrap();
    let first = Arc::new(decision("t1", "u", 1, 1));
    let mut retry = decision("t1", "u", 2, 2);
    retry.outcome = sentinel_event::Outcome::Decline;
    let results = store
        .write_batch(vec![
            WriteOp::Decision(Arc::clone(&first)),
            WriteOp::Decision(Arc::new(retry)),
        ])
        .await
        .unwrap();
    assert!(matches!(results[0], WriteResult::Stored));
    match &results[1] {
        WriteResult::AlreadyDecided(d) => assert_eq!(d.outcome, first.outcome),
        other => panic!("the retry was {other:?}"),
    }
    assert_eq!(store.decision_count().await.unwrap(), 1);
    assert_eq!(store.decisions_for_user("u", 0, 10).await.unwrap().len(), 1);
    assert_eq!(verify(&store).await.verified, 1);
}
