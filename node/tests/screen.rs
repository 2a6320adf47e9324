//! `POST /v1/transactions/screen` through the real binary: a screened batch gets the decisions
//! live scoring gives the same events when they are posted afterwards, and leaves nothing
//! behind — no stored decision, no user history, no window a later real event would count, no
//! shared-device sighting. A bad item is answered by index and field; an oversized batch is
//! refused naming the limit.

use sentinel_testkit as support;

use serde_json::{json, Value};
use support::{event, fired_rules, metric_value, NodeProcess};

/// `n` events of `user`, ten seconds apart, all inside five minutes of each other.
fn burst(prefix: &str, user: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut e = event(&format!("{prefix}-{i}"), user, "25.00", 4, "FR");
            let at = chrono::Utc::now() - chrono::Duration::seconds(240 - 10 * i as i64);
            e["timestamp"] = json!(at.to_rfc3339());
            e
        })
        .collect()
}

async fn screen(node: &NodeProcess, client: &reqwest::Client, items: &[Value]) -> (u16, Value) {
    let r = client
        .post(node.url("/v1/transactions/screen"))
        .json(&json!({ "transactions": items }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post(node: &NodeProcess, client: &reqwest::Client, e: &Value) -> Value {
    let r = client
        .post(node.url("/v1/transactions"))
        .json(e)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screening_decides_as_live_scoring_would_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]).await;
    let client = support::admin_client();
    let metrics = node.metrics(&client).await;
    assert!(
        metrics.contains("sentinel_screened_total{result=\"decided\"} 0"),
        "registered at zero"
    );

    // Twenty events of one user in four minutes: the later ones trip the velocity rule.
    let screened_burst = burst("scr-a", "scr-user-a", 20);
    let (status, answer) = screen(&node, &client, &screened_burst).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decided"], 20, "{answer}");
    let last = &answer["results"][19]["decision"];
    assert!(fired_rules(last).contains(&"velocity_5m"), "{last}");
    // Nothing of it was kept: no decision, no history, no window.
    for e in &screened_burst {
        let id = e["transaction_id"].as_str().unwrap();
        assert!(node.decision(&client, id).await.is_none(), "{id} stored");
    }
    assert!(node.user_decisions(&client, "scr-user-a").await.is_empty());
    let real = burst("scr-a-real", "scr-user-a", 1).remove(0);
    let live = post(&node, &client, &real).await;
    assert_eq!(live["user_seq"], 1, "{live}");
    assert!(
        !fired_rules(&live).contains(&"velocity_5m"),
        "the screened burst was counted: {live}"
    );
    let profile: Value = client
        .get(node.url("/v1/users/scr-user-a/profile"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["txn_count"], 1, "{profile}");

    // Screened first, then posted one by one: the same decisions.
    let mut same = burst("scr-b", "scr-user-b", 14);
    same[5]["location"] = json!({"country": "JP", "city": "Tokyo"});
    same[9]["amount"] = json!("4800.00");
    let (status, answer) = screen(&node, &client, &same).await;
    assert_eq!(status, 200, "{answer}");
    let mut outcomes = std::collections::BTreeSet::new();
    for (i, e) in same.iter().enumerate() {
        let screened = &answer["results"][i];
        assert_eq!(screened["index"], i);
        assert_eq!(screened["duplicate"], false);
        let screened = &screened["decision"];
        let live = &post(&node, &client, e).await;
        for field in ["outcome", "score", "user_seq", "late", "shadow_hits", "ml"] {
            assert_eq!(screened[field], live[field], "event {i} {field}");
        }
        assert_eq!(screened["reasons"], live["reasons"], "event {i}");
        outcomes.insert(live["outcome"].as_str().unwrap().to_owned());
    }
    assert!(
        outcomes.contains("decline") && outcomes.contains("approve"),
        "{outcomes:?}"
    );
    // Screening an event already decided answers its decision of record, as a redelivery.
    let (_, again) = screen(&node, &client, &same[..1]).await;
    assert_eq!(again["results"][0]["duplicate"], true, "{again}");

    // Screened users on one device are not sightings a real user's event can count.
    let on_device = |txn: &str, user: &str| {
        let mut e = event(txn, user, "30.00", 1, "FR");
        e["device_id"] = json!("scr-shared-device");
        e
    };
    let (status, _) = screen(
        &node,
        &client,
        &[
            on_device("scr-d-1", "scr-user-d1"),
            on_device("scr-d-2", "scr-user-d2"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let live = post(&node, &client, &on_device("scr-d-3", "scr-user-d3")).await;
    let counted_others = live["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["values"].as_array().unwrap().iter())
        .any(|v| v.to_string().contains("distinct_users"));
    assert!(!counted_others, "screened users were recorded: {live}");

    // A bad item is answered by index and field; the rest of the batch is decided.
    let items = [
        event("scr-ok", "scr-user-e", "10.00", 1, "FR"),
        json!({"user_id": "scr-user-e", "amount": "abc"}),
        json!({"amount": 5}),
        json!({"user_id": "scr-user-e", "amount": 5, "currency": "QQQ"}),
    ];
    let (status, answer) = screen(&node, &client, &items).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["results"][0]["decision"].is_object(), "{answer}");
    for (i, field) in [(1, "amount"), (2, "user_id"), (3, "currency")] {
        let error = &answer["results"][i]["error"];
        assert_eq!(error["field"], field, "item {i}: {answer}");
        assert_eq!(error["code"], "invalid_event");
    }
    assert_eq!(
        (answer["decided"].clone(), answer["rejected"].clone()),
        (json!(1), json!(3))
    );

    // Over the count limit: refused, naming it.
    let many: Vec<Value> = (0..1_001)
        .map(|i| json!({"user_id": format!("u{i}"), "amount": 1}))
        .collect();
    let (status, answer) = screen(&node, &client, &many).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["field"], "transactions");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1000"));
    // Over the body limit: 413.
    let huge = json!({"transactions": [{"user_id": "u", "amount": 1, "metadata": {"x": "a".repeat(9 << 20)}}]});
    let r = client
        .post(node.url("/v1/transactions/screen"))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // The unread body ends the connection: the answer says so, so the pool does not reuse it.
    assert_eq!(r.headers()["connection"], "close");

    let metrics = node.metrics(&client).await;
    let decided = metric_value(&metrics, "sentinel_screened_total{result=\"decided\"}");
    let rejected = metric_value(&metrics, "sentinel_screened_total{result=\"rejected\"}");
    assert_eq!((decided, rejected), (20.0 + 14.0 + 1.0 + 2.0 + 1.0, 3.0));
}
