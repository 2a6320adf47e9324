//! Scoring over HTTP against a running node (no Kafka): decisions, idempotent redelivery,
//! precise refusals, metrics, and a clean stop.

mod support;

use serde_json::json;
use support::{event, metric_value, NodeProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_scoring_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), &[]).await;
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(node.url("/v1/transactions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // A minimal event: the node assigns what is missing and says so.
    let r = post(json!({"user_id": "h-1", "amount": "19.99"}).to_string())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let minimal: serde_json::Value = r.json().await.unwrap();
    assert_eq!(minimal["outcome"], "approve");
    assert_eq!(minimal["score"], 0.0);
    assert_eq!(minimal["assigned"]["transaction_id"], true);
    assert_eq!(minimal["event"]["amount"], "19.99");
    assert!(minimal["latency_us"].as_u64().is_some());
    assert_eq!(minimal["rule_set_version"], 1);

    // A large amount is declined-or-reviewed with its reason and the value the rule saw.
    let r = post(event("h-big", "h-2", "50000", 1, "FR").to_string())
        .await
        .unwrap();
    let big: serde_json::Value = r.json().await.unwrap();
    assert_eq!(big["outcome"], "review");
    assert_eq!(big["reasons"][0]["rule"], "large_amount");
    assert_eq!(big["reasons"][0]["values"][0], json!(["amount", 50000.0]));

    // The same transaction id again: the first decision, not a second one.
    let r = post(event("h-big", "h-2", "1", 1, "FR").to_string())
        .await
        .unwrap();
    let again: serde_json::Value = r.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event"]["amount"], "50000");
    assert_eq!(node.user_decisions(&client, "h-2").await.len(), 1);
    let stored = node.decision(&client, "h-big").await.unwrap();
    assert_eq!(stored["outcome"], "review");

    // Bad input: 422 naming the field, or 413 for the oversized body.
    let valid = event("h-bad", "h-3", "10", 1, "FR");
    let with = |field: &str, value: serde_json::Value| {
        let mut e = valid.clone();
        e[field] = value;
        e.to_string()
    };
    for (body, field) in [
        ("{oops".to_string(), "body"),
        (with("amount", json!(-3)), "amount"),
        (with("amount", json!("NaN")), "amount"),
        (with("currency", json!("ABC")), "currency"),
        (
            with("timestamp", json!("1970-01-01T00:00:00Z")),
            "timestamp",
        ),
        (with("channel", json!("fax")), "channel"),
        (with("surprise", json!(1)), "surprise"),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), 422, "{body}");
        let err: serde_json::Value = r.json().await.unwrap();
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let r = post(with("metadata", json!({"blob": "x".repeat(1_000_000)})))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    let metrics = node.metrics(&client).await;
    assert_eq!(
        metric_value(&metrics, r#"sentinel_decisions_total{outcome="approve"}"#),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, r#"sentinel_decisions_total{outcome="review"}"#),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, r#"sentinel_events_received_total{source="http"}"#),
        3.0
    );

    assert_eq!(node.terminate(), Some(0), "{}", node.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut node = NodeProcess::start(dir.path(), &[]).await;
    for i in 0..5 {
        let r = client
            .post(node.url("/v1/transactions"))
            .body(event(&format!("s-{i}"), "s-user", "30", 10 - i, "FR").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    node.kill();
    let node = NodeProcess::start(dir.path(), &[]).await;
    let r: serde_json::Value = client
        .post(node.url("/v1/transactions"))
        .body(event("s-5", "s-user", "30", 1, "FR").to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["user_seq"], 6,
        "the restarted node rebuilt the user's state from the store"
    );
    assert_eq!(node.user_decisions(&client, "s-user").await.len(), 6);
}
