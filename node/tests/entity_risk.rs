//! Entity risk through a real node: two merchants with the same traffic two hours ago, one
//! whose transactions were then charged back over the API. The labels reach the model's
//! features only once they are older than the configured label delay, and a restarted node
//! rebuilds activity and labels from the store: activity from the index it saved at its stop
//! (or, killed, from its last periodic save), or, when that file is damaged, by counting the
//! stored decisions again.
//!
//! Each probe is a fresh user's first purchase, so two probes at the same instant differ only
//! in their merchant. Both merchants have the same transaction counts, so their model scores
//! are equal while the labels are too young for the probes and differ once they are old enough.

use sentinel_testkit as support;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use support::{event, eventually, post_text, NodeProcess};

const DELAY_SECS: &str = "60";
const LABELLED: &str = "m-labelled";
const UNLABELLED: &str = "m-quiet";

/// The decision's model score for a fresh user's purchase at `merchant`, at time `at`.
async fn probe(
    client: &reqwest::Client,
    node: &NodeProcess,
    id: &str,
    merchant: &str,
    at: DateTime<Utc>,
) -> Value {
    let mut body = event(id, &format!("user-{id}"), "30.00", 0, "FR");
    body["merchant_id"] = merchant.into();
    body["timestamp"] = at.to_rfc3339().into();
    let (status, decision) =
        post_text(client, node.url("/v1/transactions"), body.to_string()).await;
    assert_eq!(status, 200, "{decision}");
    decision["ml"].clone()
}

