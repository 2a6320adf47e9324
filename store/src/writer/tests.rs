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
