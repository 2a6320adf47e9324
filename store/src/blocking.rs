//! Blocking engine calls, run off the async threads in bounded lanes.
//!
//! Both embedded engines block (file I/O, page-cache misses, fsync), so their calls run on
//! tokio's blocking pool, which starts a thread for every call it cannot serve with an idle one
//! (up to 512). Reads come from anyone — API callers, backtests, the restores of starting user
//! actors — so without a bound a burst of them starts a thread each, and on a small machine
//! those threads crowd out the writer whose commit every decision is waiting for. So each call
//! names its [`Lane`]: reads run at most `max_reads` at once, catalogue writes at most
//! [`WRITES_AT_ONCE`] (the engine serializes writes anyway; more threads would only queue on
//! its lock) and the reads a decision waits for (the restores of starting user actors, the
//! API key and `Idempotency-Key` a request is checked against) at most
//! [`SCORING_READS_AT_ONCE`], in a lane of their own so that scoring never queues behind API
//! reads; the others wait their turn (an API request that waits past its deadline is answered
//! 503). The decision writer's commits never wait for a permit.
//!
//! Reads run on threads of their own, one per read permit, at a lower CPU priority than the
//! rest of the node ([`READ_THREAD_NICE`]): reads of a cached store are CPU work, and at equal
//! priority the kernel gave a flood of them as much of the cores as the async workers that
//! score (RocksDB lowers its compaction threads' priority for the same reason).

use crate::metrics as m;
use crate::{RecordKind, Store, StoreError};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reads a store runs at once unless configured otherwise: one per core. Reads of a store the
/// page cache holds are CPU work, so more threads than cores only take CPU from the async
/// workers that score: on two cores, under a flood of reads beside scoring, 1 / 2 / 4 / 8 / 16
/// reads at once answered 924 / 1,418 / 1,577 / 1,668 / ~1,700 reads/s while scoring beside
/// them ran at 1,727 / 930 / 254 / 60 / ~60 req/s (BENCHMARKS.md, "Store calls in bounded
/// lanes"). A store on slow disks may want more (Cassandra's `concurrent_reads` is 32).
pub fn default_max_concurrent_reads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// How much lower the read threads' CPU priority is than the node's (a Linux nice increment;
/// elsewhere they run at the node's). An unprivileged thread cannot raise its priority back,
/// which is why reads get threads of their own instead of lowering a pool thread's for a call.
const READ_THREAD_NICE: i32 = 10;

/// Catalogue writes and retention passes a store runs at once: the engine takes them one at a
/// time, so two keep it busy.
const WRITES_AT_ONCE: usize = 2;

/// Reads a decision waits for that a store runs at once: the actors' restorer gathers the
/// users starting together into one call, so a few calls carry many users, and a key lookup
/// is one point read.
const SCORING_READS_AT_ONCE: usize = 4;

/// What a blocking call does, which says whether and how long it may wait to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Reads anything: waits for one of the read permits.
    Read,
    /// Writes the catalogue or prunes: waits for one of the write permits.
    Write,
    /// Reads a decision waits for (where starting user actors restore from; the API key and
    /// `Idempotency-Key` records a request is checked against): waits for one of the scoring
    /// read permits, never behind other reads.
    Scoring,
    /// Commits a batch of the decision writer, which every decision waits for: starts at once.
    Commit,
}

impl Lane {
    /// The lane of a read of one `kind` record: the API key and `Idempotency-Key` records are
    /// checked on every request they come with, scoring included; every other record is read
    /// for the API.
    pub(crate) fn of_record(kind: RecordKind) -> Lane {
        match kind {
            RecordKind::ApiKey | RecordKind::Idempotency => Lane::Scoring,
            _ => Lane::Read,
        }
    }
}

/// Runs one store's blocking calls, lane by lane: reads on the store's read threads, the
/// others on tokio's blocking pool.
#[derive(Clone)]
pub(crate) struct BlockingWork {
    reads: Arc<Semaphore>,
    read_threads: mpsc::Sender<Job>,
    writes: Arc<Semaphore>,
    scoring: Arc<Semaphore>,
}

/// One call for a read thread.
type Job = Box<dyn FnOnce() + Send>;

