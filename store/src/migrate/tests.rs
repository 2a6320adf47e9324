use super::*;
use crate::conformance::decision;
use crate::{DecisionLog, RecordKind, RecordWrite, UserSnapshot, WriteOp};
use chrono::TimeZone;
use std::sync::Arc;

/// A store's options with a 1 MiB cache: tests keep memory small.
fn small_cache() -> crate::EmbeddedOptions {
    crate::EmbeddedOptions {
        cache_bytes: 1 << 20,
        ..Default::default()
    }
}

/// A year before the conformance decisions' time: retention may prune these as of today.
const SHIFT: chrono::TimeDelta = chrono::TimeDelta::days(365);

/// A store on `engine` in `dir` with decisions of two users, the oldest pruned by retention, a
/// snapshot and catalogue records.
async fn filled(dir: &Path, engine: EmbeddedEngine) -> Arc<dyn DecisionLog> {
    let store = crate::open_embedded(dir, engine, small_cache()).unwrap();
    let mut ops: Vec<WriteOp> = (1..=CHUNK as u64 / 3)
        .map(|i| {
            let user = if i % 2 == 0 { "even" } else { "odd" };
            let mut d = decision(&format!("t{i}"), user, i, (i / 50 % 60) as u32);
            d.decided_at -= SHIFT;
            WriteOp::Decision(Arc::new(d))
        })
        .collect();
    ops.push(WriteOp::Snapshot(UserSnapshot {
        user_id: "odd".into(),
        seq: 9,
        state: b"state".to_vec(),
    }));
    store.write_batch(ops).await.unwrap();
    store
        .put_records(vec![
            RecordWrite {
                kind: RecordKind::Label,
                key: "t1".into(),
                value: Some(b"fraud".to_vec()),
            },
            RecordWrite {
                kind: RecordKind::RuleHead,
                key: "velocity".into(),
                value: Some(b"3".to_vec()),
            },
        ])
        .await
        .unwrap();
    let cutoff = chrono::Utc
        .with_ymd_and_hms(2026, 11, 22, 10, 0, 30)
        .unwrap()
        - SHIFT;
    let pruned = store
        .prune_decided_before(cutoff, cutoff + chain::MIN_RETENTION, 100)
        .await
        .unwrap();
    assert!(pruned > 0);
    store
}

/// What a node reads from a store, gathered for comparison.
async fn contents(store: &dyn DecisionLog) -> impl PartialEq + std::fmt::Debug {
    let json = |ds: Vec<sentinel_event::Decision>| serde_json::to_string(&ds).unwrap();
    let day = crate::day_of(chrono::Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap() - SHIFT);
    (
        store.log_head().await.unwrap(),
        store.decision_count().await.unwrap(),
        json(store.decisions_for_user("even", 0, 100_000).await.unwrap()),
        json(store.decisions_for_user("odd", 0, 100_000).await.unwrap()),
        json(store.decisions_by_day(day, None, 100_000).await.unwrap()),
        // Kept in fjall's day index, read from the decisions on redb.
        store.day_entries(day, None, 100_000).await.unwrap(),
        store.snapshot("odd").await.unwrap(),
        store.record(RecordKind::Label, "t1").await.unwrap(),
        store
            .scan_records(RecordKind::RuleHead, "", None, 10)
            .await
            .unwrap(),
    )
}

/// redb → lsm → redb: every table arrives as it was (same decisions by every index, same
/// snapshot and records, same log head, count and retention anchor, so the chain verifies
/// against the old head), the old store is set aside, and the new one goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_moves_between_engines_and_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let original = filled(dir.path(), EmbeddedEngine::Redb).await;
    let before = contents(original.as_ref()).await;
    drop(original);

    let mut reported = 0;
    let there = migrate(dir.path(), EmbeddedEngine::Lsm, |rows| reported = rows)
        .await
        .unwrap();
    assert_eq!(reported, there.rows);
    assert!(there.rows > CHUNK as u64, "more than one chunk: {there:?}");
    assert_eq!(EmbeddedEngine::found_in(dir.path()), [EmbeddedEngine::Lsm]);
    assert!(dir.path().join("sentinel.redb.migrated").exists());
    let moved = crate::open_existing_embedded(dir.path()).unwrap();
    assert_eq!(contents(moved.as_ref()).await, before);
    assert!(moved.may_have_history("even") && moved.may_have_history("odd"));
    drop(moved);

    std::fs::remove_file(dir.path().join("sentinel.redb.migrated")).unwrap();
    let back = migrate(dir.path(), EmbeddedEngine::Redb, |_| {})
        .await
        .unwrap();
    assert_eq!(back.head, there.head);
    let returned = crate::open_existing_embedded(dir.path()).unwrap();
    assert_eq!(contents(returned.as_ref()).await, before);
    let more = WriteOp::Decision(Arc::new(decision("next", "even", 1_000_000, 0)));
    returned.write_batch(vec![more]).await.unwrap();
    let report = returned
        .verify_log(chain::VerifyOptions {
            expect_head: Some(there.head.hash),
            now: chrono::Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(report.problem, None);
}

/// Nothing to migrate, or a store already on the target engine: refused, nothing touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_never_overwrites_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let err = migrate(dir.path(), EmbeddedEngine::Lsm, |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no redb store"), "{err}");
    drop(filled(dir.path(), EmbeddedEngine::Redb).await);
    drop(crate::open_embedded(dir.path(), EmbeddedEngine::Lsm, small_cache()).unwrap());
    let err = migrate(dir.path(), EmbeddedEngine::Lsm, |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let mut found = EmbeddedEngine::found_in(dir.path());
    found.sort_by_key(|e| e.as_str());
    assert_eq!(found, [EmbeddedEngine::Lsm, EmbeddedEngine::Redb]);
    let err = crate::open_existing_embedded(dir.path()).err().unwrap();
    assert!(err.to_string().contains("both"), "{err}");
}
