//! Seed document 004's fraud ring, as its author sends it: two users on one device within
//! seconds, byte for byte. The shipped `shared_device_pair` rule puts the second user in review,
//! over HTTP (as the node comes, `merchant` is read as `merchant_name`) and over Kafka (a real
//! tansu broker, with the shipped `config/mapping-seed-004.toml`, which gives a message without
//! id, time or currency its own); the first user, alone on the device, is approved.

use sentinel_testkit as support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{collect, post_text, Broker, NodeProcess, NODE_TOPICS};

/// The seed's payload for ring member `n`, byte for byte.
fn seed_payload(n: u32) -> String {
    format!(
        r#"{{"user_id": "user-ring-{n}", "card_id": "card-ring-{n}", "device_id": "device-shared-123", "amount": 150.00, "merchant": "Online Store"}}"#
    )
}

/// The `shared_device_pair` reason of a decision, if it fired.
fn pair_reason(decision: &Value) -> Option<&Value> {
    decision["reasons"]
        .as_array()?
        .iter()
        .find(|r| r["rule"] == "shared_device_pair")
}

/// The second user was reviewed for the pair, and the rule saw two users on the device.
fn assert_second_user_reviewed(first: &Value, second: &Value) {
    assert_eq!(first["outcome"], "approve", "{first}");
    assert!(pair_reason(first).is_none(), "{first}");
    assert_eq!(second["outcome"], "review", "{second}");
    let reason = pair_reason(second).unwrap_or_else(|| panic!("no pair reason: {second}"));
    let values = reason["values"].as_array().unwrap();
    assert!(
        values.contains(&json!(["device.distinct_users(10m)", 2.0])),
        "{reason}"
    );
    assert!(values.contains(&json!(["is_new_device", true])), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_ring_pair_is_reviewed_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]).await;
    let client = support::admin_client();
    let mut decisions = Vec::new();
    for n in [1, 2] {
        let (status, decision) =
            post_text(&client, node.url("/v1/transactions"), seed_payload(n)).await;
        assert_eq!(status, 200, "{decision}");
        decisions.push(decision);
    }
    assert_second_user_reviewed(&decisions[0], &decisions[1]);

    // The same user again on the device is not a second user: approved.
    let (_, again) = post_text(&client, node.url("/v1/transactions"), seed_payload(1)).await;
    assert_eq!(again["outcome"], "approve", "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_ring_pair_is_reviewed_over_kafka() {
    let broker = Broker::start().await;
    broker.create_topics(&NODE_TOPICS, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let mapping = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/mapping-seed-004.toml"
    );
    let _node = NodeProcess::start(
        dir.path(),
        &[
            "--kafka-brokers",
            &broker.address,
            "--kafka-group",
            "sentinel-ring-test",
            "--mapping-file",
            mapping,
        ],
    )
    .await;
    let producer = broker.producer();
    let outputs = broker.consumer(&["transactions_approved", "transactions_fraud"]);
    let of_user = |records: &[support::Record], user: &str| -> Option<(String, Value)> {
        records
            .iter()
            .find(|r| r.key.as_deref() == Some(user))
            .map(|r| (r.topic.clone(), r.json()))
    };
    // One after the other, as the seed's curl commands are: the second is sent once the
    // first is decided.
    let mut records = Vec::new();
    for n in [1, 2] {
        let user = format!("user-ring-{n}");
        broker
            .produce(&producer, "transactions", &user, seed_payload(n).as_bytes())
            .await;
        records.extend(
            collect(&outputs, Duration::from_secs(90), |rs| {
                of_user(rs, &user).is_some()
            })
            .await,
        );
    }
    let (first_topic, first) = of_user(&records, "user-ring-1").unwrap();
    let (second_topic, second) = of_user(&records, "user-ring-2").unwrap();
    assert_second_user_reviewed(&first, &second);
    // Approvals carry the event by reference, the fraud topic the whole event.
    assert!(first.get("event").is_none(), "{first}");
    assert_eq!(second["event"]["merchant_name"], "Online Store", "{second}");
    assert_eq!(first_topic, "transactions_approved");
    assert_eq!(second_topic, "transactions_fraud");
}
