//! The user actors against a real embedded store: seed rules, passivation and restore,
//! supervision after a panic, redelivery, and live policy changes.

mod support;

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use rust_decimal::Decimal;
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::{Policy, PolicyDef, UserState};
use sentinel_event::{Channel, DecisionError, Location, Outcome, Transaction};
use sentinel_store::{EmbeddedStore, Store, Stored, WriteOp, Writer, WriterConfig};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Node {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    writer: Writer,
    scorer: Scorer,
}

async fn node(passivate_after: Duration) -> Node {
    node_with(ScorerConfig {
        shards: 2,
        passivate_after,
        lateness: Duration::from_secs(300),
        snapshot_every: 3,
        ..ScorerConfig::default()
    })
    .await
}

async fn node_with(config: ScorerConfig) -> Node {
    node_with_hook(config, None).await
}

/// A node whose store runs `before_write` before every batch, when given.
async fn node_with_hook(config: ScorerConfig, before_write: Option<support::BeforeWrite>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let inner = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    let store: Arc<dyn Store> = match before_write {
        Some(before_write) => Arc::new(support::HookedStore {
            inner,
            before_write,
            before_restore_read: None,
        }),
        None => Arc::new(inner),
    };
    node_on(dir, store, config).await
}

/// A node scoring with the seed policy into `store`, kept in `dir`.
async fn node_on(dir: tempfile::TempDir, store: Arc<dyn Store>, config: ScorerConfig) -> Node {
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    let policy = Arc::new(PolicyDef::seed().compile().unwrap());
    let scorer = Scorer::start(writer.clone(), policy, config).await.unwrap();
    Node {
        _dir: dir,
        store,
        writer,
        scorer,
    }
}

/// One shard holding at most `limit` live actors, none passivated for idleness.
fn live_limit(limit: usize) -> ScorerConfig {
    ScorerConfig {
        shards: 1,
        max_live_users: limit,
        passivate_after: Duration::from_secs(3600),
        ..ScorerConfig::default()
    }
}

async fn node_with_live_limit(limit: usize) -> Node {
    node_with(live_limit(limit)).await
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn txn(id: &str, user: &str, amount: &str, at: DateTime<Utc>, country: &str) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        user_id: user.into(),
        card_id: Some(format!("card-{user}")),
        device_id: Some(format!("dev-{user}")),
        ip: Some("203.0.113.9".into()),
        amount: Decimal::from_str(amount).unwrap(),
        currency: "EUR".into(),
        merchant_id: Some("m-1".into()),
        merchant_name: None,
        merchant_category: Some("grocery".into()),
        channel: Some(Channel::Pos),
        kind: None,
        location: Some(Location {
            country: country.into(),
            city: None,
            lat: None,
            lon: None,
        }),
        timestamp: at,
        metadata: None,
        base: None,
    }
}

async fn score(node: &Node, t: Transaction) -> Result<Stored, DecisionError> {
    node.scorer.score(Arc::new(t), Instant::now()).await
}

fn fired(stored: &Stored) -> Vec<&str> {
    stored
        .decision
        .reasons
        .iter()
        .map(|r| r.rule.as_str())
        .collect()
}

/// Picks `user` alone.
fn only(user: &'static str) -> sentinel_actors::UserFilter {
    Arc::new(move |u: &str| u == user)
}

/// The `seq` of `user`'s stored snapshot, if it has one.
async fn stored_snapshot_seq(node: &Node, user: &str) -> Option<u64> {
    node.store.snapshot(user).await.unwrap().map(|s| s.seq)
}

/// Ten normal purchases an hour apart, at home.
async fn history(node: &Node, user: &str) -> DateTime<Utc> {
    let mut at = t0();
    for i in 0..10 {
        let s = score(node, txn(&format!("{user}-h{i}"), user, "40.00", at, "FR"))
            .await
            .unwrap();
        assert!(fired(&s).is_empty(), "normal traffic fired {:?}", fired(&s));
        assert_eq!(s.decision.outcome, Outcome::Approve);
        at += Span::hours(1);
    }
    at
}

#[tokio::test]
async fn seed_rules_fire_on_their_cases_and_stay_quiet_otherwise() {
    let node = node(Duration::from_secs(60)).await;

    let at = history(&node, "big").await;
    let s = score(&node, txn("big-x", "big", "25000", at, "FR"))
        .await
        .unwrap();
    assert!(fired(&s).contains(&"large_amount"), "{:?}", fired(&s));

    let at = history(&node, "spike").await;
    let s = score(&node, txn("spike-x", "spike", "400", at, "FR"))
        .await
        .unwrap();
    assert_eq!(fired(&s), ["amount_spike"]);
    assert_eq!(s.decision.outcome, Outcome::Review);

    let at = history(&node, "travel").await;
    let s = score(
        &node,
        txn("travel-x", "travel", "40", at - Span::minutes(50), "US"),
    )
    .await
    .unwrap();
    assert_eq!(fired(&s), ["impossible_travel"]);
    assert_eq!(s.decision.outcome, Outcome::Decline);

    let mut at = history(&node, "fast").await;
    let mut last = None;
    for i in 0..11 {
        last = Some(
            score(&node, txn(&format!("fast-{i}"), "fast", "20", at, "FR"))
                .await
                .unwrap(),
        );
        at += Span::seconds(20);
    }
    let last = last.unwrap();
    assert_eq!(fired(&last), ["velocity_5m"]);
    let values = &last.decision.reasons[0].values;
    assert!(
        values.iter().any(|(label, v)| label == "count(user, 5m)"
            && *v == sentinel_rules::OwnedValue::Number(11.0)),
        "{values:?}"
    );

    let at = history(&node, "casino").await;
    let mut t = txn("casino-x", "casino", "40", at, "FR");
    t.merchant_category = Some("gambling".into());
    let s = score(&node, t).await.unwrap();
    assert_eq!(fired(&s), ["high_risk_merchant"]);
    assert_eq!(s.decision.outcome, Outcome::Approve);
    assert!((s.decision.score - 0.3).abs() < 1e-9);
}

