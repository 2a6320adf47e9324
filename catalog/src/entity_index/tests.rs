//! The live entity-risk index over a real store: decisions stored by one node and labels
//! posted on another reach the index a third catalogue builds, point-in-time, and training
//! builds the same index from the same store.

use super::*;
use sentinel_engine::{PolicyDef, UserState};
use sentinel_event::{Decision, Transaction};
use sentinel_store::{EmbeddedStore, LsmStore, WriteOp};
use std::time::Instant;

pub(super) async fn open(store: &Arc<dyn Store>) -> Catalog {
    Catalog::open(Arc::clone(store), PolicyDef::seed(), 300_000)
        .await
        .unwrap()
}

async fn store_decision(catalog: &Catalog, id: &str, at: DateTime<Utc>) -> Transaction {
    let event: Transaction = serde_json::from_value(serde_json::json!({
        "transaction_id": id, "user_id": format!("u-{id}"), "amount": "80", "currency": "EUR",
        "timestamp": at.to_rfc3339(), "merchant_id": "m-1", "device_id": "d-1"
    }))
    .unwrap();
    let decision = UserState::default().decide(
        Arc::new(event.clone()),
        &catalog.policy(),
        300_000,
        Instant::now(),
    );
    catalog
        .store()
        .write_batch(vec![WriteOp::Decision(Arc::new(decision))])
        .await
        .unwrap();
    event
}

#[tokio::test]
async fn stored_decisions_and_labels_reach_another_nodes_index_point_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let (here, there) = (open(&store).await, open(&store).await);
    let two_hours_ago = Utc::now() - Duration::hours(2);
    let first = store_decision(&here, "t-1", two_hours_ago).await;
    let merchant = sentinel_engine::LabelSighting::new(0, 0, Some("m-1"), Some("d-1"), true);
    // What the other node's user actors read: the index its published policy carries.
    let features = |at_ms: i64| {
        there
            .policy()
            .models
            .entity_risk
            .load()
            .features(merchant.merchant, merchant.device, at_ms)
    };
    let now_ms = Utc::now().timestamp_millis();
    assert_eq!(features(now_ms), [0.0; 12], "nothing indexed yet");
    let size = there.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(
        size,
        EntityIndexSize {
            labels: 0,
            entities: 2,
            rebuilt: true,
            counted: DecisionsCounted {
                observed: 0,
                read: 1
            },
        }
    );
    // One transaction at the merchant and at the device, nothing known as fraud.
    let one_legit = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
    assert_eq!(features(now_ms)[..6], one_legit);
    assert_eq!(features(now_ms)[6..], one_legit);

    let label = here
        .label(crate::LabelInput::new("t-1", LabelValue::Fraud), "ana")
        .await
        .unwrap();
    let at = label.labelled_at.timestamp_millis();
    assert_eq!(features(at + 1)[3..6], [0.0; 3], "not refreshed yet");
    assert_eq!(
        there
            .refresh_entity_risk(0, Utc::now(), 0)
            .await
            .unwrap()
            .labels,
        1
    );
    let one_fraud = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    assert_eq!(features(at)[..6], one_fraud);
    assert_eq!(features(at)[6..], one_fraud);
    assert_eq!(
        features(at - 1)[..6],
        one_legit,
        "the label is younger than the event"
    );
    // With a delay, events see the label only that much later (and the transaction is still
    // in the windows that end then).
    there
        .refresh_entity_risk(60_000, Utc::now(), 0)
        .await
        .unwrap();
    assert_eq!(features(at + 59_999)[..6], one_legit);
    assert_eq!(features(at + 60_000)[..6], one_fraud);

    // The tail reads only new decisions: another one is counted once, however often it runs.
    store_decision(&here, "t-2", two_hours_ago).await;
    for _ in 0..3 {
        there.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    }
    assert_eq!(features(at)[..6], [2.0, 2.0, 2.0, 0.5, 0.5, 0.5]);

    // A later label replaces the earlier one, at its own time.
    let relabel = here
        .label(crate::LabelInput::new("t-1", LabelValue::Legit), "ana")
        .await
        .unwrap();
    there.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    let later = relabel.labelled_at.timestamp_millis();
    assert_eq!(features(later)[..6], [2.0, 2.0, 2.0, 0.0, 0.0, 0.0]);

    // Training builds the same index from the activity it scans.
    let mut activity = EntityActivity::default();
    activity.record_event(&first);
    activity.record_event(&first);
    let trained = here.entity_index(0, &activity).await.unwrap();
    assert_eq!(
        trained.features(merchant.merchant, merchant.device, later),
        features(later)
    );
}

