use super::*;
use crate::conformance::decision;
use crate::EmbeddedStore;

/// Records the size of every committed batch.
#[derive(Default)]
struct BatchSizes(Mutex<Vec<usize>>);

impl CommitObserver for BatchSizes {
    fn committed(&self, decisions: &[Arc<Decision>]) {
        self.0.lock().unwrap().push(decisions.len());
    }
}

/// The first batch a writer commits when `senders` tasks each submit one decision, the way
/// user actors do when one Kafka fetch reaches them: the first submit wakes the idle writer
/// while the others have yet to run.
async fn first_batch_of_a_burst(gather_yields: usize, senders: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("w.redb")).unwrap());
    let sizes = Arc::new(BatchSizes::default());
    let hooks = WriterHooks {
        alerts: None,
        observer: Some(Arc::clone(&sizes) as Arc<dyn CommitObserver>),
    };
    let config = WriterConfig {
        gather_yields,
        ..WriterConfig::default()
    };
    let writer = Writer::start_with(store, config, hooks);
    // Let the writer reach its idle wait.
    tokio::task::yield_now().await;
    let mut acks = Vec::new();
    for i in 0..senders {
        let (ack, done) = oneshot::channel();
        let d = Arc::new(decision(&format!("t{i}"), &format!("u{i}"), 1, 0));
        writer.submit_decision(d, ack).await.unwrap();
        acks.push(done);
        // The next user actor runs only after the scheduler's other ready tasks (the writer).
        tokio::task::yield_now().await;
    }
    for done in acks {
        done.await.unwrap().unwrap();
    }
    let sizes = sizes.0.lock().unwrap();
    assert_eq!(sizes.iter().sum::<usize>(), senders, "{sizes:?}");
    sizes[0]
}

/// Decisions arriving together at an idle writer share one durable commit: the writer yields
/// to let the other submitters run before committing. Without gathering, the first decision
/// of the burst is committed alone.
#[tokio::test(flavor = "current_thread")]
async fn decisions_arriving_together_at_an_idle_writer_share_one_commit() {
    assert_eq!(first_batch_of_a_burst(16, 6).await, 6);
    assert_eq!(
        first_batch_of_a_burst(0, 6).await,
        1,
        "the control: no gathering"
    );
    // Gathering is bounded: a steady trickle is committed after `gather_yields` yields.
    assert_eq!(first_batch_of_a_burst(3, 10).await, 4);
}

/// A decision the store answers with an earlier one of its transaction id marks its user
/// stale unless that earlier one is the same user's at the same position: a copy stored again
/// (as `sentinel alerts` does when it re-reads its topic) leaves nothing ahead of the store.
#[tokio::test(flavor = "current_thread")]
async fn only_a_different_earlier_decision_marks_its_user_stale() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("w.redb")).unwrap());
    let writer = Writer::start(store, WriterConfig::default());
    let store_one = |id: &str, user: &str, seq: u64| {
        let (ack, done) = oneshot::channel();
        let d = Arc::new(decision(id, user, seq, 0));
        let writer = writer.clone();
        async move {
            writer.submit_decision(d, ack).await.unwrap();
            done.await.unwrap().unwrap()
        }
    };
    assert!(!store_one("t", "u", 1).await.duplicate);
    assert!(store_one("t", "u", 1).await.duplicate);
    assert!(!writer.is_stale("u"), "a copy of the stored decision");
    assert!(store_one("t", "u", 2).await.duplicate);
    assert!(writer.is_stale("u"), "the same id at another position");
    assert!(store_one("t", "v", 1).await.duplicate);
    assert!(writer.is_stale("v"), "another user's decision");
}

/// A store that holds its first batch write until told to go on, and counts its decision
/// reads: one by one, and together.
struct HeldStore {
    inner: EmbeddedStore,
    writing: tokio::sync::Notify,
    go_on: tokio::sync::Semaphore,
    single_reads: std::sync::atomic::AtomicUsize,
    batch_reads: Mutex<Vec<usize>>,
    /// Whether reads together fail; a single read of `unreadable` fails always.
    batch_reads_fail: bool,
}

impl HeldStore {
    fn open(dir: &std::path::Path, batch_reads_fail: bool) -> Arc<HeldStore> {
        Arc::new(HeldStore {
            inner: EmbeddedStore::open(&dir.join("w.redb")).unwrap(),
            writing: tokio::sync::Notify::new(),
            go_on: tokio::sync::Semaphore::new(0),
            single_reads: Default::default(),
            batch_reads: Default::default(),
            batch_reads_fail,
        })
    }