/// Four events each of three users, added to one dispatch in time order; returns each
/// event's wait, with its user and place among the user's events.
fn dispatch_four_each<'a>(
    dispatch: &mut sentinel_actors::Dispatch<'a>,
) -> Vec<(
    String,
    u64,
    impl std::future::Future<Output = Result<Stored, DecisionError>> + 'a,
)> {
    let mut waits = Vec::new();
    for i in 0..4u64 {
        for user in ["d-a", "d-b", "d-c"] {
            let at = t0() + Span::minutes(i as i64);
            let event = txn(&format!("{user}-{i}"), user, "25.00", at, "FR");
            waits.push((
                user.to_owned(),
                i,
                dispatch.add(Arc::new(event), Instant::now()),
            ));
        }
    }
    waits
}

#[tokio::test]
async fn a_dispatched_burst_reaches_each_user_in_the_order_it_was_added() {
    let node = node(Duration::from_secs(60)).await;
    let mut dispatch = node.scorer.dispatch_batch();
    let waits = dispatch_four_each(&mut dispatch);
    dispatch.send();
    // Awaited last first: the order of decisions is the dispatch's, not the waiter's.
    for (user, i, wait) in waits.into_iter().rev() {
        let stored = wait.await.unwrap();
        assert_eq!(stored.decision.user_id, user);
        assert_eq!(stored.decision.user_seq, i + 1, "{user}'s event {i}");
    }
    assert_eq!(node.store.decision_count().await.unwrap(), 12);
}

#[tokio::test]
async fn a_dispatch_dropped_unsent_sends_its_events_in_order() {
    let node = node(Duration::from_secs(60)).await;
    let mut dispatch = node.scorer.dispatch_batch();
    let waits = dispatch_four_each(&mut dispatch);
    drop(dispatch);
    for (user, i, wait) in waits.into_iter().rev() {
        let stored = wait.await.unwrap();
        assert_eq!(stored.decision.user_seq, i + 1, "{user}'s event {i}");
    }
}

#[tokio::test]
async fn redelivery_returns_the_stored_decision() {
    let node = node(Duration::from_secs(60)).await;
    let first = score(&node, txn("r-1", "r", "10", t0(), "FR"))
        .await
        .unwrap();
    assert!(!first.duplicate);
    let again = score(&node, txn("r-1", "r", "99999", t0(), "FR"))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.decision, first.decision);
    assert_eq!(node.store.decision_count().await.unwrap(), 1);
}