impl BlockingWork {
    /// At most `max_reads` (at least one) reads run at once, each on one of as many read
    /// threads; they end when the last clone of this is dropped.
    pub(crate) fn new(max_reads: usize) -> Result<Self, StoreError> {
        let max_reads = max_reads.max(1);
        let (read_threads, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for _ in 0..max_reads {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name("sentinel-read".into())
                .spawn(move || read_thread(&jobs))
                .map_err(StoreError::backend)?;
        }
        Ok(BlockingWork {
            reads: Arc::new(Semaphore::new(max_reads)),
            read_threads,
            writes: Arc::new(Semaphore::new(WRITES_AT_ONCE)),
            scoring: Arc::new(Semaphore::new(SCORING_READS_AT_ONCE)),
        })
    }

    /// Runs `f` once its lane has room. A permit is held until `f` returns, also when the
    /// caller stops waiting: its thread is busy until then either way.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = match lane {
            Lane::Read => return self.read(f).await,
            Lane::Write => Some(acquire(&self.writes).await),
            Lane::Scoring => Some(acquire(&self.scoring).await),
            Lane::Commit => None,
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(StoreError::backend)?
    }

    /// Runs `f` on a read thread once a read permit is free (a free permit means an idle read
    /// thread).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = acquire(&self.reads).await;
        let (result, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let _ = result.send(f());
        });
        let stopped = || StoreError::Backend("the store's read threads have stopped".into());
        self.read_threads.send(job).map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| StoreError::Backend("a read panicked".into()))?
    }

    /// Runs a reader's CPU work in the read lane ([`Store::run_read_work`]).
    pub(crate) async fn read_work(&self, work: Box<dyn FnOnce() + Send>) -> Result<(), StoreError> {
        self.run(Lane::Read, move || {
            work();
            Ok(())
        })
        .await
    }
}

/// A read thread: lowers its priority, then runs jobs until the channel closes. A job that
/// panics drops its answer (the caller gets an error) and the thread goes on.
fn read_thread(jobs: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match jobs.lock() {
            Ok(jobs) => jobs.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

/// Adds [`READ_THREAD_NICE`] to the calling thread's nice value (Linux: per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (nice + READ_THREAD_NICE).min(19));
    }
}

/// Runs `f` where `store` runs its reads ([`Store::run_read_work`]) and returns what it
/// returned.
pub async fn on_read_lane<T: Send + 'static>(
    store: &dyn Store,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    let (result, answer) = tokio::sync::oneshot::channel();
    let work = Box::new(move || {
        let _ = result.send(f());
    });
    store.run_read_work(work).await?;
    answer
        .await
        .map_err(|_| StoreError::Backend("read work ended without its result".into()))
}

/// One of `permits`, at once when one is free, counted in [`m::CALLS_WAITING`] while it waits
/// otherwise.
async fn acquire(permits: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
        return permit;
    }
    let _waiting = Waiting::start();
    Arc::clone(permits)
        .acquire_owned()
        .await
        .expect("a lane's semaphore is never closed")
}

/// Counts a call in [`m::CALLS_WAITING`] while it waits for a permit, also when its caller
/// gives up waiting.
struct Waiting;