/// The embedded store (on fjall, a new data directory's engine), counting the decisions it
/// hands out, whole or as their day-index entries.
pub(super) struct CountingStore {
    inner: LsmStore,
    decisions_read: std::sync::atomic::AtomicUsize,
    /// Of those, the ones handed out as day-index entries, and as whole decisions by day.
    pub(super) entries_read: std::sync::atomic::AtomicUsize,
    whole_by_day: std::sync::atomic::AtomicUsize,
    /// While set, record scans (the labels a pass reads) fail.
    failing_scans: std::sync::atomic::AtomicBool,
    /// Positions read from the day index alone.
    pub(super) keys_read: std::sync::atomic::AtomicUsize,
    /// Calls reading one decision by id, and calls reading several.
    single_reads: std::sync::atomic::AtomicUsize,
    batch_reads: std::sync::atomic::AtomicUsize,
}

impl CountingStore {
    fn open(dir: &std::path::Path) -> Arc<Self> {
        Arc::new(CountingStore {
            inner: LsmStore::open(&dir.join("s.lsm")).unwrap(),
            decisions_read: Default::default(),
            entries_read: Default::default(),
            whole_by_day: Default::default(),
            failing_scans: Default::default(),
            keys_read: Default::default(),
            single_reads: Default::default(),
            batch_reads: Default::default(),
        })
    }
    fn read(&self, n: usize) {
        self.decisions_read
            .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    }
    pub(super) fn decisions_read(&self) -> usize {
        self.decisions_read
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A catalogue over a [`CountingStore`] in `dir`, and the store.
pub(super) async fn counting_catalog(dir: &std::path::Path) -> (Arc<CountingStore>, Catalog) {
    let counting = CountingStore::open(dir);
    let store: Arc<dyn Store> = Arc::clone(&counting) as Arc<dyn Store>;
    (counting, open(&store).await)
}

#[async_trait::async_trait]
impl Store for CountingStore {
    async fn write_batch(
        &self,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<sentinel_store::WriteResult>, sentinel_store::StoreError> {
        self.inner.write_batch(ops).await
    }
    async fn decision(&self, id: &str) -> Result<Option<Decision>, sentinel_store::StoreError> {
        self.single_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let found = self.inner.decision(id).await?;
        self.read(usize::from(found.is_some()));
        Ok(found)
    }
    async fn decisions(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<Option<Decision>>, sentinel_store::StoreError> {
        self.batch_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let found = self.inner.decisions(ids).await?;
        self.read(found.iter().flatten().count());
        Ok(found)
    }
    async fn decisions_for_user(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, sentinel_store::StoreError> {
        let page = self.inner.decisions_for_user(user, after, limit).await?;
        self.read(page.len());
        Ok(page)
    }
    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<sentinel_store::DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, sentinel_store::StoreError> {
        let page = self.inner.decisions_by_day(day, after, limit).await?;
        self.read(page.len());
        self.whole_by_day
            .fetch_add(page.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(page)
    }
    async fn day_entries(
        &self,
        day: u32,
        after: Option<sentinel_store::DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayEntry>, sentinel_store::StoreError> {
        let page = self.inner.day_entries(day, after, limit).await?;
        self.read(page.len());
        self.entries_read
            .fetch_add(page.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(page)
    }
    async fn decision_keys_by_day(
        &self,
        day: u32,
        after: Option<sentinel_store::DayCursor>,
        limit: usize,
    ) -> Result<Vec<sentinel_store::DayCursor>, sentinel_store::StoreError> {
        let page = self.inner.decision_keys_by_day(day, after, limit).await?;
        self.keys_read
            .fetch_add(page.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(page)
    }
    async fn snapshot(
        &self,
        user: &str,
    ) -> Result<Option<sentinel_store::UserSnapshot>, sentinel_store::StoreError> {
        self.inner.snapshot(user).await
    }
    async fn restore_point(
        &self,
        user: &str,
        limit: usize,
    ) -> Result<sentinel_store::RestorePoint, sentinel_store::StoreError> {
        self.inner.restore_point(user, limit).await
    }
    async fn decision_count(&self) -> Result<u64, sentinel_store::StoreError> {
        self.inner.decision_count().await
    }
    async fn put_records(
        &self,
        writes: Vec<sentinel_store::RecordWrite>,
    ) -> Result<(), sentinel_store::StoreError> {
        self.inner.put_records(writes).await
    }
    async fn put_records_if(
        &self,
        guard: sentinel_store::RecordGuard,
        writes: Vec<sentinel_store::RecordWrite>,
    ) -> Result<bool, sentinel_store::StoreError> {
        self.inner.put_records_if(guard, writes).await
    }
    async fn record(
        &self,
        kind: RecordKind,
        key: &str,
    ) -> Result<Option<Vec<u8>>, sentinel_store::StoreError> {
        self.inner.record(kind, key).await
    }
    async fn scan_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, sentinel_store::StoreError> {
        if self.failing_scans.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(sentinel_store::StoreError::Backend(
                "failing on purpose".into(),
            ));
        }
        self.inner.scan_records(kind, prefix, after, limit).await
    }
}

/// Transactions the live index counts at merchant `m-1` over the last day, as of now.
pub(super) fn merchant_count(catalog: &Catalog) -> f64 {
    let seen = sentinel_engine::LabelSighting::new(0, 0, Some("m-1"), Some("d-1"), false);
    catalog.policy().models.entity_risk.load().features(
        seen.merchant,
        seen.device,
        Utc::now().timestamp_millis(),
    )[0]
}

/// Stores a decision of `id` at the merchant and device of every test event, decided at
/// `decided_at` (as when its commit came late, after later-stamped ones were read).
pub(super) async fn store_decided_at(
    catalog: &Catalog,
    id: &str,
    decided_at: DateTime<Utc>,
) -> Arc<Decision> {
    let event: Transaction = serde_json::from_value(serde_json::json!({
        "transaction_id": id, "user_id": format!("u-{id}"), "amount": "80", "currency": "EUR",
        // Two hours before: activity counts complete hours.
        "timestamp": (decided_at - Duration::hours(2)).to_rfc3339(),
        "merchant_id": "m-1", "device_id": "d-1"
    }))
    .unwrap();
    let mut decision =
        UserState::default().decide(Arc::new(event), &catalog.policy(), 300_000, Instant::now());
    decision.decided_at = decided_at;
    let decision = Arc::new(decision);
    catalog
        .store()
        .write_batch(vec![WriteOp::Decision(Arc::clone(&decision))])
        .await
        .unwrap();
    decision
}

/// The first pass, and a pass that reads many new decisions by pages, count the day index's
/// entries (each decision's position and event entities), never whole decisions: at start-up
/// on a busy store that is 30 days of them (BENCHMARKS.md, "Start-up on a store with history").
#[tokio::test]
async fn passes_read_entities_from_the_day_index_not_whole_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, catalog) = counting_catalog(dir.path()).await;
    let load = |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::SeqCst);
    let now = Utc::now();
    for i in 0..40 {
        store_decided_at(
            &catalog,
            &format!("t-{i}"),
            now - Duration::seconds(600 - i),
        )
        .await;
    }
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(merchant_count(&catalog), 40.0);
    assert_eq!(
        (load(&counting.entries_read), load(&counting.whole_by_day)),
        (40, 0)
    );
    // More new ones than a pass looks up one by one: read by pages, as entries too.
    for i in 0..300 {
        store_decided_at(&catalog, &format!("n-{i}"), Utc::now()).await;
    }
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(merchant_count(&catalog), 340.0);
    assert_eq!(
        (load(&counting.entries_read), load(&counting.whole_by_day)),
        (340, 0)
    );
}

/// A tail pass decodes only decisions it has not read: the minutes it re-checks for late
/// commits are read through the day index alone, and a late commit is still counted, once.
#[tokio::test]
async fn the_tail_decodes_each_decision_once_and_still_finds_late_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, catalog) = counting_catalog(dir.path()).await;
    let now = Utc::now();
    for i in 0..20 {
        store_decided_at(&catalog, &format!("t-{i}"), now - Duration::seconds(30 - i)).await;
    }
    let before = counting.decisions_read();
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(merchant_count(&catalog), 20.0);
    let after_first_pass = counting.decisions_read();
    assert_eq!(after_first_pass - before, 20, "each decision read once");

    // Passes with nothing new read nothing, though all twenty are within the overlap.
    for _ in 0..3 {
        catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    }
    assert_eq!(counting.decisions_read(), after_first_pass);

    // A decision stamped before the latest one read, committed only now, is found and counted
    // once; a new one too.
    store_decided_at(&catalog, "late", now - Duration::seconds(60)).await;
    store_decided_at(&catalog, "new", Utc::now()).await;
    for _ in 0..3 {
        catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    }
    assert_eq!(merchant_count(&catalog), 22.0);
    assert_eq!(counting.decisions_read(), after_first_pass + 2);
}

/// The decisions a pass looks up by id (those its labels name, and late or other nodes'
/// commits) are read together, not one call each: on a cluster member each call is a request
/// to the store host.
#[tokio::test]
async fn a_pass_reads_the_decisions_it_looks_up_together() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, catalog) = counting_catalog(dir.path()).await;
    let now = Utc::now();
    for i in 0..30 {
        store_decided_at(&catalog, &format!("t-{i}"), now - Duration::seconds(60 - i)).await;
        catalog
            .label(
                crate::LabelInput::new(format!("t-{i}"), LabelValue::Fraud),
                "ana",
            )
            .await
            .unwrap();
    }
    let reads = || {
        let load = |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::SeqCst);
        (load(&counting.single_reads), load(&counting.batch_reads))
    };
    let (singles, batches) = reads();
    let size = catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(size.labels, 30);
    assert_eq!(
        reads(),
        (singles, batches + 1),
        "the labels' decisions in one read"
    );

