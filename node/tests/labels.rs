//! Labels with their own time through a real node: the batch route stores good labels,
//! reports bad ones with the field at fault (and counts them), changes nothing when the same
//! batch comes again, and refuses a viewer; `sentinel labels import --url` sends a chargeback
//! file through it, reporting its bad rows by line, and `--data-dir` writes one into a stopped
//! node's store, where the restarted node serves its labels.

use sentinel_testkit as support;

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use std::process::Command;
use support::{event, get_json, metric_value, post_text, NodeProcess};

async fn post_labels(client: &reqwest::Client, node: &NodeProcess, labels: Value) -> (u16, Value) {
    let body = json!({ "labels": labels }).to_string();
    post_text(client, node.url("/v1/labels"), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_chargeback_files_store_labels_with_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(&dir.path().join("node"), &[]).await;
    let client = support::admin_client();
    for i in 0..4 {
        // Paid 90 minutes ago.
        let body = event(&format!("t-{i}"), &format!("u-{i}"), "25.00", 90, "FR").to_string();
        let (status, answer) = post_text(&client, node.url("/v1/transactions"), body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let reported = (Utc::now() - Duration::minutes(30)).to_rfc3339();
    let batch = json!([
        {"transaction_id": "t-0", "label": "fraud", "labelled_at": reported,
         "source": "chargeback", "scenario": "compromised_card"},
        {"transaction_id": "nope", "label": "fraud", "labelled_at": reported},
        {"transaction_id": "t-1", "label": "fraud",
         "labelled_at": (Utc::now() - Duration::hours(3)).to_rfc3339()},
        // Idempotency is per transaction and label time: a label without one is given now.
        {"transaction_id": "t-2", "label": "legit", "labelled_at": reported},
        // An item that is not a label is refused on its own, not the batch.
        {"transaction_id": "t-3", "label": "maybe"},
    ]);
    let (status, answer) = post_labels(&client, &node, batch.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["stored"], &answer["unchanged"], &answer["rejected"]),
        (&json!(2), &json!(0), &json!(3)),
        "{answer}"
    );
    assert_eq!(answer["results"][1]["field"], "transaction_id");
    assert_eq!(answer["results"][2]["field"], "labelled_at");
    assert_eq!(
        (
            &answer["results"][4]["field"],
            &answer["results"][4]["status"]
        ),
        (&json!("label"), &json!("rejected"))
    );
    let label = get_json(&client, node.url("/v1/decisions/t-0/label")).await;
    assert_eq!(
        label["labelled_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        reported.parse::<chrono::DateTime<Utc>>().unwrap()
    );
    assert_eq!(label["source"], "chargeback");
    assert_eq!(label["scenario"], "compromised_card");

    // Sent again: nothing new.
    let (_, again) = post_labels(&client, &node, batch).await;
    assert_eq!(
        (&again["stored"], &again["unchanged"]),
        (&json!(0), &json!(2)),
        "{again}"
    );
    // One by one: the same label twice is stored (and counted) once.
    for _ in 0..2 {
        let body = json!({"label": "fraud", "labelled_at": reported}).to_string();
        let (status, answer) = post_text(&client, node.url("/v1/decisions/t-2/label"), body).await;
        assert_eq!(status, 200, "{answer}");
    }
    let metrics = node.metrics(&client).await;
    assert_eq!(metric_value(&metrics, "sentinel_labels_stored_total"), 3.0);
    assert_eq!(
        metric_value(
            &metrics,
            "sentinel_labels_rejected_total{field=\"labelled_at\"}"
        ),
        2.0
    );
    assert_eq!(
        metric_value(&metrics, "sentinel_labels_rejected_total{field=\"label\"}"),
        2.0
    );

    // A viewer may read labels, not give them.
    let viewer = support::client_with(&format!("Bearer {}", support::token("viewer")));
    let (status, _) = post_labels(&viewer, &node, json!([])).await;
    assert_eq!(status, 403);

    // A chargeback file through the running node, with a bad row on line 3.
    let file = dir.path().join("chargebacks.csv");
    std::fs::write(
        &file,
        format!(
            "transaction_id,label,labelled_at,source,scenario\n\
             t-3,fraud,{reported},chargeback,card_testing\n\
             t-3,maybe,{reported},chargeback,\n"
        ),
    )
    .unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, support::token("analyst")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["labels", "import", "--url", &node.url(""), "--token-file"])
        .arg(&token)
        .arg(&file)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("1 stored, 0 unchanged, 1 rejected"),
        "{printed}"
    );
    let rejects =
        std::fs::read_to_string(dir.path().join("chargebacks.csv.rejects.jsonl")).unwrap();
    let reject: Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(
        (reject["line"].as_u64(), reject["field"].as_str()),
        (Some(3), Some("label"))
    );
    let label = get_json(&client, node.url("/v1/decisions/t-3/label")).await;
    assert_eq!(label["scenario"], "card_testing");

    // The same file again, with an analyst's API key: nothing new, the bad row again.
    let created = client
        .post(node.url("/v1/keys"))
        .json(&json!({"name": "chargebacks", "role": "analyst"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, created["key"].as_str().unwrap()).unwrap();
    let printed = import(&[
        "--url",
        &node.url(""),
        "--api-key-file",
        path(&key),
        path(&file),
    ]);
    assert!(
        printed.contains("0 stored, 1 unchanged, 1 rejected"),
        "{printed}"
    );

    // Offline, into the stopped node's store: bad rows are reported by line and skipped.
    assert_eq!(node.terminate(), Some(0));
    let file = dir.path().join("late.csv");
    std::fs::write(
        &file,
        format!(
            "transaction_id,label,labelled_at,source,scenario,note\n\
             t-1,fraud,{reported},chargeback,compromised_terminal,\"card holder called,\nsaid not me\"\n\
             t-0,fraud,{reported},chargeback,compromised_card,\n\
             ghost,fraud,{reported},chargeback,,\n\
             t-2,legit,last tuesday,analyst,,\n"
        ),
    )
    .unwrap();
    let rejects = dir.path().join("late-rejects.jsonl");
    let printed = import(&[
        "--data-dir",
        path(&node.data_dir),
        "--rejects",
        path(&rejects),
        path(&file),
    ]);
    assert!(
        printed.contains("1 stored, 1 unchanged, 2 rejected"),
        "{printed}"
    );
    let refused: Vec<(u64, String)> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            (
                r["line"].as_u64().unwrap(),
                r["field"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        // Lines of the file: the quoted note of line 2 runs on to line 3.
        [(5, "transaction_id".into()), (6, "labelled_at".into())]
    );
    // JSON lines: blank lines are not rows, a line that is not JSON is refused by its number.
    let later = (Utc::now() - Duration::minutes(20)).to_rfc3339();
    let file = dir.path().join("late.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\n\n{{not json\n",
            json!({"transaction_id": "t-3", "label": "legit", "labelled_at": later,
                   "source": "other"})
        ),
    )
    .unwrap();
    let printed = import(&["--data-dir", path(&node.data_dir), path(&file)]);
    assert!(
        printed.contains("1 stored, 0 unchanged, 1 rejected"),
        "{printed}"
    );
    let reject: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("late.jsonl.rejects.jsonl")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (reject["line"].as_u64(), reject["field"].as_str()),
        (Some(3), Some("row"))
    );

    let node = NodeProcess::start(&node.data_dir, &[]).await;
    let label = get_json(&client, node.url("/v1/decisions/t-3/label")).await;
    assert_eq!(
        (&label["label"], &label["source"]),
        (&json!("legit"), &json!("other"))
    );
    let label = get_json(&client, node.url("/v1/decisions/t-1/label")).await;
    assert_eq!(
        label["labelled_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        reported.parse::<chrono::DateTime<Utc>>().unwrap()
    );
    assert_eq!(label["source"], "chargeback");
    assert_eq!(label["scenario"], "compromised_terminal");
    assert_eq!(label["note"], "card holder called,\nsaid not me");
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// `sentinel labels import ARGS`, which must succeed; what it printed.
fn import(args: &[&str]) -> String {
    support::run_ok(support::sentinel().args(["labels", "import"]).args(args))
}