impl Waiting {
    fn start() -> Self {
        metrics::gauge!(m::CALLS_WAITING).increment(1.0);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!(m::CALLS_WAITING).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    /// Holds reads inside their blocking call until opened, counting how many run at once.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    impl Gate {
        fn pass(&self) {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_running.fetch_max(now, Ordering::SeqCst);
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
        }

        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    /// Opens the gate when dropped, also when a failed assertion unwinds: the runtime waits for
    /// its blocking threads at shutdown, so a gate left shut would hang the test, not fail it.
    struct Opener(Arc<Gate>);

    impl Drop for Opener {
        fn drop(&mut self) {
            self.0.open();
        }
    }

    /// Starts `calls` calls on `lane`, each held at a gate, waits until `limit` of them run,
    /// checks that a call on each of the `other` lanes still runs meanwhile, then opens the
    /// gate. Returns the most calls that ran at once.
    async fn hold(
        work: &BlockingWork,
        lane: Lane,
        calls: usize,
        limit: usize,
        other: &[Lane],
    ) -> usize {
        let gate = Arc::new(Gate::default());
        let opener = Opener(Arc::clone(&gate));
        let held: Vec<_> = (0..calls)
            .map(|i| {
                let (work, gate) = (work.clone(), Arc::clone(&gate));
                tokio::spawn(async move {
                    work.run(lane, move || {
                        gate.pass();
                        Ok(i)
                    })
                    .await
                })
            })
            .collect();
        let hang_guard = Duration::from_secs(60);
        tokio::time::timeout(hang_guard, async {
            while gate.running.load(Ordering::SeqCst) < limit {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("calls up to the limit start");
        // Every permit is held and the rest wait: the other lanes still run.
        for &lane in other {
            let done = tokio::time::timeout(hang_guard, work.run(lane, || Ok("done")))
                .await
                .unwrap_or_else(|_| panic!("a {lane:?} call waited behind the held calls"));
            assert_eq!(done.unwrap(), "done");
        }
        assert!(
            held.iter().all(|c| !c.is_finished()),
            "calls passed the gate"
        );
        drop(opener);
        let mut answers = Vec::new();
        for call in held {
            answers.push(call.await.unwrap().unwrap());
        }
        assert_eq!(answers, (0..calls).collect::<Vec<_>>());
        gate.most_running.load(Ordering::SeqCst)
    }

    /// Eight reads against a limit of three: three run, five wait, a commit and a scoring read
    /// meanwhile run at once, and once the gate opens the others follow, never more than
    /// three at a time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_beyond_the_limit_wait_and_commits_and_scoring_reads_do_not() {
        let work = BlockingWork::new(3).unwrap();
        let other = [Lane::Commit, Lane::Scoring];
        assert_eq!(hold(&work, Lane::Read, 8, 3, &other).await, 3);
    }

    /// Catalogue writes run [`WRITES_AT_ONCE`] at a time, whatever the read limit, and
    /// nothing else waits behind them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn catalogue_writes_run_a_few_at_a_time_and_nothing_waits_behind_them() {
        let work = BlockingWork::new(16).unwrap();
        let other = [Lane::Commit, Lane::Read, Lane::Scoring];
        let most = hold(&work, Lane::Write, 6, WRITES_AT_ONCE, &other).await;
        assert_eq!(most, WRITES_AT_ONCE);
    }

    /// Reads a decision waits for run [`SCORING_READS_AT_ONCE`] at a time; commits and reads
    /// do not wait for them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scoring_reads_run_a_few_at_a_time_and_nothing_waits_behind_them() {
        let work = BlockingWork::new(16).unwrap();
        let other = [Lane::Commit, Lane::Read];
        let most = hold(&work, Lane::Scoring, 9, SCORING_READS_AT_ONCE, &other).await;
        assert_eq!(most, SCORING_READS_AT_ONCE);
    }

    /// A store of `engine` allowing one read at a time, and that one taken by read work held
    /// at a gate (it returns 42 once the opener is dropped).
    async fn store_with_its_read_held(
        engine: crate::EmbeddedEngine,
    ) -> (
        tempfile::TempDir,
        Arc<dyn crate::DecisionLog>,
        Opener,
        tokio::task::JoinHandle<Result<i32, StoreError>>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::EmbeddedOptions {
            max_concurrent_reads: 1,
            ..Default::default()
        };
        let store = crate::open_embedded(dir.path(), engine, options).unwrap();
        let gate = Arc::new(Gate::default());
        let opener = Opener(Arc::clone(&gate));
        let work = {
            let (store, gate) = (Arc::clone(&store), Arc::clone(&gate));
            tokio::spawn(async move {
                on_read_lane(&*store, move || {
                    gate.pass();
                    42
                })
                .await
            })
        };
        while gate.running.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (dir, store, opener, work)
    }

    /// Time enough for an unbounded read of an empty store to finish many times over.
    const LONG_ENOUGH: Duration = Duration::from_millis(200);

    /// Starts `read` beside the held read work of [`store_with_its_read_held`], checks that it
    /// is still waiting after [`LONG_ENOUGH`] (failing with `why` otherwise), then opens the
    /// gate and returns what it read once the held work has returned its 42.
    async fn waits_behind_the_held_read<T: Send + 'static>(
        engine: crate::EmbeddedEngine,
        why: &str,
        opener: Opener,
        work: tokio::task::JoinHandle<Result<i32, StoreError>>,
        read: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let read = tokio::spawn(read);
        tokio::time::sleep(LONG_ENOUGH).await;
        assert!(!read.is_finished(), "{engine:?}: {why}");
        drop(opener);
        assert_eq!(work.await.unwrap().unwrap(), 42, "{engine:?}");
        read.await.unwrap()
    }