    // Committed behind the pass's last position: the next pass looks both up, together.
    store_decided_at(&catalog, "late-1", now - Duration::seconds(45)).await;
    store_decided_at(&catalog, "late-2", now - Duration::seconds(44)).await;
    let (singles, batches) = reads();
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(merchant_count(&catalog), 32.0);
    assert_eq!(
        reads(),
        (singles, batches + 1),
        "the two late commits in one read"
    );
}

/// A pass re-reads the overlap's positions once, counted per second, and looks positions up
/// one by one only from the first second whose count differs from what it has counted (the
/// store counts the positions read, as a stand-in for those looked up).
#[tokio::test]
async fn a_pass_looks_up_positions_only_from_the_first_second_with_uncounted_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, catalog) = counting_catalog(dir.path()).await;
    let keys_read = || counting.keys_read.load(std::sync::atomic::Ordering::SeqCst);
    let now = Utc::now();
    for i in 0..20 {
        store_decided_at(&catalog, &format!("t-{i}"), now - Duration::seconds(40 - i)).await;
    }
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    let before = keys_read();
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(
        keys_read() - before,
        20,
        "every second agrees: one read of each position"
    );

    // Two more, late, in the fifth and the sixth of those seconds: their positions and the
    // rest are looked up again from the fifth second on, and each is counted once.
    store_decided_at(&catalog, "late-a", now - Duration::seconds(36)).await;
    store_decided_at(&catalog, "late-b", now - Duration::seconds(35)).await;
    let (before, decoded) = (keys_read(), counting.decisions_read());
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(keys_read() - before, 22 + 18);
    assert_eq!(merchant_count(&catalog), 22.0);
    assert_eq!(
        counting.decisions_read() - decoded,
        2,
        "only the late ones are read"
    );
    let before = keys_read();
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(keys_read() - before, 22);
}

