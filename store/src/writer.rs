//! The single ordered write path with group commit.
//!
//! Every decision and snapshot (and the API's idempotent answers) goes through one bounded
//! queue. The writer takes whatever is
//! queued (up to `max_batch`), commits it as one durable batch, then acknowledges each request.
//! Under load batches grow, so the cost of a commit is shared by many decisions; when idle a
//! request is committed alone, at once. Reads that must see every earlier write (restores,
//! duplicate checks) go through the same queue as barriers.
//!
//! A snapshot must never be durable ahead of a decision it folds in. When a batch fails, or a
//! decision is answered with an earlier one of its transaction id, the users of those
//! decisions are marked stale: their snapshots are dropped until their actor has restored
//! from the store ([`Writer::is_stale`], [`Writer::restored`]). A user actor queues a snapshot
//! only once the decisions it folds in are finished ([`Writer::is_settled`], [`Writer::settle`]),
//! so that no snapshot shares a batch with a decision whose answer would have dropped it.

use crate::metrics as m;
use crate::outbox::AlertRouting;
use crate::{RecordWrite, Store, StoreError, UserSnapshot, WriteOp, WriteResult};
use sentinel_event::{Decision, DecisionError};
use std::collections::HashSet;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Writer tuning.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Requests that may wait in the queue before senders wait (backpressure).
    pub queue_capacity: usize,
    /// Most requests committed in one batch.
    pub max_batch: usize,
    /// When a request finds the writer idle, how many times at most it yields to the scheduler
    /// to gather the requests arriving with it before committing (0: commit it at once). The
    /// writer task's `next_batch` says why.
    pub gather_yields: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_capacity: 16_384,
            max_batch: 4_096,
            gather_yields: 16,
        }
    }
}

/// A durably stored decision, as the caller should report it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The decision of record: the new one, or the one stored earlier for the same transaction.
    pub decision: Arc<Decision>,
    /// True when a decision already existed and the new one was discarded.
    pub duplicate: bool,
}

/// Acknowledgement of a stored decision, sent to whoever waits for the decision.
pub type DecisionAck = oneshot::Sender<Result<Stored, DecisionError>>;

/// The answer to a lookup: the decision stored for a transaction id, if any.
type LookupAck = oneshot::Sender<Result<Option<Decision>, StoreError>>;

enum Request {
    Decision(Arc<Decision>, DecisionAck),
    Snapshot(UserSnapshot, oneshot::Sender<Result<(), StoreError>>),
    Records(Vec<RecordWrite>, oneshot::Sender<Result<(), StoreError>>),
    Lookup(String, LookupAck),
}

/// Told of the decisions each batch stored anew (not of duplicates), once the batch is durable:
/// an in-process reader of new decisions (the live entity index) learns them without reading
/// them back from the store.
pub trait CommitObserver: Send + Sync + 'static {
    /// The batch's new decisions. Called by the writer after each batch, and on a cluster's
    /// store host after each member's batch, from several tasks at once and in no particular
    /// order across batches: keep it short and do not rely on the order.
    fn committed(&self, decisions: &[Arc<Decision>]);
}

/// Who the writer tells of each batch besides the callers waiting for it.
#[derive(Default, Clone)]
pub struct WriterHooks {
    /// Gives each new decision's alerts, stored in the same write transaction as it.
    pub alerts: Option<Arc<dyn AlertRouting>>,
    /// Told of every batch's new decisions once it is durable.
    pub observer: Option<Arc<dyn CommitObserver>>,
}

/// Handle to the writer task. Cheap to clone; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    store: Arc<dyn Store>,
    stale: Stale,
    progress: Arc<Progress>,
}

