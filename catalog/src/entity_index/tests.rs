//! The live entity-risk index over a real store: decisions stored by one node and labels
//! posted on another reach the index a third catalogue builds, point-in-time, and training
//! builds the same index from the same store.

use super::*;
use sentinel_engine::{PolicyDef, UserState};
use sentinel_event::Transaction;
use sentinel_store::{EmbeddedStore, WriteOp};
use std::time::Instant;

async fn open(store: &Arc<dyn Store>) -> Catalog {
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
    let size = there.refresh_entity_risk(0, Utc::now()).await.unwrap();
    assert_eq!(
        size,
        EntityIndexSize {
            labels: 0,
            entities: 2
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
            .refresh_entity_risk(0, Utc::now())
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
    there.refresh_entity_risk(60_000, Utc::now()).await.unwrap();
    assert_eq!(features(at + 59_999)[..6], one_legit);
    assert_eq!(features(at + 60_000)[..6], one_fraud);

    // The tail reads only new decisions: another one is counted once, however often it runs.
    store_decision(&here, "t-2", two_hours_ago).await;
    for _ in 0..3 {
        there.refresh_entity_risk(0, Utc::now()).await.unwrap();
    }
    assert_eq!(features(at)[..6], [2.0, 2.0, 2.0, 0.5, 0.5, 0.5]);

    // A later label replaces the earlier one, at its own time.
    let relabel = here
        .label(crate::LabelInput::new("t-1", LabelValue::Legit), "ana")
        .await
        .unwrap();
    there.refresh_entity_risk(0, Utc::now()).await.unwrap();
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
