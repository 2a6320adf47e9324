//! A decision whose batch fails must not reach the store through a snapshot: the user's next
//! actor restores, the retried event is decided once, and nothing stays stuck.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::PolicyDef;
use sentinel_event::{Decision, DecisionError, Transaction};
use sentinel_store::{
    DayCursor, EmbeddedStore, RecordGuard, RecordKind, RecordWrite, RestorePoint, Store,
    StoreError, UserSnapshot, WriteOp, WriteResult, Writer, WriterConfig,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The embedded store, except that one batch holding the decision of `fail_txn` fails.
struct FailOnce {
    inner: EmbeddedStore,
    fail_txn: String,
    failed: AtomicBool,
}

#[async_trait]
impl Store for FailOnce {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        let has_it = ops.iter().any(|op| match op {
            WriteOp::Decision(d) | WriteOp::DecisionWithRecords(d, _) => {
                d.transaction_id == self.fail_txn
            }
            WriteOp::Snapshot(_) => false,
        });
        if has_it && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Backend("injected batch failure".into()));
        }
        self.inner.write_batch(ops).await
    }
    async fn decision(&self, id: &str) -> Result<Option<Decision>, StoreError> {
        self.inner.decision(id).await
    }
    async fn decisions_for_user(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.inner.decisions_for_user(user, after, limit).await
    }
    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.inner.decisions_by_day(day, after, limit).await
    }
    async fn snapshot(&self, user: &str) -> Result<Option<UserSnapshot>, StoreError> {
        self.inner.snapshot(user).await
    }
    async fn restore_point(&self, user: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        self.inner.restore_point(user, limit).await
    }
    async fn decision_count(&self) -> Result<u64, StoreError> {
        self.inner.decision_count().await
    }
    async fn put_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.inner.put_records(writes).await
    }
    async fn put_records_if(
        &self,
        guard: RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        self.inner.put_records_if(guard, writes).await
    }
    async fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.record(kind, key).await
    }
    async fn scan_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan_records(kind, prefix, after, limit).await
    }
}

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
    let store: Arc<dyn Store> = Arc::new(FailOnce {
        inner: EmbeddedStore::open(&dir.path().join("s.redb")).unwrap(),
        fail_txn: "fb-2".into(),
        failed: AtomicBool::new(false),
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