/// Model scores of a probe at the labelled merchant and of one at the unlabelled merchant, at
/// the same time.
async fn pair(
    client: &reqwest::Client,
    node: &NodeProcess,
    tag: &str,
    at: DateTime<Utc>,
) -> (f64, f64, Value) {
    let labelled = probe(client, node, &format!("{tag}-a"), LABELLED, at).await;
    let quiet = probe(client, node, &format!("{tag}-b"), UNLABELLED, at).await;
    (
        labelled["score"].as_f64().unwrap(),
        quiet["score"].as_f64().unwrap(),
        labelled,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_labels_move_the_entity_risk_only_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let env = [("SENTINEL_LABEL_DELAY_SECS", DELAY_SECS)];
    // Passes of the entity index every second; the first run saves it only at its stop (and
    // at its start, with nothing to save), the later ones every second.
    let configs = [("first.toml", 3_600), ("later.toml", 1)].map(|(name, save_secs)| {
        let config = dir.path().join(name);
        let text =
            format!("[model]\nlabel_refresh_secs = 1\nentity_index_save_secs = {save_secs}\n");
        std::fs::write(&config, text).unwrap();
        config.to_str().unwrap().to_owned()
    });
    let first = ["--config", configs[0].as_str()];
    let args = ["--config", configs[1].as_str()];
    let mut node = NodeProcess::start_with_env(&data, &first, &env).await;
    let client = support::admin_client();

    // The same traffic at two merchants two hours ago (complete hours count); the frauds at
    // one of them are charged back now.
    let (mut first_label, mut last_label) = (DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC);
    for i in 0..6 {
        let txn = format!("fraud-{i}");
        for (merchant, id, user) in [
            (LABELLED, txn.clone(), format!("victim-{i}")),
            (UNLABELLED, format!("calm-{i}"), format!("calm-{i}")),
        ] {
            let mut body = event(&id, &user, "400.00", 120, "FR");
            body["merchant_id"] = merchant.into();
            let (status, answer) =
                post_text(&client, node.url("/v1/transactions"), body.to_string()).await;
            assert_eq!(status, 200, "{answer}");
        }
        let label = serde_json::json!({"label": "fraud", "note": "chargeback"}).to_string();
        let path = format!("/v1/decisions/{txn}/label");
        let (status, answer) = post_text(&client, node.url(&path), label).await;
        assert_eq!(status, 200, "{answer}");
        let at: DateTime<Utc> = answer["labelled_at"].as_str().unwrap().parse().unwrap();
        first_label = first_label.min(at);
        last_label = last_label.max(at);
    }
    let delay = Duration::seconds(DELAY_SECS.parse().unwrap());

    // An event a second past the delay after the last label sees them all (once the node has
    // indexed them).
    let after = last_label + delay + Duration::seconds(1);
    let mut round = 0;
    let (seen, quiet, ml) = eventually(
        "the labels to reach the features",
        std::time::Duration::from_secs(30),
        async || {
            round += 1;
            let (seen, quiet, ml) = pair(&client, &node, &format!("after-{round}"), after).await;
            (seen != quiet).then_some((seen, quiet, ml))
        },
    )
    .await;
    println!("labelled merchant {seen}, unlabelled {quiet}: {ml}");
    let indexed = |text: &str| support::metric_value(text, "sentinel_label_index_labels");
    assert_eq!(indexed(&node.metrics(&client).await), 6.0);

    // With the labels indexed, an event for which even the first is a second younger than the
    // delay sees none: both merchants read the same counts and no known fraud.
    let within = first_label + delay - Duration::seconds(1);
    let (seen, quiet, ml) = pair(&client, &node, "within", within).await;
    assert_eq!(
        seen, quiet,
        "a label younger than the delay moved the score: {ml}"
    );

    // Restarted, the node builds the index from the store's labels before it serves, its
    // activity read back from the save it made at the stop; then again with that file
    // damaged, which it refuses and counts the stored decisions instead.
    let restores = |text: &str, outcome: &str| {
        let series = format!("sentinel_entity_index_restores_total{{outcome=\"{outcome}\"}}");
        support::metric_value(text, &series)
    };
    let read = |text: &str| {
        let series = r#"sentinel_entity_index_decisions_total{source="read"}"#;
        support::metric_value(text, series)
    };
    let saved = data.join("entity-index.bin");
    let mut counted_at_start = Vec::new();
    for damaged in [false, true] {
        assert_eq!(node.terminate(), Some(0));
        if damaged {
            let mut bytes = std::fs::read(&saved).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&saved, bytes).unwrap();
        }
        node = NodeProcess::start_with_env(&data, &args, &env).await;
        let metrics = node.metrics(&client).await;
        let outcome = if damaged { "refused" } else { "restored" };
        assert_eq!(restores(&metrics, outcome), 1.0, "{}", node.log_text());
        counted_at_start.push(read(&metrics));
        let tag = format!("restarted-{damaged}");
        let (seen, quiet, ml) = pair(&client, &node, &tag, after).await;
        assert_ne!(
            seen, quiet,
            "stored labels were not indexed at start-up: {ml}"
        );
        let (seen, quiet, _) = pair(&client, &node, &format!("{tag}-within"), within).await;
        assert_eq!(seen, quiet);
        assert_eq!(indexed(&node.metrics(&client).await), 6.0);
    }
    assert!(
        node.log_text().contains("saved entity-risk index not used"),
        "{}",
        node.log_text()
    );
    println!("counted at start: {counted_at_start:?}");
    // Read back, the start counted none (the stop's save, after the store's flush, took in
    // every decision not counted yet); counting them all reads every one (12 of the traffic,
    // and the probes).
    assert!(
        counted_at_start[0] == 0.0 && counted_at_start[1] >= 20.0,
        "{counted_at_start:?}"
    );

    // Killed (no stop, so no save then), the node restarts from its last periodic save.
    let before = std::fs::metadata(&saved).unwrap().modified().unwrap();
    pair(&client, &node, "before-crash", after).await;
    eventually(
        "a periodic save of the entity index",
        std::time::Duration::from_secs(30),
        async || {
            let modified = std::fs::metadata(&saved).and_then(|m| m.modified());
            modified.is_ok_and(|m| m > before).then_some(())
        },
    )
    .await;
    node.kill();
    let node = NodeProcess::start_with_env(&data, &args, &env).await;
    let metrics = node.metrics(&client).await;
    assert_eq!(restores(&metrics, "restored"), 1.0, "{}", node.log_text());
    // Only the probes stored after that save (at most the two before the crash) are read.
    assert!(read(&metrics) <= 2.0, "{}", read(&metrics));
    let (seen, quiet, ml) = pair(&client, &node, "after-crash", after).await;
    assert_ne!(
        seen, quiet,
        "stored labels were not indexed after a crash: {ml}"
    );
    let (seen, quiet, _) = pair(&client, &node, "after-crash-within", within).await;
    assert_eq!(seen, quiet);
}