#[tokio::test]
async fn passivated_users_are_restored_with_identical_state() {
    let node = node(Duration::from_millis(200)).await;
    let mut at = t0();
    for i in 0..7 {
        score(&node, txn(&format!("p-{i}"), "p", "30", at, "FR"))
            .await
            .unwrap();
        at += Span::minutes(1);
    }
    // Wait for the idle actor to be passivated.
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.scorer.live_actors().await > 0 {
        assert!(Instant::now() < deadline, "actor was never passivated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = score(&node, txn("p-7", "p", "30", at, "FR")).await.unwrap();
    assert_eq!(
        s.decision.user_seq, 8,
        "restored state continues the sequence"
    );
    // Velocity over the restored window: 8 events in the last 8 minutes.
    let mut state = UserState::default();
    for d in node.store.decisions_for_user("p", 0, 100).await.unwrap() {
        state.replay(&d, 300_000);
    }
    assert_eq!(state.seq, 8);
    assert_eq!(state.window.len(), 8);
}

/// With the default settings a busy user is not snapshotted every hundred events, and once
/// passivated its snapshot is the whole story: a restore reads it and no decision after it,
/// and the restored state equals a replay of the user's history.
#[tokio::test]
async fn a_passivated_user_restores_from_its_snapshot_alone() {
    let node = node_with(ScorerConfig {
        shards: 2,
        ..ScorerConfig::default()
    })
    .await;
    let mut at = t0();
    for i in 0..150 {
        score(&node, txn(&format!("b-{i}"), "b", "30", at, "FR"))
            .await
            .unwrap();
        at += Span::minutes(1);
    }
    assert!(
        node.store.snapshot("b").await.unwrap().is_none(),
        "a busy user was snapshotted before the default bound"
    );
    assert_eq!(node.scorer.passivate_all().await, 1);
    let point = node.store.restore_point("b", 1_000).await.unwrap();
    let snapshot = point.snapshot.expect("passivation wrote a snapshot");
    assert_eq!(snapshot.seq, 150);
    assert!(point.decisions.is_empty(), "decisions left to replay");
    let restored = sentinel_actors::decode_snapshot(&snapshot.state).unwrap();
    let mut replayed = UserState::default();
    for d in node.store.decisions_for_user("b", 0, 1_000).await.unwrap() {
        replayed.replay(&d, 300_000);
    }
    assert_eq!(restored, replayed);
    let s = score(&node, txn("b-150", "b", "30", at, "FR"))
        .await
        .unwrap();
    assert_eq!(s.decision.user_seq, 151, "the restored actor continues");
}

/// Looking at a user the store has never seen and passivating it writes nothing: the state
/// has not moved from what the store holds (nothing), so the user stays without history.
#[tokio::test]
async fn passivating_an_unchanged_user_writes_no_snapshot() {
    let node = node(Duration::from_secs(60)).await;
    let view = node.scorer.inspect("ghost").await.expect("a view");
    assert_eq!(view.seq, 0);
    assert_eq!(node.scorer.passivate_all().await, 1);
    assert!(node.store.snapshot("ghost").await.unwrap().is_none());
    assert!(!node.store.may_have_history("ghost"));
}

#[tokio::test]
async fn a_panicking_actor_is_restarted_from_its_snapshot() {
    let node = node(Duration::from_secs(60)).await;
    let mut at = t0();
    for i in 0..5 {
        score(&node, txn(&format!("k-{i}"), "k", "30", at, "FR"))
            .await
            .unwrap();
        at += Span::minutes(1);
    }
    let mut poison = txn("k-poison", "k", "30", at, "FR");
    poison.metadata = Some(serde_json::from_str(r#"{"sentinel_failpoint":"panic"}"#).unwrap());
    match score(&node, poison).await {
        Err(DecisionError::Poisoned(why)) => assert!(why.contains("failpoint"), "{why}"),
        other => panic!("expected a poisoned event, got {other:?}"),
    }
    // The next event is decided by the restarted actor with the state rebuilt from the
    // snapshot plus the stored decisions after it: nothing lost, nothing double-counted.
    let s = score(&node, txn("k-5", "k", "30", at + Span::minutes(1), "FR"))
        .await
        .unwrap();
    assert_eq!(s.decision.user_seq, 6);
    assert!(node.store.decision("k-poison").await.unwrap().is_none());
}

#[tokio::test]
async fn a_policy_change_applies_to_the_next_event() {
    let node = node(Duration::from_secs(60)).await;
    let s = score(&node, txn("c-1", "c", "300", t0(), "FR"))
        .await
        .unwrap();
    assert_eq!(s.decision.outcome, Outcome::Approve);
    let mut def = PolicyDef::seed();
    def.version = 2;
    def.rules.push(
        serde_json::from_str(
            r#"{"name":"over_250","expression":"amount > 250","action":"decline"}"#,
        )
        .unwrap(),
    );
    let policy: Arc<Policy> = Arc::new(def.compile().unwrap());
    node.scorer.set_policy(policy).await;
    let s = score(&node, txn("c-2", "c", "300", t0() + Span::minutes(1), "FR"))
        .await
        .unwrap();
    assert_eq!(s.decision.outcome, Outcome::Decline);
    assert_eq!(s.decision.rule_set_version, 2);
    assert_eq!(fired(&s), ["over_250"]);
}

#[tokio::test]
async fn late_events_are_decided_but_kept_out_of_windows() {
    let node = node(Duration::from_secs(60)).await;
    score(&node, txn("l-1", "l", "30", t0(), "FR"))
        .await
        .unwrap();
    let late = score(&node, txn("l-0", "l", "30", t0() - Span::minutes(10), "FR"))
        .await
        .unwrap();
    assert!(late.decision.late);
    let within = score(&node, txn("l-2", "l", "30", t0() - Span::minutes(2), "FR"))
        .await
        .unwrap();
    assert!(!within.decision.late);
}

#[tokio::test]
async fn a_zero_amount_authorisation_is_decided_and_rules_can_name_it() {
    let node = node(Duration::from_secs(60)).await;
    let mut def = PolicyDef::seed();
    def.version = 2;
    def.rules.push(
        serde_json::from_str(
            r#"{"name":"zero_auth","expression":"amount == 0","action":"review"}"#,
        )
        .unwrap(),
    );
    node.scorer
        .set_policy(Arc::new(def.compile().unwrap()))
        .await;
    let zero = score(&node, txn("z-1", "z", "0.00", t0(), "FR"))
        .await
        .unwrap();
    assert_eq!(fired(&zero), ["zero_auth"]);
    assert_eq!(zero.decision.outcome, Outcome::Review);
    let paid = score(
        &node,
        txn("z-2", "z", "12.00", t0() + Span::minutes(1), "FR"),
    )
    .await
    .unwrap();
    assert!(fired(&paid).is_empty());
}

/// Past its live-actor limit a node passivates its least recently active users early: the
/// live count stays within the limit whatever the population, the busiest users stay live,
/// and an evicted user comes back with its state (the sequence continues).
#[tokio::test]
async fn past_the_live_limit_the_least_recently_active_users_are_passivated() {
    // Every passivation snapshots, so the snapshot shows who was passivated.
    let node = node_with(ScorerConfig {
        passivation_snapshot_after: 1,
        ..live_limit(16)
    })
    .await;
    let at = t0();
    for (i, minutes) in [0, 1].into_iter().enumerate() {
        score(
            &node,
            txn(
                &format!("old-{i}"),
                "old",
                "30",
                at + Span::minutes(minutes),
                "FR",
            ),
        )
        .await
        .unwrap();
    }
    for u in 0..40 {
        let user = format!("u{u}");
        score(&node, txn(&format!("{user}-0"), &user, "30", at, "FR"))
            .await
            .unwrap();
        let live = node.scorer.live_actors().await;
        assert!(live <= 16, "{live} live actors after {user}, limit 16");
    }
    // The first user was the least recently active: passivated, so its snapshot is stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.store.snapshot("old").await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the oldest user was never passivated"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        node.store.snapshot("u39").await.unwrap().is_none(),
        "the most recent user was passivated"
    );
    let s = score(
        &node,
        txn("old-2", "old", "30", at + Span::minutes(2), "FR"),
    )
    .await
    .unwrap();
    assert_eq!(
        s.decision.user_seq, 3,
        "the evicted user continues its sequence"
    );
    let view = node.scorer.inspect("old").await.expect("a view");
    assert_eq!(view.txn_count, 3, "with its earlier events in the profile");
}

/// A node whose store counts each user's restore reads, and runs `before_write` before every
/// batch when given.
async fn node_counting_restore_reads(
    config: ScorerConfig,
    before_write: Option<support::BeforeWrite>,
) -> (Node, RestoreReads) {
    let reads = RestoreReads::default();
    let counted = reads.clone();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(support::HookedStore {
        inner: EmbeddedStore::open(&dir.path().join("s.redb")).unwrap(),
        before_write: before_write.unwrap_or_else(|| Box::new(|_| Box::pin(async { Ok(()) }))),
        before_restore_read: Some(Box::new(move |user| {
            *counted
                .0
                .lock()
                .unwrap()
                .entry(user.to_owned())
                .or_default() += 1;
            Ok(())
        })),
    });
    (node_on(dir, store, config).await, reads)
}

/// Each user's reads of its snapshot or restore point.
#[derive(Clone, Default)]
struct RestoreReads(Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>);

impl RestoreReads {
    fn of(&self, user: &str) -> usize {
        self.0.lock().unwrap().get(user).copied().unwrap_or(0)
    }
}

/// A user evicted past the live limit comes back from the state its actor parked: no read of
/// the store, the sequence and profile continue, and the state is the one a restore from the
/// store rebuilds.
#[tokio::test]
async fn a_returning_user_starts_from_its_parked_state_without_reading_the_store() {
    let (node, reads) = node_counting_restore_reads(live_limit(1), None).await;
    let at = t0();
    for i in 0..3 {
        let t = txn(&format!("r-{i}"), "r", "30", at + Span::minutes(i), "FR");
        score(&node, t).await.unwrap();
    }
    assert_eq!(reads.of("r"), 1, "the first actor looked in the store");
    // Another user takes the only live slot: r is passivated and its state parked.
    score(&node, txn("x-0", "x", "30", at, "FR")).await.unwrap();
    let back = score(&node, txn("r-3", "r", "30", at + Span::minutes(3), "FR"))
        .await
        .unwrap();
    assert_eq!(back.decision.user_seq, 4, "the parked state continues");
    assert_eq!(reads.of("r"), 1, "the returning user read the store");
    let parked = node.scorer.inspect("r").await.expect("a view");
    assert_eq!(parked.txn_count, 4);
    // Passivated for good (parked states forgotten): the next actor restores from the store,
    // to the same state.
    node.scorer.passivate_all().await;
    let restored = node.scorer.inspect("r").await.expect("a view");
    assert_eq!(reads.of("r"), 2);
    assert_eq!(parked, restored);
}

/// Users passivated for a rebalance (their partition left the node) lose their parked
/// states: another node may decide for them next, so their next actors here read the store.
/// With no memory for parked states, every returning user reads the store.
#[tokio::test]
async fn parked_states_are_forgotten_with_their_users_partitions_and_kept_only_with_memory() {
    for (parked_state_bytes, forget) in [(1 << 20, true), (1 << 20, false), (0, false)] {
        let config = ScorerConfig {
            parked_state_bytes,
            ..live_limit(1)
        };
        let (node, reads) = node_counting_restore_reads(config, None).await;
        let at = t0();
        score(&node, txn("r-0", "r", "30", at, "FR")).await.unwrap();
        score(&node, txn("x-0", "x", "30", at, "FR")).await.unwrap();
        if parked_state_bytes > 0 {
            let deadline = Instant::now() + Duration::from_secs(10);
            while node.scorer.parked_states().await == 0 {
                assert!(Instant::now() < deadline, "r was never parked");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if forget {
            // x is live and not picked: only r's parked state goes.
            let picks = only("r");
            assert_eq!(node.scorer.passivate_users(picks).await, 0);
        }
        let back = score(&node, txn("r-1", "r", "30", at + Span::minutes(1), "FR"))
            .await
            .unwrap();
        assert_eq!(back.decision.user_seq, 2);
        let from_store = forget || parked_state_bytes == 0;
        let expected = if from_store { 2 } else { 1 };
        assert_eq!(
            reads.of("r"),
            expected,
            "restore reads with {parked_state_bytes} bytes for parked states, forgotten: {forget}"
        );
    }
}

/// Only the users the park filter picks (with Kafka: those of the partitions the node owns)
/// are parked: another user's next actor reads the store.
#[tokio::test]
async fn users_the_park_filter_leaves_out_are_not_parked() {
    let (node, reads) = node_counting_restore_reads(live_limit(1), None).await;
    node.scorer
        .park_only(Arc::new(|user: &str| user.starts_with("owned")));
    let at = t0();
    for user in ["owned", "other"] {
        score(&node, txn(&format!("{user}-0"), user, "30", at, "FR"))
            .await
            .unwrap();
    }
    score(&node, txn("x-0", "x", "30", at, "FR")).await.unwrap();
    for user in ["owned", "other"] {
        let t = txn(
            &format!("{user}-1"),
            user,
            "30",
            at + Span::minutes(1),
            "FR",
        );
        assert_eq!(score(&node, t).await.unwrap().decision.user_seq, 2);
    }
    assert_eq!(reads.of("owned"), 1, "the picked user came back parked");
    assert_eq!(
        reads.of("other"),
        2,
        "the other user came back from the store"
    );
}

/// An event whose transaction id another user's decision already holds is answered with that
/// decision, and the user it was folded into comes back from the store without it: the state
/// ahead of the store is kept neither parked nor live.
#[tokio::test]
async fn an_event_answered_with_another_users_decision_leaves_no_trace_in_the_state() {
    let node = node_with_live_limit(1).await;
    let at = t0();
    score(&node, txn("shared", "first", "30", at, "FR"))
        .await
        .unwrap();
    let answer = score(&node, txn("shared", "second", "30", at, "FR"))
        .await
        .unwrap();
    assert!(answer.duplicate);
    assert_eq!(answer.decision.user_id, "first");
    // first takes the only live place back: second passivates, and is not parked.
    node.scorer.inspect("first").await.expect("a view");
    let view = node.scorer.inspect("second").await.expect("a view");
    assert_eq!(
        (view.seq, view.txn_count),
        (0, 0),
        "the parked state kept it"
    );
    score(&node, txn("shared", "third", "30", at, "FR"))
        .await
        .unwrap();
    let view = node.scorer.inspect("third").await.expect("a view");
    assert_eq!((view.seq, view.txn_count), (0, 0), "the live state kept it");
}

/// Nor does a snapshot: one due right after such an event is not written with it, so the
/// user's next actor, restored from the store, starts without it.
#[tokio::test]
async fn an_event_answered_with_another_users_decision_is_never_snapshotted() {
    let node = node_with(ScorerConfig {
        snapshot_every: 1,
        passivation_snapshot_after: 1,
        parked_state_bytes: 0,
        ..live_limit(1)
    })
    .await;
    let at = t0();
    score(&node, txn("shared", "first", "30", at, "FR"))
        .await
        .unwrap();
    let answer = score(&node, txn("shared", "second", "30", at, "FR"))
        .await
        .unwrap();
    assert!(answer.duplicate);
    let second = only("second");
    assert_eq!(node.scorer.passivate_users(Arc::clone(&second)).await, 1);
    assert_eq!(
        stored_snapshot_seq(&node, "second").await,
        None,
        "a snapshot folds it in"
    );
    let view = node.scorer.inspect("second").await.expect("a view");
    assert_eq!(
        (view.seq, view.txn_count),
        (0, 0),
        "the restored state has it"
    );
    // Its own next event is snapshotted at passivation as usual.
    score(
        &node,
        txn("own", "second", "30", at + Span::minutes(1), "FR"),
    )
    .await
    .unwrap();
    assert_eq!(node.scorer.passivate_users(second).await, 1);
    assert_eq!(
        stored_snapshot_seq(&node, "second").await,
        Some(1),
        "its own event's snapshot"
    );
}

/// A busy user is snapshotted at its next event once its decisions are stored; when its
/// events come back to back, so that they never are by then, once twice `snapshot_every` are
/// missing from its stored snapshot.
#[tokio::test]
async fn a_busy_user_is_snapshotted_within_twice_snapshot_every() {
    let batches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting: support::BeforeWrite = {
        let batches = Arc::clone(&batches);
        Box::new(move |_| {
            batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        })
    };
    let config = ScorerConfig {
        snapshot_every: 1,
        parked_state_bytes: 0,
        ..live_limit(4)
    };
    let node = node_with_hook(config, Some(counting)).await;
    let event = |i: i64| {
        txn(
            &format!("busy-{i}"),
            "busy",
            "30",
            t0() + Span::minutes(i),
            "FR",
        )
    };
    // Sent together: on this test's one thread the actor decides all three back to back,
    // before the writer runs.
    let (a, b, c) = tokio::join!(
        score(&node, event(0)),
        score(&node, event(1)),
        score(&node, event(2))
    );
    assert_eq!(c.unwrap().decision.user_seq, 3);
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(
        stored_snapshot_seq(&node, "busy").await,
        Some(2),
        "the third waits for the first two"
    );
    // Only the third waited: the first two were committed together, then the snapshot with
    // the third.
    assert_eq!(batches.load(std::sync::atomic::Ordering::SeqCst), 2);
    // One at a time, each event finds the one before it stored.
    score(&node, event(3)).await.unwrap();
    score(&node, event(4)).await.unwrap();
    assert_eq!(stored_snapshot_seq(&node, "busy").await, Some(4));
}

/// A snapshot due while its user's last decision is not yet answered waits for the answer:
/// queued behind it, it could be committed in the same batch as a decision the store answers
/// with another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_waits_until_its_users_last_decision_is_answered() {
    let (node, gate, holding) = holding_a_batch_of_first(ScorerConfig {
        snapshot_every: 1,
        ..live_limit(4)
    })
    .await;
    // Two events of second's queue behind the held batch.
    let at = t0();
    let later = at + Span::minutes(1);
    let (answer, next, view) = tokio::join!(
        score(&node, txn("shared", "second", "30", at, "FR")),
        score(&node, txn("second-2", "second", "30", later, "FR")),
        async {
            // Answered once both events are decided and queued, before the gate opens.
            let view = node.scorer.inspect("second").await;
            gate.add_permits(1);
            view
        }
    );
    assert_eq!(view.map(|v| v.seq), Some(2));
    assert!(answer.unwrap().duplicate);
    next.unwrap();
    holding.await.unwrap().unwrap();
    let second = only("second");
    assert_eq!(node.scorer.passivate_users(second).await, 1);
    assert_eq!(
        stored_snapshot_seq(&node, "second").await,
        None,
        "a snapshot folds it in"
    );
}

/// Nor does a passivation's snapshot: it waits for the user's decisions to be answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passivation_snapshot_waits_until_its_users_last_decision_is_answered() {
    let (node, gate, holding) = holding_a_batch_of_first(ScorerConfig {
        passivation_snapshot_after: 1,
        ..live_limit(4)
    })
    .await;
    let at = t0();
    let second = only("second");
    let (answer, passivated) = tokio::join!(
        score(&node, txn("shared", "second", "30", at, "FR")),
        async {
            // Once second's decision is queued behind the held batch, passivate it, and
            // open the gate once its passivation has queued what it waits for.
            node.scorer.inspect("second").await.expect("a view");
            let queued = node.writer.mark();
            let (passivated, ()) = tokio::join!(node.scorer.passivate_users(second), async {
                let moved = async {
                    while node.writer.mark() == queued {
                        tokio::task::yield_now().await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(10), moved)
                    .await
                    .expect("the passivation queued nothing");
                gate.add_permits(1);
            });
            passivated
        }
    );
    assert!(answer.unwrap().duplicate);
    assert_eq!(passivated, 1);
    holding.await.unwrap().unwrap();
    assert_eq!(
        stored_snapshot_seq(&node, "second").await,
        None,
        "a snapshot folds it in"
    );
}

/// A user still passivating when its partition leaves the node is not parked once it stops:
/// its next actor here reads the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_passivating_as_its_partition_leaves_is_not_parked() {
    // The store holds the batch with r's passivation snapshot until the gate opens.
    let (Hold { held, gate }, hook) =
        Hold::batches_with(|op| matches!(op, WriteOp::Snapshot(s) if s.user_id == "r"));
    let config = ScorerConfig {
        passivation_snapshot_after: 1,
        ..live_limit(1)
    };
    let (node, reads) = node_counting_restore_reads(config, Some(hook)).await;
    let node = Arc::new(node);
    let x = passivating_while_held(&node, "r", "x", &held).await;
    let picks = only("r");
    assert_eq!(node.scorer.passivate_users(picks).await, 0, "r is not live");
    gate.add_permits(1);
    x.await.unwrap().unwrap();
    let back = score(&node, txn("r-1", "r", "30", t0() + Span::minutes(1), "FR"))
        .await
        .unwrap();
    assert_eq!(back.decision.user_seq, 2);
    assert_eq!(reads.of("r"), 2, "r came back from a parked state");
}

/// Looking at users also starts actors: past the limit it evicts as scoring does, and every
/// look is still answered.
#[tokio::test]
async fn looking_at_more_users_than_the_limit_answers_every_look() {
    let node = node_with_live_limit(4).await;
    score(&node, txn("seen-0", "seen", "30", t0(), "FR"))
        .await
        .unwrap();
    for u in 0..12 {
        let view = node.scorer.inspect(&format!("look-{u}")).await;
        assert_eq!(view.map(|v| v.seq), Some(0), "look-{u} was not answered");
        assert!(node.scorer.live_actors().await <= 4);
    }
    // Evicted long ago, or still passivating: either way its next actor answers.
    let view = node
        .scorer
        .inspect("seen")
        .await
        .expect("the evicted user never came back");
    assert_eq!(view.seq, 1, "the evicted user restores its state");
}

/// A look at a user whose actor is passivating (writing its snapshot) waits for it and is
/// answered by the user's next actor, restored from that snapshot — not refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_at_a_passivating_user_is_answered_once_its_snapshot_is_stored() {
    // The store holds the batch with the first user's snapshot until the gate opens.
    let (Hold { held, gate }, hook) =
        Hold::batches_with(|op| matches!(op, WriteOp::Snapshot(s) if s.user_id == "first"));
    let config = ScorerConfig {
        passivation_snapshot_after: 1,
        ..live_limit(1)
    };
    let node = Arc::new(node_with_hook(config, Some(hook)).await);
    let second = passivating_while_held(&node, "first", "second", &held).await;
    let view = look_waiting_for_the_gate(&node, "first", &gate).await;
    assert_eq!(view.seq, 1, "the user's next actor restored its event");
    second.await.unwrap().unwrap();
}

/// Passivation writes a snapshot only once `passivation_snapshot_after` (4 by default) of the
/// user's decisions are not in its stored one; before that the user comes back by replaying
/// its decisions, with its sequence and profile whole.
#[tokio::test]
async fn passivation_snapshots_a_user_only_every_few_decisions() {
    let node = node_with(ScorerConfig {
        shards: 1,
        passivate_after: Duration::from_secs(3600),
        ..ScorerConfig::default()
    })
    .await;
    let pay = |seq: i64| {
        let at = t0() + Span::minutes(seq);
        score(&node, txn(&format!("u-{seq}"), "u", "30", at, "FR"))
    };
    let stored_seq = || stored_snapshot_seq(&node, "u");
    for seq in 1..=3 {
        pay(seq).await.unwrap();
    }
    assert_eq!(node.scorer.passivate_all().await, 1);
    assert_eq!(stored_seq().await, None, "three decisions were snapshotted");
    let view = node.scorer.inspect("u").await.expect("a view");
    assert_eq!(
        (view.seq, view.txn_count),
        (3, 3),
        "restored by replaying its decisions"
    );

    assert_eq!(pay(4).await.unwrap().decision.user_seq, 4);
    node.scorer.passivate_all().await;
    assert_eq!(
        stored_seq().await,
        Some(4),
        "four decisions were not snapshotted"
    );

    pay(5).await.unwrap();
    node.scorer.passivate_all().await;
    assert_eq!(
        stored_seq().await,
        Some(4),
        "one more decision was snapshotted"
    );
    let view = node.scorer.inspect("u").await.expect("a view");
    assert_eq!(
        (view.seq, view.txn_count),
        (5, 5),
        "the snapshot plus one replayed"
    );
}

/// An actor passivated without a snapshot still stops only once the decisions it queued are
/// durable: a look at the user meanwhile waits, and the user's next actor restores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passivating_without_a_snapshot_waits_for_the_users_queued_decisions() {
    // The store holds the batch with the first user's decision until the gate opens.
    let (Hold { held, gate }, hook) =
        Hold::batches_with(|op| matches!(op, WriteOp::Decision(d) if d.user_id == "first"));
    let node = Arc::new(node_with_hook(live_limit(1), Some(hook)).await);
    let first = {
        let node = Arc::clone(&node);
        tokio::spawn(async move { score(&node, txn("first-0", "first", "30", t0(), "FR")).await })
    };
    tokio::time::timeout(Duration::from_secs(10), held.notified())
        .await
        .expect("the first user's decision was never written");
    // A second user takes the only live place: the first is passivated, its decision held.
    // One poll routes the event to the shard, ahead of the look below; its answer waits.
    let mut second = Box::pin(score(&node, txn("second-0", "second", "30", t0(), "FR")));
    assert!(futures::poll!(&mut second).is_pending());
    let view = look_waiting_for_the_gate(&node, "first", &gate).await;
    assert_eq!(view.seq, 1, "the user's next actor restored its decision");
    assert!(node.store.snapshot("first").await.unwrap().is_none());
    first.await.unwrap().unwrap();
    second.await.unwrap();
}

/// A queue mark taken after a decision settles at once once that decision is stored, even
/// while the writer is stuck on a later batch; a mark taken after the stuck decision waits
/// for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_mark_settles_without_waiting_behind_later_writes() {
    let (Hold { gate, .. }, hook) = Hold::batches_with(a_decision_of_user_held);
    let (_dir, writer) = hooked_writer(hook, WriterConfig::default());
    let early = submit(&writer, "early-1", "early").await;
    let early_mark = writer.mark();
    early.await.unwrap().unwrap();
    let held = submit(&writer, "held-1", "held").await;
    let held_mark = writer.mark();
    tokio::time::timeout(Duration::from_secs(5), writer.settle(early_mark))
        .await
        .expect("a settled mark waited behind a held batch")
        .unwrap();
    let waiting = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.settle(held_mark).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "settled before its decision's batch was written"
    );
    gate.add_permits(1);
    held.await.unwrap().unwrap();
    waiting.await.unwrap().unwrap();
}