/// How far the writer has got through its queue, so that a caller can tell that its earlier
/// requests are settled without queueing a barrier behind everyone else's.
///
/// Every sender counts its request in `queued` before queueing it, so when a caller's own
/// request is in the queue, `queued` is at least that request's place in the queue's order
/// (every request ahead of it was counted before it was queued). The writer takes requests
/// in that order and counts those it has finished; once that count reaches what the caller
/// read, its request is finished.
///
/// Why another sender's count is visible once its request is ahead of ours: each sender has
/// a sequentially consistent fence between its count and its place in the queue, and `mark`
/// one between the caller's place and its read. Had our fence come first in their single
/// total order, the other sender's place would come after ours (the channel's tail is one
/// atomic counter, and the fences order it too); so theirs came first, and our read sees the
/// count made before it.
#[derive(Default)]
struct Progress {
    /// Requests counted by their senders, queued or about to be.
    queued: AtomicU64,
    /// Requests the writer has finished, in queue order: committed, or failed with their users
    /// marked stale.
    finished: AtomicU64,
}

/// A position in the writer's queue, taken with [`Writer::mark`] after queueing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueMark(u64);

/// Users with a decision whose batch failed: their in-memory state may fold in an event the
/// store lacks, so their snapshots are not written until they restore.
type Stale = Arc<Mutex<HashSet<String>>>;

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Arc<dyn Store>, config: WriterConfig) -> Writer {
        Writer::start_with(store, config, WriterHooks::default())
    }

    /// Starts the writer task; each new decision's alerts (from `hooks.alerts`) are stored in
    /// the same write transaction as the decision, and `hooks.observer` hears of every batch.
    pub fn start_with(store: Arc<dyn Store>, config: WriterConfig, hooks: WriterHooks) -> Writer {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stale = Stale::default();
        let progress = Arc::new(Progress::default());
        tokio::spawn(run(
            Arc::clone(&store),
            rx,
            config,
            hooks,
            Arc::clone(&stale),
            Arc::clone(&progress),
        ));
        Writer {
            tx,
            store,
            stale,
            progress,
        }
    }

    /// The store behind this writer, for reads that need not wait for queued writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Queues a decision; `ack` receives the decision of record once its batch is durable.
    /// Waits while the queue is full.
    pub async fn submit_decision(
        &self,
        decision: Arc<Decision>,
        ack: DecisionAck,
    ) -> Result<(), StoreError> {
        self.send(Request::Decision(decision, ack)).await
    }

    /// Queues a request, counted first (see [`Progress`]). Counted only once it has its
    /// place, and then sent at once: a caller that gives up while the queue is full must not
    /// leave a count behind that no request follows (every later mark would wait on it).
    async fn send(&self, request: Request) -> Result<(), StoreError> {
        let place = self
            .tx
            .reserve()
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        self.progress.queued.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `mark` (see `Progress`).
        fence(Ordering::SeqCst);
        place.send(request);
        Ok(())
    }

    /// Queues the request `with_ack` makes and waits for its answer.
    async fn ask<T>(
        &self,
        with_ack: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (ack, done) = oneshot::channel();
        self.send(with_ack(ack)).await?;
        done.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Stores a snapshot after every write queued before it, and waits until it is durable.
    pub async fn write_snapshot(&self, snapshot: UserSnapshot) -> Result<(), StoreError> {
        self.ask(|ack| Request::Snapshot(snapshot, ack)).await
    }

    /// Queues a snapshot behind every write queued before it, without waiting for it to be
    /// durable (only for queue space).
    pub async fn queue_snapshot(&self, snapshot: UserSnapshot) -> Result<(), StoreError> {
        let (ack, _ignored) = oneshot::channel();
        self.send(Request::Snapshot(snapshot, ack)).await
    }

    /// Stores records in the next batch, beside its decisions (one commit for both), and waits
    /// until they are durable.
    pub async fn store_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.ask(|ack| Request::Records(writes, ack)).await
    }

    /// Reads a decision after every write queued before this call is durable.
    pub async fn lookup_after_writes(
        &self,
        transaction_id: String,
    ) -> Result<Option<Decision>, StoreError> {
        self.ask(|ack| Request::Lookup(transaction_id, ack)).await
    }

    /// True when a decision of `user_id` failed to store since its state was last restored:
    /// the actor must drop its state and restore before deciding again.
    pub fn is_stale(&self, user_id: &str) -> bool {
        self.stale.lock().is_ok_and(|s| s.contains(user_id))
    }

    /// The user's actor restored its state from the store after a [`Writer::flush`]: its
    /// snapshots may be written again.
    pub fn restored(&self, user_id: &str) {
        if let Ok(mut stale) = self.stale.lock() {
            stale.remove(user_id);
        }
    }

    /// Waits until every write queued before this call is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        // A lookup of an id that cannot exist is a barrier with no other effect.
        self.lookup_after_writes(String::new()).await.map(|_| ())
    }

    /// Marks the queue's current position: every request this task queued before the call is
    /// at or before it. A fence and an atomic load.
    pub fn mark(&self) -> QueueMark {
        fence(Ordering::SeqCst);
        QueueMark(self.progress.queued.load(Ordering::Relaxed))
    }

    /// Waits until every request queued before `mark` was taken is finished (durable, or
    /// failed with its user marked stale). Returns at once when the writer has finished
    /// that many requests, as it has long before a user goes idle; otherwise waits as
    /// [`Writer::flush`] does.
    pub async fn settle(&self, mark: QueueMark) -> Result<(), StoreError> {
        if self.is_settled(mark) {
            return Ok(());
        }
        self.flush().await
    }

    /// Whether every request queued before `mark` was taken is finished, without waiting.
    /// Once it is, the users those requests marked stale are seen as stale.
    pub fn is_settled(&self, mark: QueueMark) -> bool {
        self.progress.finished.load(Ordering::SeqCst) >= mark.0
    }
}

