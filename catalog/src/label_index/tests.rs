//! Labels posted on one catalogue reach the label index another catalogue over the same store
//! builds (two nodes of a cluster), with the labelled decision's merchant and device.

use super::*;
use sentinel_actors::{smoothed_share, PolicyDef, UserState, PRIOR_SHARE};
use sentinel_event::Transaction;
use sentinel_store::{EmbeddedStore, Store, WriteOp};
use std::time::Instant;

async fn open(store: &Arc<dyn Store>) -> Catalog {
    Catalog::open(Arc::clone(store), PolicyDef::seed(), 300_000)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_label_posted_on_one_node_reaches_the_index_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let (here, there) = (open(&store).await, open(&store).await);
    let event: Transaction = serde_json::from_value(serde_json::json!({
        "transaction_id": "t-1", "user_id": "u", "amount": "80", "currency": "EUR",
        "timestamp": "2026-11-20T12:00:00Z", "merchant_id": "m-1", "device_id": "d-1"
    }))
    .unwrap();
    let decision =
        UserState::default().decide(Arc::new(event), &here.policy(), 300_000, Instant::now());
    store
        .write_batch(vec![WriteOp::Decision(Arc::new(decision))])
        .await
        .unwrap();
    let key = LabelSighting::new(0, Some("m-1"), Some("d-1"), true);
    // What the other node's user actors read: the index its published policy carries.
    let shares = |at_ms: i64| {
        there
            .policy()
            .models
            .label_risk
            .load()
            .shares(key.merchant, key.device, at_ms)
    };

    let label = here
        .label("t-1", LabelValue::Fraud, String::new(), "ana")
        .await
        .unwrap();
    let at = label.at.timestamp_millis();
    assert_eq!(shares(at + 1), [PRIOR_SHARE; 6], "not refreshed yet");
    assert_eq!(there.refresh_label_risk(0).await.unwrap(), 1);
    assert_eq!(shares(at), [smoothed_share(1, 1); 6]);
    assert_eq!(
        shares(at - 1),
        [PRIOR_SHARE; 6],
        "the label is not older than the event"
    );
    // With a delay, events see the label only that much later.
    there.refresh_label_risk(60_000).await.unwrap();
    assert_eq!(shares(at + 59_999), [PRIOR_SHARE; 6]);
    assert_eq!(shares(at + 60_000), [smoothed_share(1, 1); 6]);

    // A later label replaces the earlier one, at its own time.
    let relabel = here
        .label("t-1", LabelValue::Legit, String::new(), "ana")
        .await
        .unwrap();
    there.refresh_label_risk(0).await.unwrap();
    let later = relabel.at.timestamp_millis();
    assert_eq!(shares(later), [smoothed_share(0, 1); 6]);
    // Training reads the same index.
    let trained = here.label_index(0).await.unwrap();
    assert_eq!(
        trained.shares(key.merchant, key.device, later),
        shares(later)
    );
}