/// Batches finished ahead of a request (here batches of one) do not settle its mark: only its
/// own batch does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_mark_is_not_settled_by_the_batches_ahead_of_its_request() {
    let (Hold { gate, .. }, hook) = Hold::batches_with(a_decision_of_user_held);
    let config = WriterConfig {
        max_batch: 1,
        ..WriterConfig::default()
    };
    let (_dir, writer) = hooked_writer(hook, config);
    let mut acks = Vec::new();
    for (id, user) in [("h-1", "held"), ("a-1", "a"), ("b-1", "b"), ("h-2", "held")] {
        acks.push(submit(&writer, id, user).await);
    }
    // Taken while the first batch is held: the last decision is three batches behind it.
    let mark = writer.mark();
    gate.add_permits(1);
    let mut acks = acks.into_iter();
    for done in acks.by_ref().take(3) {
        done.await.unwrap().unwrap();
    }
    // Three of the four requests are finished; the last is held.
    let waiting = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.settle(mark).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiting.is_finished(),
        "settled while its decision was still queued behind a held batch"
    );
    gate.add_permits(1);
    waiting.await.unwrap().unwrap();
    for done in acks {
        done.await.unwrap().unwrap();
    }
}

/// A sender that gives up while the queue is full leaves no count behind: later marks still
/// settle at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_given_up_on_a_full_queue_does_not_hold_back_later_marks() {
    let (Hold { held, gate }, hook) = Hold::batches_with(a_decision_of_user_held);
    let config = WriterConfig {
        queue_capacity: 1,
        ..WriterConfig::default()
    };
    let (_dir, writer) = hooked_writer(hook, config);
    let first_held = submit(&writer, "held-1", "held").await;
    held.notified().await;
    let queued = submit(&writer, "q-1", "q").await;
    // The queue is full: this send waits for a place, and is given up.
    let (ack, _done) = tokio::sync::oneshot::channel();
    let decision = sentinel_store::conformance::decision("gone-1", "gone", 1, 0);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        writer.submit_decision(Arc::new(decision), ack),
    )
    .await;
    assert!(gave_up.is_err(), "the queue had room");
    gate.add_permits(1);
    first_held.await.unwrap().unwrap();
    queued.await.unwrap().unwrap();
    let early = submit(&writer, "early-1", "early").await;
    let early_mark = writer.mark();
    early.await.unwrap().unwrap();
    // The writer is stuck again: only a mark that needs no queue round trip settles.
    let _second_held = submit(&writer, "held-2", "held").await;
    held.notified().await;
    tokio::time::timeout(Duration::from_secs(5), writer.settle(early_mark))
        .await
        .expect("a mark waited for a request that was never queued")
        .unwrap();
    gate.add_permits(1);
}