/// What to answer once a batch is committed, in request order.
enum Ack {
    Decision(Arc<Decision>, DecisionAck),
    /// A snapshot's or records' write.
    Written(oneshot::Sender<Result<(), StoreError>>),
    Lookup(String, LookupAck),
}

/// Waits for the next batch of requests into `requests`; 0 when every sender is gone.
///
/// Requests that queued during the last commit are taken at once: group commit is already
/// sharing the commit among them. A request that finds the writer idle is usually the first of
/// several arriving together (one Kafka fetch decided by many user actors; the user actor that
/// submits it wakes the writer next on its thread, before the others have run), and a durable
/// commit costs about the same CPU for one decision as for sixteen (BENCHMARKS.md, "Group
/// commit gathers what arrives together"). So the writer yields to the scheduler, letting the
/// other ready tasks run, and takes what they submit, until a yield brings nothing more or
/// `gather_yields` yields have passed. Nothing waits on a timer: an isolated request costs a
/// few scheduler round trips, not a linger.
///
/// Only after the writer waited at least as long as its last commit took: a shorter wait means
/// callers are waiting on commits in a closed loop (HTTP clients each awaiting their answer),
/// where one group is decided while the previous one commits; gathering would merge the two
/// into one convoy that decides, then commits, and lose the overlap.
async fn next_batch(
    rx: &mut mpsc::Receiver<Request>,
    requests: &mut Vec<Request>,
    max_batch: usize,
    gather_yields: usize,
    last_commit: Duration,
) -> usize {
    let was_idle = rx.is_empty();
    let waiting_since = Instant::now();
    let received = rx.recv_many(requests, max_batch).await;
    if received == 0 || !was_idle || waiting_since.elapsed() < last_commit {
        return received;
    }
    for _ in 0..gather_yields {
        if requests.len() >= max_batch {
            break;
        }
        tokio::task::yield_now().await;
        if rx.is_empty() {
            break;
        }
        rx.recv_many(requests, max_batch - requests.len()).await;
    }
    requests.len()
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Request>,
    config: WriterConfig,
    hooks: WriterHooks,
    stale: Stale,
    progress: Arc<Progress>,
) {
    let WriterHooks { alerts, observer } = hooks;
    let max_batch = config.max_batch.max(1);
    let mut requests = Vec::with_capacity(max_batch);
    let mut last_commit = Duration::ZERO;
    // Requests taken so far: the batch below takes the next ones in queue order.
    let mut taken_so_far = 0;
    loop {
        let taken = next_batch(
            &mut rx,
            &mut requests,
            max_batch,
            config.gather_yields,
            last_commit,
        )
        .await;
        if taken == 0 {
            break;
        }
        taken_so_far += taken as u64;
        let started = Instant::now();
        let mut ops = Vec::with_capacity(requests.len());
        let mut acks = Vec::with_capacity(requests.len());
        // (op index, decision, records) of decisions that owe alerts, reported once committed.
        let mut owed = Vec::new();
        for request in requests.drain(..) {
            match request {
                Request::Decision(d, ack) => {
                    let records = alerts
                        .as_ref()
                        .map(|a| a.alerts_for(&d))
                        .unwrap_or_default();
                    if records.is_empty() {
                        ops.push(WriteOp::Decision(Arc::clone(&d)));
                    } else {
                        owed.push((ops.len(), Arc::clone(&d), records.clone()));
                        ops.push(WriteOp::DecisionWithRecords(Arc::clone(&d), records));
                    }
                    acks.push(Ack::Decision(d, ack));
                }
                Request::Snapshot(s, ack) => {
                    if stale.lock().is_ok_and(|stale| stale.contains(&s.user_id)) {
                        // It may fold in a decision that was never stored; the decisions
                        // in the store are the truth, and a later snapshot will follow.
                        tracing::warn!(user = %s.user_id, seq = s.seq, "snapshot of a user with an unstored decision dropped");
                        drop(ack.send(Ok(())));
                        continue;
                    }
                    ops.push(WriteOp::Snapshot(s));
                    acks.push(Ack::Written(ack));
                }
                Request::Records(writes, ack) => {
                    ops.push(WriteOp::Records(writes));
                    acks.push(Ack::Written(ack));
                }
                Request::Lookup(id, ack) => acks.push(Ack::Lookup(id, ack)),
            }
        }
        let batch_len = ops.len();
        let outcome = if ops.is_empty() {
            Ok(Vec::new())
        } else {
            store.write_batch(ops).await
        };
        if batch_len > 0 {
            last_commit = started.elapsed();
            metrics::histogram!(m::BATCH_SECONDS).record(last_commit.as_secs_f64());
            metrics::histogram!(m::BATCH_SIZE).record(batch_len as f64);
        }
        match outcome {
            Ok(results) => {
                mark_answered_by_earlier(&stale, &acks, &results);
                // Before the acknowledgements: whoever hears of its request may rely on it.
                progress.finished.store(taken_so_far, Ordering::SeqCst);
                if let Some(alerts) = &alerts {
                    for (index, decision, records) in &owed {
                        if matches!(results.get(*index), Some(WriteResult::Stored)) {
                            alerts.committed(decision, records);
                        }
                    }
                }
                acknowledge(&store, acks, results, observer.as_deref()).await
            }
            Err(e) => {
                metrics::counter!(m::WRITE_ERRORS).increment(1);
                tracing::error!(error = %e, batch = batch_len, "store batch write failed");
                let reason = e.to_string();
                let err = || StoreError::Backend(reason.clone());
                if let Ok(mut stale) = stale.lock() {
                    for ack in &acks {
                        if let Ack::Decision(d, _) = ack {
                            stale.insert(d.user_id.clone());
                        }
                    }
                }
                // Once their users are marked stale: their next actors restore from the store.
                progress.finished.store(taken_so_far, Ordering::SeqCst);
                for ack in acks {
                    match ack {
                        Ack::Decision(_, ack) => {
                            drop(ack.send(Err(DecisionError::Store(reason.clone()))))
                        }
                        Ack::Written(ack) => drop(ack.send(Err(err()))),
                        Ack::Lookup(_, ack) => drop(ack.send(Err(err()))),
                    }
                }
            }
        }
    }
}

