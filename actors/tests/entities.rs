//! Shared entities through the real scorer and store: the seed's `shared_device_ring` rule fires
//! when a third user touches a device within 24 h, whichever shards own the users; events
//! without a device skip the entity actors; entity state survives user passivation and is
//! lost (at most one window's worth) when the node restarts.

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use rust_decimal::Decimal;
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::PolicyDef;
use sentinel_event::{Channel, Location, Outcome, Transaction};
use sentinel_rules::OwnedValue;
use sentinel_store::{EmbeddedStore, Store, Stored, Writer, WriterConfig};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn store(path: &Path) -> Arc<dyn Store> {
    Arc::new(EmbeddedStore::open(&path.join("s.redb")).unwrap())
}

/// A node's user and entity actors over `store` (a new call is a restarted node).
async fn scorer(store: &Arc<dyn Store>) -> Scorer {
    let store = Arc::clone(store);
    let writer = Writer::start(store, WriterConfig::default());
    let policy = Arc::new(PolicyDef::seed().compile().unwrap());
    let config = ScorerConfig {
        shards: 4,
        passivate_after: Duration::from_secs(60),
        lateness: Duration::from_secs(300),
        snapshot_every: 3,
        ..ScorerConfig::default()
    };
    Scorer::start(writer, policy, config).await.unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn txn(id: &str, user: &str, device: Option<&str>, at: DateTime<Utc>) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        user_id: user.into(),
        card_id: Some(format!("card-{user}")),
        device_id: device.map(str::to_owned),
        ip: Some(format!("203.0.113.{}", user.len())),
        amount: Decimal::from_str("40.00").unwrap(),
        currency: "EUR".into(),
        merchant_id: Some("m-1".into()),
        merchant_name: None,
        merchant_category: Some("grocery".into()),
        channel: Some(Channel::Web),
        kind: None,
        location: Some(Location {
            country: "FR".into(),
            city: None,
            lat: None,
            lon: None,
        }),
        timestamp: at,
        metadata: None,
        base: None,
    }
}

async fn score(scorer: &Scorer, t: Transaction) -> Stored {
    scorer.score(Arc::new(t), Instant::now()).await.unwrap()
}

/// The rules that fired on a decision.
fn fired(stored: &Stored) -> Vec<&str> {
    stored
        .decision
        .reasons
        .iter()
        .map(|r| r.rule.as_str())
        .collect()
}

fn ring_count(stored: &Stored) -> Option<f64> {
    let reason = stored
        .decision
        .reasons
        .iter()
        .find(|r| r.rule == "shared_device_ring")?;
    reason.values.iter().find_map(|(label, v)| match v {
        OwnedValue::Number(n) if label == "device.distinct_users(24h)" => Some(*n),
        _ => None,
    })
}

#[tokio::test]
async fn a_third_user_on_one_device_fires_the_ring_rule() {
    let dir = tempfile::tempdir().unwrap();
    let scorer = scorer(&store(dir.path())).await;
    let ring = Some("shared-dev");
    let at = t0();

    // The first two users (and the first user again) are below the ring's threshold; the
    // second user, new to the device within ten minutes of the first, is the seed's pair.
    for (id, user, minute, rules) in [
        ("a1", "ann", 0, vec![]),
        ("b1", "bob", 1, vec!["shared_device_pair"]),
        ("a2", "ann", 2, vec![]),
    ] {
        let s = score(&scorer, txn(id, user, ring, at + Span::minutes(minute))).await;
        assert_eq!(fired(&s), rules, "{id}");
    }
    // Events without a device never count, and never fire.
    let s = score(&scorer, txn("x1", "xavier", None, at + Span::minutes(3))).await;
    assert!(s.decision.reasons.is_empty());

    let third = score(&scorer, txn("c1", "cyd", ring, at + Span::minutes(4))).await;
    assert_eq!(
        ring_count(&third),
        Some(3.0),
        "{:?}",
        third.decision.reasons
    );
    assert_eq!(third.decision.outcome, Outcome::Review);
    // A redelivery answers with the stored decision and does not count again.
    let again = score(&scorer, txn("c1", "cyd", ring, at + Span::minutes(4))).await;
    assert!(again.duplicate);

    // Passivating the user actors leaves the entities alone.
    assert!(scorer.passivate_all().await > 0);
    let fourth = score(&scorer, txn("d1", "dee", ring, at + Span::minutes(5))).await;
    assert_eq!(ring_count(&fourth), Some(4.0));

    // Event time, not wall time: a day later only the new user is inside the window.
    let later = score(&scorer, txn("e1", "eve", ring, at + Span::hours(25))).await;
    assert!(
        later.decision.reasons.is_empty(),
        "{:?}",
        later.decision.reasons
    );
    assert!(scorer.entities().local_len() >= 1);
    scorer.shutdown().await;
}

#[tokio::test]
async fn entity_state_is_lost_on_restart_and_rebuilt_by_new_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Some("restart-dev");
    let at = t0();
    let store = store(dir.path());
    let first = scorer(&store).await;
    for (id, user, minute) in [("a1", "ann", 0), ("b1", "bob", 1)] {
        score(&first, txn(id, user, ring, at + Span::minutes(minute))).await;
    }
    first.shutdown().await;
    drop(first);

    // The users restore from the store; the device's users do not: the third user is the
    // device's second as far as the new process knows (after ann's new event).
    let second = scorer(&store).await;
    let ann = score(&second, txn("a2", "ann", ring, at + Span::minutes(2))).await;
    assert_eq!(ann.decision.user_seq, 2, "the user restored from the store");
    let third = score(&second, txn("c1", "cyd", ring, at + Span::minutes(2))).await;
    assert_eq!(fired(&third), ["shared_device_pair"]);
    // Before the restart this would have been the fourth user; now it is the third.
    let dee = score(&second, txn("d1", "dee", ring, at + Span::minutes(3))).await;
    assert_eq!(ring_count(&dee), Some(3.0), "{:?}", dee.decision.reasons);
    second.shutdown().await;
}