/// Queues a decision of `user` straight to `writer`; the receiver gets its acknowledgement.
async fn submit(
    writer: &Writer,
    id: &str,
    user: &str,
) -> tokio::sync::oneshot::Receiver<Result<Stored, DecisionError>> {
    let (ack, done) = tokio::sync::oneshot::channel();
    let decision = sentinel_store::conformance::decision(id, user, 1, 0);
    writer
        .submit_decision(Arc::new(decision), ack)
        .await
        .unwrap();
    done
}

/// Holds store batches until the test lets them through.
struct Hold {
    /// Told each time a batch starts being held.
    held: Arc<tokio::sync::Notify>,
    /// Each permit added lets one held batch through.
    gate: Arc<tokio::sync::Semaphore>,
}

impl Hold {
    /// A store hook that holds every batch with an operation `picks` picks.
    fn batches_with(picks: fn(&WriteOp) -> bool) -> (Hold, support::BeforeWrite) {
        let held = Arc::new(tokio::sync::Notify::new());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let hook: support::BeforeWrite = {
            let (held, gate) = (Arc::clone(&held), Arc::clone(&gate));
            Box::new(move |ops| {
                let holds = ops.iter().any(picks);
                let (held, gate) = (Arc::clone(&held), Arc::clone(&gate));
                Box::pin(async move {
                    if holds {
                        held.notify_one();
                        gate.acquire().await.unwrap().forget();
                    }
                    Ok(())
                })
            })
        };
        (Hold { held, gate }, hook)
    }
}

