//! A decision whose batch fails must not reach the store through a snapshot: the user's next
//! actor restores, the retried event is decided once, and nothing stays stuck.

mod support;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::PolicyDef;
use sentinel_event::{DecisionError, Transaction};
use sentinel_store::{EmbeddedStore, Store, StoreError, WriteOp, Writer, WriterConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn scorer(store: &Arc<dyn Store>) -> Scorer {
    let writer = Writer::start(Arc::clone(store), WriterConfig::default());
    let policy = Arc::new(PolicyDef::seed().compile().unwrap());
    let config = ScorerConfig {
        shards: 2,
        passivate_after: Duration::from_secs(3600),
        lateness: Duration::from_secs(300),
        snapshot_every: 1_000,
        ..ScorerConfig::default()
    };
    Scorer::start(writer, policy, config).await.unwrap()
}

fn txn(id: &str, minute: u32) -> Arc<Transaction> {
    Arc::new(Transaction {
        transaction_id: id.into(),
        user_id: "fb-user".into(),
        card_id: None,
        device_id: None,
        ip: None,
        amount: Decimal::new(1000 + i64::from(minute), 2),
        currency: "EUR".into(),
        merchant_id: None,
        merchant_name: None,
        merchant_category: None,
        channel: None,
        kind: None,
        location: None,
        timestamp: Utc.with_ymd_and_hms(2026, 11, 20, 12, minute, 0).unwrap(),
        metadata: None,
        base: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_never_reaches_the_store_through_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // The one batch holding the decision of fb-2 fails.
    let failed = AtomicBool::new(false);
    let store: Arc<dyn Store> = Arc::new(support::HookedStore {
        inner: EmbeddedStore::open(&dir.path().join("s.redb")).unwrap(),
        before_write: Box::new(move |ops| {
            let has_it = ops.iter().any(|op| match op {
                WriteOp::Decision(d) | WriteOp::DecisionWithRecords(d, _) => {
                    d.transaction_id == "fb-2"
                }
                WriteOp::Snapshot(_) | WriteOp::Records(_) => false,
            });
            let fail = has_it && !failed.swap(true, Ordering::SeqCst);
            Box::pin(async move {
                if fail {
                    return Err(StoreError::Backend("injected batch failure".into()));
                }
                Ok(())
            })
        }),
        before_restore_read: None,
    });
    let first = scorer(&store).await;
    first.score(txn("fb-1", 1), Instant::now()).await.unwrap();
    match first.score(txn("fb-2", 2), Instant::now()).await {
        Err(DecisionError::Store(_)) => {}
        other => panic!("the injected failure was not reported: {other:?}"),
    }
    let view = first.inspect("fb-user").await.unwrap();
    assert_eq!(view.seq, 1, "the live view shows only what the store holds");
    // Passivation snapshots the user, whose state has folded in fb-2 (never stored).
    assert_eq!(first.shutdown().await, 1);
    let snapshot = store.snapshot("fb-user").await.unwrap();
    assert!(
        snapshot.is_none_or(|s| s.seq < 2),
        "a snapshot covering the unstored fb-2 became durable"
    );

    // A restarted node: the caller's retry of fb-2 and the next event are decided once each.
    let second = scorer(&store).await;
    let retried = second.score(txn("fb-2", 2), Instant::now()).await.unwrap();
    assert!(!retried.duplicate);
    let next = second.score(txn("fb-3", 3), Instant::now()).await.unwrap();
    assert_eq!(next.decision.user_seq, 3);
    let stored = store.decisions_for_user("fb-user", 0, 100).await.unwrap();
    let ids: Vec<&str> = stored.iter().map(|d| d.transaction_id.as_str()).collect();
    assert_eq!(ids, ["fb-1", "fb-2", "fb-3"]);
}