    /// Work run where a store runs its reads takes a read permit like a read, in both
    /// embedded engines: with one read at a time, a read waits while the work runs, and the
    /// work's result comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_work_takes_its_place_in_the_read_lane() {
        for engine in [crate::EmbeddedEngine::Redb, crate::EmbeddedEngine::Lsm] {
            let (_dir, store, opener, work) = store_with_its_read_held(engine).await;
            let read = {
                let store = Arc::clone(&store);
                async move { store.decision("t-1").await }
            };
            let why = "a read ran beside read work past the limit of one";
            let read = waits_behind_the_held_read(engine, why, opener, work, read).await;
            assert_eq!(read.unwrap(), None, "{engine:?}");
        }
    }

    /// The API key and `Idempotency-Key` a scoring request is checked against are read while
    /// API reads fill their lane; other records wait their turn there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn key_checks_do_not_wait_behind_api_reads() {
        for engine in [crate::EmbeddedEngine::Redb, crate::EmbeddedEngine::Lsm] {
            let (_dir, store, opener, work) = store_with_its_read_held(engine).await;
            for kind in [RecordKind::ApiKey, RecordKind::Idempotency] {
                let checked =
                    tokio::time::timeout(Duration::from_secs(60), store.record(kind, "k"))
                        .await
                        .unwrap_or_else(|_| {
                            panic!("{engine:?}: a {kind:?} check waited behind reads")
                        });
                assert_eq!(checked.unwrap(), None);
            }
            let label = {
                let store = Arc::clone(&store);
                async move { store.record(RecordKind::Label, "t-1").await }
            };
            let why = "a label read skipped the read lane";
            let label = waits_behind_the_held_read(engine, why, opener, work, label).await;
            assert_eq!(label.unwrap(), None, "{engine:?}");
        }
    }

    /// Reads run at a lower CPU priority than the node; the other lanes at the node's.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_run_at_a_lower_priority_and_nothing_else_does() {
        fn nice() -> Result<i32, StoreError> {
            // SAFETY: reads the calling thread's own nice value.
            Ok(unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) })
        }
        let node = nice().unwrap();
        let work = BlockingWork::new(2).unwrap();
        let read = work.run(Lane::Read, nice).await.unwrap();
        assert_eq!(read, (node + READ_THREAD_NICE).min(19));
        for lane in [Lane::Commit, Lane::Scoring, Lane::Write] {
            assert_eq!(work.run(lane, nice).await.unwrap(), node, "{lane:?}");
        }
    }

    /// A read that panics answers an error, and its thread goes on serving reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_that_panics_fails_alone() {
        let work = BlockingWork::new(1).unwrap();
        let failed = work
            .run(Lane::Read, || -> Result<(), StoreError> {
                panic!("a read that panics, on purpose")
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(work.run(Lane::Read, || Ok(7)).await.unwrap(), 7);
    }

    /// A read whose caller stops waiting keeps its permit until its call returns: the bound
    /// counts threads at work, not callers still listening.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_read_holds_its_permit_until_it_returns() {
        let work = BlockingWork::new(1).unwrap();
        let gate = Arc::new(Gate::default());
        let opener = Opener(Arc::clone(&gate));
        let held = {
            let (work, gate) = (work.clone(), Arc::clone(&gate));
            tokio::spawn(async move {
                work.run(Lane::Read, move || {
                    gate.pass();
                    Ok(())
                })
                .await
            })
        };
        while gate.running.load(Ordering::SeqCst) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        held.abort();
        let _ = held.await;
        assert_eq!(
            work.reads.available_permits(),
            0,
            "permit freed while the read runs"
        );
        drop(opener);
        let next = tokio::time::timeout(Duration::from_secs(60), work.run(Lane::Read, || Ok(7)))
            .await
            .expect("the permit came back when the read returned");
        assert_eq!(next.unwrap(), 7);
    }
}