/// A node (parking nothing) where user first has decided transaction "shared", and whose
/// writer holds a batch with another decision of first's until a permit is added to the gate
/// returned; with the task waiting for that decision.
async fn holding_a_batch_of_first(
    config: ScorerConfig,
) -> (
    Arc<Node>,
    Arc<tokio::sync::Semaphore>,
    tokio::task::JoinHandle<Result<Stored, DecisionError>>,
) {
    let (Hold { held, gate }, hook) =
        Hold::batches_with(|op| matches!(op, WriteOp::Decision(d) if d.transaction_id == "hold"));
    let config = ScorerConfig {
        parked_state_bytes: 0,
        ..config
    };
    let node = Arc::new(node_with_hook(config, Some(hook)).await);
    score(&node, txn("shared", "first", "30", t0(), "FR"))
        .await
        .unwrap();
    let holding = {
        let node = Arc::clone(&node);
        tokio::spawn(async move { score(&node, txn("hold", "first", "30", t0(), "FR")).await })
    };
    tokio::time::timeout(Duration::from_secs(10), held.notified())
        .await
        .expect("the batch was never held");
    (node, gate, holding)
}

/// Picks the decisions of the user "held".
fn a_decision_of_user_held(op: &WriteOp) -> bool {
    matches!(op, WriteOp::Decision(d) if d.user_id == "held")
}