    /// Starts a writer on this store and queues a decision of `t1`: the writer takes it and
    /// holds inside its commit until `go_on` has a permit, so that what is queued meanwhile is
    /// its next batch.
    async fn writer_inside_a_commit(
        self: &Arc<Self>,
    ) -> (Writer, oneshot::Receiver<Result<Stored, DecisionError>>) {
        let writer = Writer::start(Arc::clone(self) as Arc<dyn Store>, WriterConfig::default());
        let (ack, stored) = oneshot::channel();
        let d = Arc::new(decision("t1", "u", 1, 0));
        writer.submit_decision(d, ack).await.unwrap();
        self.writing.notified().await;
        (writer, stored)
    }
}

/// Waits until `count` requests are queued (or taken) in the writer.
async fn queued(writer: &Writer, count: u64) {
    while writer.progress.queued.load(Ordering::SeqCst) < count {
        tokio::task::yield_now().await;
    }
}

#[async_trait::async_trait]
impl Store for HeldStore {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        self.writing.notify_one();
        self.go_on.acquire().await.unwrap().forget();
        self.inner.write_batch(ops).await
    }
    async fn decision(&self, id: &str) -> Result<Option<Decision>, StoreError> {
        self.single_reads.fetch_add(1, Ordering::SeqCst);
        if id == "unreadable" {
            return Err(StoreError::Corrupt {
                table: "decisions_by_txn",
                reason: "unreadable on purpose".into(),
            });
        }
        self.inner.decision(id).await
    }
    async fn decisions(&self, ids: Vec<String>) -> Result<Vec<Option<Decision>>, StoreError> {
        self.batch_reads.lock().unwrap().push(ids.len());
        if self.batch_reads_fail {
            return Err(StoreError::Backend("failing on purpose".into()));
        }
        self.inner.decisions(ids).await
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
        after: Option<crate::DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.inner.decisions_by_day(day, after, limit).await
    }
    async fn snapshot(&self, user: &str) -> Result<Option<UserSnapshot>, StoreError> {
        self.inner.snapshot(user).await
    }
    async fn restore_point(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<crate::RestorePoint, StoreError> {
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
        guard: crate::RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        self.inner.put_records_if(guard, writes).await
    }
    async fn record(
        &self,
        kind: crate::RecordKind,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.record(kind, key).await
    }
    async fn scan_records(
        &self,
        kind: crate::RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan_records(kind, prefix, after, limit).await
    }
}

/// The lookups of one batch (duplicates of a replayed topic, thousands at a time) are one
/// read of the store, not a read each; a barrier (`flush`) reads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_lookups_is_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let held = HeldStore::open(dir.path(), false);
    let (writer, stored) = held.writer_inside_a_commit().await;
    let mut lookups = Vec::new();
    for i in 0..50 {
        let writer = writer.clone();
        let id = if i % 2 == 0 { "t1" } else { "t2" };
        lookups.push(tokio::spawn(async move {
            (id, writer.lookup_after_writes(id.into()).await)
        }));
    }
    let barrier = tokio::spawn({
        let writer = writer.clone();
        async move { writer.flush().await }
    });
    queued(&writer, 52).await;
    held.go_on.add_permits(1);
    assert!(!stored.await.unwrap().unwrap().duplicate);
    for lookup in lookups {
        let (id, found) = lookup.await.unwrap();
        let found = found.unwrap();
        assert_eq!(found.is_some(), id == "t1", "{id}");
    }
    barrier.await.unwrap().unwrap();
    assert_eq!(*held.batch_reads.lock().unwrap(), [50]);
    assert_eq!(held.single_reads.load(Ordering::SeqCst), 0);
}

/// When the batch's read fails, each lookup is read alone: an unreadable record fails its own
/// lookup, not the others of its batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_read_fails_only_the_unreadable_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let held = HeldStore::open(dir.path(), true);
    let (writer, stored) = held.writer_inside_a_commit().await;
    let lookups: Vec<_> = ["t1", "unreadable", "t2"]
        .into_iter()
        .map(|id| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.lookup_after_writes(id.into()).await })
        })
        .collect();
    queued(&writer, 4).await;
    held.go_on.add_permits(1);
    stored.await.unwrap().unwrap();
    let mut answers = Vec::new();
    for lookup in lookups {
        answers.push(lookup.await.unwrap());
    }
    assert_eq!(answers[0].as_ref().unwrap().as_ref().unwrap().user_seq, 1);
    assert!(
        matches!(answers[1], Err(StoreError::Corrupt { .. })),
        "{:?}",
        answers[1]
    );
    assert!(answers[2].as_ref().unwrap().is_none());
    assert_eq!(*held.batch_reads.lock().unwrap(), [3]);
    assert_eq!(held.single_reads.load(Ordering::SeqCst), 3);
}
