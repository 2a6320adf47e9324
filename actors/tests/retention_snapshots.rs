//! What retention's snapshotting does when a user's state cannot be read back: an undecodable
//! record skips that user (up to a limit), any other store error stops the pass before
//! anything is written.

mod support;

use sentinel_actors::{snapshot_uncovered, Covered};
use sentinel_store::conformance::decision;
use sentinel_store::{EmbeddedStore, Store, StoreError, WriteOp};
use std::sync::Arc;

/// An embedded store holding decisions 1 and 2 of `ok` and decision 1 of `bad` and `down`,
/// whose restore reads fail for `bad` (an undecodable record) and `down` (the backend).
async fn store_failing_two_users(dir: &tempfile::TempDir) -> support::HookedStore {
    let inner = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    let ops = [("ok", 1), ("ok", 2), ("bad", 1), ("down", 1)]
        .iter()
        .enumerate()
        .map(|(i, (user, seq))| {
            WriteOp::Decision(Arc::new(decision(&format!("t{i}"), user, *seq, 0)))
        })
        .collect();
    inner.write_batch(ops).await.unwrap();
    support::HookedStore {
        inner,
        before_write: Box::new(|_| Box::pin(async { Ok(()) })),
        before_restore_read: Some(Box::new(|user| match user {
            "bad" => Err(StoreError::Corrupt {
                table: "decisions_by_txn",
                reason: "injected".into(),
            }),
            "down" => Err(StoreError::Backend("injected".into())),
            _ => Ok(()),
        })),
    }
}

#[tokio::test]
async fn an_undecodable_user_is_skipped_and_counted_and_the_others_are_snapshotted() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_failing_two_users(&dir).await;
    let users = [("bad".to_owned(), 1), ("ok".to_owned(), 2)];
    let covered = snapshot_uncovered(&store, &users, 0, 1).await.unwrap();
    assert_eq!(
        covered,
        Covered {
            written: 1,
            failed: 1
        }
    );
    let ok = store
        .inner
        .snapshot("ok")
        .await
        .unwrap()
        .expect("ok's snapshot");
    assert_eq!(ok.seq, 2);
    assert_eq!(store.inner.snapshot("bad").await.unwrap(), None);
}

#[tokio::test]
async fn a_backend_error_stops_the_snapshotting_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_failing_two_users(&dir).await;
    let users = [("ok".to_owned(), 2), ("down".to_owned(), 1)];
    let stopped = snapshot_uncovered(&store, &users, 0, 1).await;
    assert!(
        matches!(stopped, Err(StoreError::Backend(_))),
        "{stopped:?}"
    );
    // The pass is retried whole later; nothing of this one was written.
    assert_eq!(store.inner.snapshot("ok").await.unwrap(), None);
}

#[tokio::test]
async fn more_undecodable_users_than_allowed_stop_the_snapshotting_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_failing_two_users(&dir).await;
    let users = [("ok".to_owned(), 2), ("bad".to_owned(), 1)];
    let stopped = snapshot_uncovered(&store, &users, 0, 0).await;
    assert!(
        matches!(&stopped, Err(StoreError::Corrupt { reason, .. }) if reason.contains("user bad")),
        "{stopped:?}"
    );
    assert_eq!(store.inner.snapshot("ok").await.unwrap(), None);
}