/// A writer over an embedded store with `hook` in front of it.
fn hooked_writer(hook: support::BeforeWrite, config: WriterConfig) -> (tempfile::TempDir, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(support::HookedStore {
        inner: EmbeddedStore::open(&dir.path().join("s.redb")).unwrap(),
        before_write: hook,
        before_restore_read: None,
    });
    (dir, Writer::start(store, config))
}

/// Looks at `user`, whose held write the look must wait for: asserts it is still unanswered
/// after 100 ms, then lets one held batch through and returns the answer.
/// On a node holding one live actor whose store holds `user`'s snapshot: scores `user`'s
/// first event, then starts scoring `other`'s, which takes the only live place, and returns
/// once `user` is passivating, held at its snapshot. The task scoring `other` ends once the
/// snapshot is let through.
async fn passivating_while_held(
    node: &Arc<Node>,
    user: &str,
    other: &str,
    held: &tokio::sync::Notify,
) -> tokio::task::JoinHandle<Result<Stored, DecisionError>> {
    score(node, txn(&format!("{user}-0"), user, "30", t0(), "FR"))
        .await
        .unwrap();
    let other = {
        let (node, other) = (Arc::clone(node), other.to_owned());
        tokio::spawn(async move {
            score(&node, txn(&format!("{other}-0"), &other, "30", t0(), "FR")).await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), held.notified())
        .await
        .unwrap_or_else(|_| panic!("{user} was never passivated"));
    other
}

async fn look_waiting_for_the_gate(
    node: &Node,
    user: &str,
    gate: &tokio::sync::Semaphore,
) -> sentinel_engine::UserView {
    let look = {
        let (scorer, user) = (node.scorer.clone(), user.to_owned());
        tokio::spawn(async move { scorer.inspect(&user).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !look.is_finished(),
        "the look at {user} was answered before its held write was stored"
    );
    gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(10), look)
        .await
        .expect("the look was never answered")
        .unwrap()
        .expect("a look at a passivating user was refused")
}
