use super::*;
use crate::conformance::{self, decision};

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

mod tamper_evident_log {
    use super::*;
    use crate::chain::ProblemKind;

    async fn five(dir: &tempfile::TempDir) -> EmbeddedStore {
        let store = EmbeddedStore::open(&dir.path().join("log.redb")).unwrap();
        let ops = (1..=5)
            .map(|i| WriteOp::Decision(Arc::new(decision(&format!("t{i}"), "u", i, i as u32))))
            .collect();
        store.write_batch(ops).await.unwrap();
        store
    }

    fn tamper(store: &EmbeddedStore, f: impl FnOnce(&redb::WriteTransaction)) {
        let txn = store.db.begin_write().unwrap();
        f(&txn);
        txn.commit().unwrap();
    }

    async fn problem(store: &EmbeddedStore) -> (u64, ProblemKind) {
        let report = store.verify_log().await.unwrap();
        let p = report.problem.expect("tampering must be detected");
        (p.seq, p.kind)
    }

    #[tokio::test]
    async fn an_intact_log_verifies_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = five(&dir).await;
        let report = store.verify_log().await.unwrap();
        assert_eq!((report.verified, report.problem), (5, None));
        drop(store);
        let store = EmbeddedStore::open(&dir.path().join("log.redb")).unwrap();
        let more = vec![WriteOp::Decision(Arc::new(decision("t6", "u", 6, 6)))];
        store.write_batch(more).await.unwrap();
        let again = vec![WriteOp::Decision(Arc::new(decision("t6", "u", 6, 6)))];
        store.write_batch(again).await.unwrap();
        let report = store.verify_log().await.unwrap();
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
}