/// The first pass reads the last 30 days, and remembers afterwards only the decisions of the
/// overlap the next pass re-reads: not every decision of 30 days (at start-up on a busy store,
/// more than memory holds). What it forgot is still counted, once.
#[tokio::test]
async fn the_first_pass_keeps_only_the_overlap_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (_, catalog) = counting_catalog(dir.path()).await;
    let now = Utc::now();
    for (i, ago) in [3_600, 1_800, 600, 300, 60, 30].into_iter().enumerate() {
        store_decided_at(&catalog, &format!("t-{i}"), now - Duration::seconds(ago)).await;
    }
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    let remembered = |catalog: &Catalog| {
        let sources = catalog.entity_sources.try_lock().unwrap();
        let tail = sources.tail.as_ref().unwrap();
        (
            tail.recent.len(),
            tail.recent_per_second.values().sum::<u32>(),
        )
    };
    assert_eq!(
        remembered(&catalog),
        (2, 2),
        "the two within 130 s of the newest"
    );
    assert_eq!(merchant_count(&catalog), 6.0);
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(merchant_count(&catalog), 6.0);
    assert_eq!(remembered(&catalog), (2, 2));
}

/// A decision committed here while the start-up pass reads also reaches the next pass through
/// the commit observer: the pass keeps it known, however far past it the pass read, so it is
/// counted once.
#[tokio::test]
async fn the_first_pass_keeps_what_the_observer_may_still_pass_on() {
    let dir = tempfile::tempdir().unwrap();
    let (_, catalog) = counting_catalog(dir.path()).await;
    // The pass begins at `began`; one decision is made a minute before (committed here, the
    // observer not told yet), and the pass reads on past one made 200 s after it began.
    let began = Utc::now() - Duration::seconds(300);
    let during = store_decided_at(&catalog, "during", began - Duration::seconds(60)).await;
    store_decided_at(&catalog, "after", began + Duration::seconds(200)).await;
    catalog.refresh_entity_risk(0, began, 0).await.unwrap();
    assert_eq!(merchant_count(&catalog), 2.0);
    catalog.commit_observer().committed(&[during]);
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(merchant_count(&catalog), 2.0, "counted once");
}

