//! A store for router tests that watch how handlers use the store.

use async_trait::async_trait;
use sentinel_event::Decision;
use sentinel_store::{
    DayCursor, EmbeddedStore, RecordGuard, RecordKind, RecordWrite, RestorePoint, Store,
    StoreError, UserSnapshot, WriteOp, WriteResult,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The embedded store, counting the work handlers run in its read lane
/// ([`Store::run_read_work`]), the API key records read and the writes (batches and records);
/// after [`WatchedStore::fail_records`] it reports every [`WriteOp::Records`] of a batch
/// failed and writes the rest, as ScyllaDB does when a record's statement fails; while
/// [`WatchedStore::hold_answers`] is held, writes of idempotency records wait; with
/// `refuse_history`, it refuses every read of a user's (or a day's) decision history, so a
/// handler that scans history fails.
pub(crate) struct WatchedStore {
    inner: EmbeddedStore,
    refuse_history: bool,
    read_work: AtomicUsize,
    key_reads: AtomicUsize,
    writes: AtomicUsize,
    fail_records: AtomicBool,
    answers_held: Arc<tokio::sync::RwLock<()>>,
}

impl WatchedStore {
    pub(crate) fn open(dir: &tempfile::TempDir, refuse_history: bool) -> Arc<Self> {
        Arc::new(WatchedStore {
            inner: EmbeddedStore::open(&dir.path().join("s.redb")).unwrap(),
            refuse_history,
            read_work: AtomicUsize::new(0),
            key_reads: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            fail_records: AtomicBool::new(false),
            answers_held: Arc::default(),
        })
    }

    /// How many times work ran in the read lane.
    pub(crate) fn read_work(&self) -> usize {
        self.read_work.load(Ordering::SeqCst)
    }

    /// How many times a stored API key was read.
    pub(crate) fn key_reads(&self) -> usize {
        self.key_reads.load(Ordering::SeqCst)
    }

    /// How many writes were made ([`Store::write_batch`], [`Store::put_records`]).
    pub(crate) fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// From now on, every batch's records fail alone.
    pub(crate) fn fail_records(&self) {
        self.fail_records.store(true, Ordering::SeqCst);
    }

    /// Until the guard is dropped, every write holding an idempotency record waits.
    pub(crate) async fn hold_answers(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        Arc::clone(&self.answers_held).write_owned().await
    }

    /// Waits while answers are held, if `writes` hold one.
    async fn answers_pass(&self, writes: &[RecordWrite]) {
        if writes.iter().any(|w| w.kind == RecordKind::Idempotency) {
            let _pass = self.answers_held.read().await;
        }
    }

    fn history(&self) -> Result<(), StoreError> {
        if self.refuse_history {
            return Err(StoreError::Backend(
                "this test forbids scanning decision history".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for WatchedStore {
    async fn run_read_work(&self, work: Box<dyn FnOnce() + Send>) -> Result<(), StoreError> {
        self.read_work.fetch_add(1, Ordering::SeqCst);
        self.inner.run_read_work(work).await
    }
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        for op in &ops {
            if let WriteOp::Records(writes) = op {
                self.answers_pass(writes).await;
            }
        }
        if !self.fail_records.load(Ordering::SeqCst) {
            return self.inner.write_batch(ops).await;
        }
        let records: Vec<bool> = ops
            .iter()
            .map(|op| matches!(op, WriteOp::Records(_)))
            .collect();
        let rest = ops
            .into_iter()
            .filter(|op| !matches!(op, WriteOp::Records(_)))
            .collect();
        let mut written = self.inner.write_batch(rest).await?.into_iter();
        Ok(records
            .into_iter()
            .map(|failed| match failed {
                true => WriteResult::Failed("this test fails records".into()),
                false => written.next().expect("a result per op written"),
            })
            .collect())
    }
    async fn decision(&self, transaction_id: &str) -> Result<Option<Decision>, StoreError> {
        self.inner.decision(transaction_id).await
    }
    async fn decisions_for_user(
        &self,
        user_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.history()?;
        self.inner
            .decisions_for_user(user_id, after_seq, limit)
            .await
    }
    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.history()?;
        self.inner.decisions_by_day(day, after, limit).await
    }
    async fn snapshot(&self, user_id: &str) -> Result<Option<UserSnapshot>, StoreError> {
        self.inner.snapshot(user_id).await
    }
    async fn restore_point(&self, user_id: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        self.history()?;
        self.inner.restore_point(user_id, limit).await
    }
    async fn decision_count(&self) -> Result<u64, StoreError> {
        self.inner.decision_count().await
    }
    async fn put_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.answers_pass(&writes).await;
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
        if kind == RecordKind::ApiKey {
            self.key_reads.fetch_add(1, Ordering::SeqCst);
        }
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