/// Marks stale the users of decisions the store answered with an earlier decision of the same
/// transaction id that is not the same user's at the same position (another user's, or one
/// its user decided at another position): each actor folded its event into its state, which
/// is then ahead of the store, as after a failed batch. Before the writer's finished count
/// moves, so that a passivating actor that settles on it sees the mark and keeps nothing of
/// that state. A copy stored again (`sentinel alerts` re-reading its topic) marks nothing.
fn mark_answered_by_earlier(stale: &Stale, acks: &[Ack], results: &[WriteResult]) {
    // Each acknowledgement but a lookup has its operation's result, in order.
    let answered = acks.iter().filter(|ack| !matches!(ack, Ack::Lookup(..)));
    for (ack, result) in answered.zip(results) {
        if let (Ack::Decision(decision, _), WriteResult::AlreadyDecided(earlier)) = (ack, result) {
            let same = earlier.user_id == decision.user_id && earlier.user_seq == decision.user_seq;
            if !same {
                if let Ok(mut stale) = stale.lock() {
                    stale.insert(decision.user_id.clone());
                }
            }
        }
    }
}

async fn acknowledge(
    store: &Arc<dyn Store>,
    acks: Vec<Ack>,
    results: Vec<WriteResult>,
    observer: Option<&dyn CommitObserver>,
) {
    let mut results = results.into_iter();
    let mut fresh = Vec::new();
    let mut lookups = Vec::new();
    let (mut stored, mut duplicates) = (0u64, 0u64);
    for ack in acks {
        match ack {
            Ack::Decision(decision, ack) => {
                let reply = match results.next() {
                    Some(WriteResult::AlreadyDecided(existing)) => {
                        duplicates += 1;
                        Stored {
                            decision: existing,
                            duplicate: true,
                        }
                    }
                    _ => {
                        stored += 1;
                        if observer.is_some() {
                            fresh.push(Arc::clone(&decision));
                        }
                        Stored {
                            decision,
                            duplicate: false,
                        }
                    }
                };
                // The caller may have given up waiting; the decision is stored regardless.
                let _ = ack.send(Ok(reply));
            }
            Ack::Written(ack) => {
                let written = match results.next() {
                    Some(WriteResult::Failed(reason)) => Err(StoreError::Backend(reason)),
                    _ => Ok(()),
                };
                let _ = ack.send(written);
            }
            // A barrier (no id) is answered now; lookups are read together below.
            Ack::Lookup(id, ack) if id.is_empty() => drop(ack.send(Ok(None))),
            Ack::Lookup(id, ack) => lookups.push((id, ack)),
        }
    }
    if let Some(observer) = observer.filter(|_| !fresh.is_empty()) {
        observer.committed(&fresh);
    }
    metrics::counter!(m::DECISIONS_STORED).increment(stored);
    metrics::counter!(m::DECISIONS_DUPLICATE).increment(duplicates);
    answer_lookups(store, lookups).await;
}

/// Answers a batch's lookups with one read of the store: a replayed topic's duplicates come
/// thousands at a time, and a read each (a blocking call each, in this one task) made them
/// cost several times a new decision. Should that read fail, each lookup is read alone, so
/// that one unreadable record fails only its own lookup.
async fn answer_lookups(store: &Arc<dyn Store>, lookups: Vec<(String, LookupAck)>) {
    if lookups.is_empty() {
        return;
    }
    let ids = lookups.iter().map(|(id, _)| id.clone()).collect();
    match store.decisions(ids).await {
        Ok(found) => {
            for ((_, ack), decision) in lookups.into_iter().zip(found) {
                let _ = ack.send(Ok(decision));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, lookups = lookups.len(), "reading a batch's lookups together failed; reading each alone");
            for (id, ack) in lookups {
                let _ = ack.send(store.decision(&id).await);
            }
        }
    }
}

#[cfg(test)]
mod tests;