/// Decisions this process's writer commits are counted from the writer's notice, not read back
/// from the store; another node's decisions in the same store are still read, each once.
#[tokio::test]
async fn decisions_committed_here_are_counted_without_reading_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, catalog) = counting_catalog(dir.path()).await;
    let hooks = sentinel_store::WriterHooks {
        alerts: None,
        observer: Some(catalog.commit_observer()),
    };
    let store: Arc<dyn Store> = Arc::clone(&counting) as Arc<dyn Store>;
    let writer = sentinel_store::Writer::start_with(store, Default::default(), hooks);
    store_decided_at(&catalog, "before-start", Utc::now()).await;
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(merchant_count(&catalog), 1.0);
    let before = counting.decisions_read();

    // Twenty decided here, through the writer.
    for i in 0..20 {
        let event: Transaction = serde_json::from_value(serde_json::json!({
            "transaction_id": format!("here-{i}"), "user_id": "u-here", "amount": "80",
            "currency": "EUR", "timestamp": (Utc::now() - Duration::hours(2)).to_rfc3339(),
            "merchant_id": "m-1", "device_id": "d-1"
        }))
        .unwrap();
        let decision = UserState::default().decide(
            Arc::new(event),
            &catalog.policy(),
            300_000,
            Instant::now(),
        );
        let (ack, stored) = tokio::sync::oneshot::channel();
        writer
            .submit_decision(Arc::new(decision), ack)
            .await
            .unwrap();
        stored.await.unwrap().unwrap();
    }
    // One decided by another node of the cluster, straight into the shared store.
    store_decided_at(&catalog, "there", Utc::now()).await;
    let mut counted = DecisionsCounted::default();
    for _ in 0..3 {
        let size = catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
        counted.observed += size.counted.observed;
        counted.read += size.counted.read;
    }
    assert_eq!(merchant_count(&catalog), 22.0);
    assert_eq!(
        counted,
        DecisionsCounted {
            observed: 20,
            read: 1
        },
        "each decision counted once, as it arrived"
    );
    assert_eq!(
        counting.decisions_read() - before,
        1,
        "only the other node's decision is read"
    );

    // Many of the other node's: read by pages, still each once.
    let before = counting.decisions_read();
    for i in 0..300 {
        store_decided_at(&catalog, &format!("there-{i}"), Utc::now()).await;
    }
    for _ in 0..2 {
        catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    }
    assert_eq!(merchant_count(&catalog), 322.0);
    assert_eq!(counting.decisions_read() - before, 300);
}

/// A pass that fails after reading decisions reports no counts; the next successful pass
/// reports them, so none is lost from the counter and none is reported twice.
#[tokio::test]
async fn a_failed_pass_leaves_its_counts_to_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (counting, catalog) = counting_catalog(dir.path()).await;
    catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    // Two stored by another node, and one the observer is told of (as this node's writer does).
    store_decided_at(&catalog, "a", Utc::now()).await;
    store_decided_at(&catalog, "b", Utc::now()).await;
    let event: Transaction = serde_json::from_value(serde_json::json!({
        "transaction_id": "here", "user_id": "u-here", "amount": "80", "currency": "EUR",
        "timestamp": (Utc::now() - Duration::hours(2)).to_rfc3339(), "merchant_id": "m-1"
    }))
    .unwrap();
    let policy = catalog.policy();
    let decision = UserState::default().decide(Arc::new(event), &policy, 0, Instant::now());
    catalog.commit_observer().committed(&[Arc::new(decision)]);

    // The decisions are read, then reading the labels fails.
    counting
        .failing_scans
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(catalog.refresh_entity_risk(0, Utc::now(), 0).await.is_err());
    counting
        .failing_scans
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let size = catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(
        size.counted,
        DecisionsCounted {
            observed: 1,
            read: 2
        }
    );
    let size = catalog.refresh_entity_risk(0, Utc::now(), 0).await.unwrap();
    assert_eq!(size.counted, DecisionsCounted::default());
}

#[tokio::test]
async fn the_live_index_is_rebuilt_only_when_an_event_could_see_what_changed() {
    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let (here, there) = (open(&store).await, open(&store).await);
    let refresh = |lead_ms: i64| there.refresh_entity_risk(DAY_MS, Utc::now(), lead_ms);
    let merchant_count = |at_ms: i64| {
        let m1 = sentinel_engine::opt_hash(Some("m-1"));
        there
            .policy()
            .models
            .entity_risk
            .load()
            .features(m1, 0, at_ms)[0]
    };
    assert!(refresh(0).await.unwrap().rebuilt, "the first pass builds");
    assert!(!refresh(0).await.unwrap().rebuilt, "nothing new");

    // A decision now: counted, but its hour enters features only a day after it ends.
    let now = Utc::now();
    store_decision(&here, "t-now", now).await;
    let first_seen = (now.timestamp_millis().div_euclid(HOUR_MS) + 1) * HOUR_MS + DAY_MS;
    let size = refresh(0).await.unwrap();
    assert_eq!((size.entities, size.rebuilt), (2, false));
    let lead_to = |at_ms: i64| at_ms - Utc::now().timestamp_millis();
    assert!(!refresh(lead_to(first_seen) - 60_000).await.unwrap().rebuilt);
    assert_eq!(
        merchant_count(first_seen),
        0.0,
        "the published index lacks it"
    );
    // Once an event within the lead could see it, the pass rebuilds.
    assert!(refresh(lead_to(first_seen) + 60_000).await.unwrap().rebuilt);
    assert_eq!(merchant_count(first_seen), 1.0);
    assert!(!refresh(lead_to(first_seen) + 60_000).await.unwrap().rebuilt);

    // A label changes the index at once, whatever it labels.
    here.label(crate::LabelInput::new("t-now", LabelValue::Fraud), "ana")
        .await
        .unwrap();
    let size = refresh(0).await.unwrap();
    assert_eq!((size.labels, size.rebuilt), (1, true));
    assert!(!refresh(0).await.unwrap().rebuilt);
    // So does another delay.
    assert!(
        there
            .refresh_entity_risk(HOUR_MS, Utc::now(), 0)
            .await
            .unwrap()
            .rebuilt
    );
}

/// What a pass forgets keeps the decisions made within an overlap before the pass's `now`,
/// even when the last position it read is far ahead of them (a pass reading weeks after a
/// read-back, or another node's clock ahead): those committed here while it read reach the
/// next pass through the observer too, which must find them.
#[tokio::test]
async fn a_pass_keeps_the_ids_the_observer_may_still_pass_on_however_far_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let (_, catalog) = counting_catalog(dir.path()).await;
    let mut tail = catalog.new_tail(EntityActivity::default());
    let now = Utc::now();
    let id = tail.ids.hash_one("committed-while-reading");
    tail.remember(id, (now - Duration::seconds(60)).timestamp_micros());
    tail.advance(
        (now + Duration::minutes(10)).timestamp_micros(),
        "far-ahead",
    );
    tail.forget_behind(now);
    assert!(
        tail.recent.contains_key(&id),
        "within the overlap before now"
    );
    tail.forget_behind(now + Duration::minutes(10));
    assert!(!tail.recent.contains_key(&id), "behind both overlaps");
}
