//! Machine-learned models through a real node process: the shipped model at start-up, precise
//! refusals of bad files (the running model stays), a live champion swap under traffic with no
//! dropped event, a challenger in shadow, rollback and the audit trail; and the `train` /
//! `evaluate` commands.

use sentinel_testkit as support;

use serde_json::Value;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{event, eventually, get_json, post_text, NodeProcess};

/// Runs `sentinel args`, asserts it succeeded and returns what it printed.
fn sentinel(args: &[&str]) -> String {
    support::run_ok(support::sentinel().args(args))
}

fn default_model_id() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../model/default_model.json"
    ))
    .unwrap();
    let artifact: Value = serde_json::from_str(&text).unwrap();
    artifact["model_id"].as_str().unwrap().to_owned()
}

/// Trains a small model on simulated traffic with the CLI, writing it to `out`; what it printed.
fn train_small(out: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--from",
        "simulator",
        "--events",
        "20000",
        "--users",
        "500",
    ];
    args.extend(extra);
    args.extend(["--out", out.to_str().unwrap()]);
    sentinel(&args)
}

async fn upload(client: &reqwest::Client, node: &NodeProcess, body: String) -> (u16, Value) {
    post_text(client, node.url("/v1/models"), body).await
}

async fn post_empty(client: &reqwest::Client, node: &NodeProcess, path: &str) -> (u16, Value) {
    post_text(client, node.url(path), String::new()).await
}

/// Scores one small purchase and returns the decision.
async fn score(client: &reqwest::Client, node: &NodeProcess, txn: &str) -> Value {
    let body = event(txn, &format!("user-{txn}"), "30.00", 0, "FR").to_string();
    let (status, decision) = post_text(client, node.url("/v1/transactions"), body).await;
    assert_eq!(status, 200, "{decision}");
    decision
}

async fn champion(client: &reqwest::Client, node: &NodeProcess) -> Value {
    get_json(client, node.url("/v1/models")).await["deployment"]["champion"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_upload_swap_live_and_roll_back_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let second_file = dir.path().join("second.json");
    train_small(&second_file, &["--seed", "2"]);
    let second = std::fs::read_to_string(&second_file).unwrap();
    let second_id = serde_json::from_str::<Value>(&second).unwrap()["model_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let node = NodeProcess::start(&dir.path().join("node"), &[]).await;
    let client = support::admin_client();
    let default_id = default_model_id();
    assert_ne!(default_id, second_id);

    // The shipped model serves from the start.
    assert_eq!(champion(&client, &node).await, default_id.as_str());
    let r = score(&client, &node, "ml-0").await;
    assert_eq!(r["ml"]["model_version"], default_id.as_str());
    let ml_score = r["ml"]["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ml_score));
    assert_eq!(r["ml"]["top_features"].as_array().unwrap().len(), 3);

    // Bad files: a precise 422 naming `model`, and the running model stays.
    let mut tampered: Value = serde_json::from_str(&second).unwrap();
    tampered["params"]["calibration"]["intercept"] = Value::from(3.5);
    let mut renamed: Value = serde_json::from_str(&second).unwrap();
    renamed["feature_names"][0] = Value::from("amount_in_cents");
    let bad = [
        (
            second[..second.len() / 2].to_owned(),
            "not a valid artifact",
        ),
        ("{\"nope\": 1}".to_owned(), "format_version"),
        (tampered.to_string(), "checksum mismatch"),
        (renamed.to_string(), "features do not match"),
    ];
    for (body, says) in bad {
        let (status, answer) = upload(&client, &node, body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["field"], "model", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(champion(&client, &node).await, default_id.as_str());

    // A good upload, then the same again.
    let (status, summary) = upload(&client, &node, second.clone()).await;
    assert_eq!(status, 201, "{summary}");
    assert_eq!(summary["model_id"], second_id.as_str());
    assert!(summary["evaluation"]["auc_roc"].as_f64().is_some());
    assert_eq!(upload(&client, &node, second.clone()).await.0, 409);
    let (status, _) = post_empty(&client, &node, "/v1/models/m-000000000000/activate").await;
    assert_eq!(status, 404);

    // Traffic from three clients while the champion changes.
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let activated_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..3 {
        let (client, url) = (client.clone(), node.url("/v1/transactions"));
        let (stop, count) = (Arc::clone(&stop), Arc::clone(&count));
        workers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let txn = format!("swap-{w}-{i}");
                let body = event(&txn, &format!("swap-user-{}", i % 20), "42.00", 0, "FR");
                let sent = Instant::now();
                let (status, decision) = post_text(&client, url.clone(), body.to_string()).await;
                answers.push((txn, sent, status, decision));
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            answers
        }));
    }
    let answered = |n: usize| {
        let count = Arc::clone(&count);
        async move {
            eventually("traffic", Duration::from_secs(60), async || {
                (count.load(Ordering::Relaxed) >= n).then_some(())
            })
            .await
        }
    };
    answered(60).await;
    let activate = format!("/v1/models/{second_id}/activate");
    let (status, change) = post_empty(&client, &node, &activate).await;
    assert_eq!(status, 200, "{change}");
    *activated_at.lock().unwrap() = Some(Instant::now());
    assert_eq!(change["deployment"]["champion"], second_id.as_str());
    assert_eq!(change["deployment"]["previous"][0], default_id.as_str());
    answered(200).await;
    stop.store(true, Ordering::Relaxed);
    let activated = activated_at.lock().unwrap().unwrap();
    let mut after = 0;
    let mut total = 0;
    for worker in workers {
        for (txn, sent, status, decision) in worker.await.unwrap() {
            total += 1;
            assert_eq!(status, 200, "{txn}: {decision}");
            assert_eq!(decision["transaction_id"], txn.as_str());
            let version = decision["ml"]["model_version"].as_str().unwrap().to_owned();
            if sent > activated {
                after += 1;
                assert_eq!(version, second_id, "{txn} was sent after the activation");
            } else {
                assert!(version == default_id || version == second_id, "{version}");
            }
            let stored = node.decision(&client, &txn).await.expect("stored");
            assert_eq!(stored["ml"]["model_version"], version.as_str());
        }
    }
    assert!(
        total >= 200 && after > 0,
        "{total} decisions, {after} after the swap"
    );

    // The old champion as challenger: recorded beside the champion, deciding nothing.
    let challenger = format!("/v1/models/{default_id}/activate?role=challenger");
    let (status, change) = post_empty(&client, &node, &challenger).await;
    assert_eq!(status, 200, "{change}");
    let r = score(&client, &node, "ml-1").await;
    assert_eq!(r["ml"]["model_version"], second_id.as_str());
    assert_eq!(r["ml"]["challenger_version"], default_id.as_str());
    assert!(r["ml"]["challenger_score"].as_f64().is_some());
    let bogus = format!("/v1/models/{second_id}/activate?role=bogus");
    let (status, _) = post_empty(&client, &node, &bogus).await;
    assert_eq!(status, 400);

    // Rollback: the previous champion serves again; there is nothing before it.
    let (status, change) = post_empty(&client, &node, "/v1/models/rollback").await;
    assert_eq!(status, 200, "{change}");
    assert_eq!(change["model_id"], default_id.as_str());
    assert_eq!(change["deployment"]["challenger"], Value::Null);
    let r = score(&client, &node, "ml-2").await;
    assert_eq!(r["ml"]["model_version"], default_id.as_str());
    assert_eq!(
        post_empty(&client, &node, "/v1/models/rollback").await.0,
        409
    );

    // Every change is audited.
    let audit = get_json(&client, node.url("/v1/audit?limit=100")).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "model.seed",
        "model.upload",
        "model.activate",
        "model.rollback",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

#[test]
fn train_export_and_evaluate_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("events.csv");
    let model = dir.path().join("m.json");
    let printed = train_small(&model, &["--export-csv", csv.to_str().unwrap()]);
    for figure in [
        "AUC-ROC",
        "average precision",
        "precision@100",
        "confusion matrix",
    ] {
        assert!(printed.contains(figure), "{printed}");
    }
    let header = std::fs::read_to_string(&csv).unwrap();
    assert!(
        header.starts_with("label,transaction_id,user_id"),
        "{header:.80}"
    );

    // The exported CSV trains the same model as the simulator it came from.
    let from_csv = dir.path().join("m-csv.json");
    sentinel(&[
        "train",
        "--from",
        "csv",
        "--input",
        csv.to_str().unwrap(),
        "--out",
        from_csv.to_str().unwrap(),
    ]);
    let (a, b) = (artifact(&model), artifact(&from_csv));
    assert_eq!(a["params"], b["params"]);
    assert_eq!(a["evaluation"], b["evaluation"]);

    // Bad rows (a negative amount, a bad label) are skipped and reported by line; the rest
    // trains the same model.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let fields: Vec<&str> = lines[1].split(',').collect();
    let with = |changes: &[(usize, &str)]| {
        let mut f: Vec<String> = fields.iter().map(|s| (*s).to_owned()).collect();
        for (i, v) in changes {
            f[*i] = (*v).to_owned();
        }
        f.join(",")
    };
    // Columns: label, transaction_id, …, amount (7th).
    let negative = with(&[(1, "bad-1"), (6, "-5")]);
    let unknown_label = with(&[(0, "perhaps"), (1, "bad-2")]);
    lines.insert(3, &negative);
    lines.insert(6, &unknown_label);
    let with_bad = dir.path().join("with-bad.csv");
    std::fs::write(&with_bad, lines.join("\n") + "\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args([
            "train",
            "--from",
            "csv",
            "--input",
            with_bad.to_str().unwrap(),
        ])
        .args(["--out", dir.path().join("m-bad.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 4: skipped") && err.contains("amount"),
        "{err}"
    );
    assert!(
        err.contains("line 7: skipped") && err.contains("label"),
        "{err}"
    );
    assert!(err.contains("2 bad rows skipped"), "{err}");
    let c = artifact(&dir.path().join("m-bad.json"));
    assert_eq!(a["params"], c["params"]);

    let out = sentinel(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--from",
        "csv",
        "--input",
        csv.to_str().unwrap(),
        "--json",
    ]);
    let figures: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(figures["events"], 20000);
    assert!(figures["auc_roc"].as_f64().unwrap() > 0.9, "{figures}");

    // A corrupt file is refused with a clear message.
    std::fs::write(&model, "{\"format_version\": 1, \"model_id\": ").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["evaluate", "--model", model.to_str().unwrap()])
        .args(["--from", "csv", "--input", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a valid artifact"), "{err}");
}

fn artifact(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_from_a_stopped_nodes_store_with_analyst_labels() {
    use sentinel_simulator::{Scenario, SimConfig, Simulator};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut node = NodeProcess::start(&data, &[]).await;
    let client = support::admin_client();
    let start = chrono::Utc::now() - chrono::Duration::hours(3);
    let mut sim = Simulator::new(SimConfig {
        seed: 4,
        users: 300,
        rate_per_sec: 2.0,
        fraud_ratio: 0.05,
        start,
        daily_rhythm: false,
        scenarios: Scenario::ALL.to_vec(),
    });
    // Decided live over HTTP; analysts label the injected fraud.
    let mut frauds = 0;
    for _ in 0..3_000 {
        let e = sim.next_event();
        let body = serde_json::to_string(&e.txn).unwrap();
        let (status, decision) = post_text(&client, node.url("/v1/transactions"), body).await;
        assert_eq!(status, 200, "{decision}");
        if e.label.is_some() {
            frauds += 1;
            let path = format!("/v1/decisions/{}/label", e.txn.transaction_id);
            let label = serde_json::json!({"label": "fraud", "note": "chargeback"}).to_string();
            let (status, answer) = post_text(&client, node.url(&path), label).await;
            assert_eq!(status, 200, "{answer}");
        }
    }
    assert_eq!(node.terminate(), Some(0));

    let model = dir.path().join("stored.json");
    let since = (start - chrono::Duration::minutes(1)).to_rfc3339();
    let printed = sentinel(&[
        "train",
        "--from",
        "store",
        "--data-dir",
        data.to_str().unwrap(),
        "--since",
        &since,
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(printed.contains("AUC-ROC"), "{printed}");
    let a = artifact(&model);
    assert!(a["training"]["source"]
        .as_str()
        .unwrap()
        .starts_with("store "));
    let trained = a["training"]["train_events"].as_u64().unwrap();
    let held_out = a["evaluation"]["events"].as_u64().unwrap();
    assert_eq!(trained + held_out, 3_000);
    let labelled = a["training"]["train_frauds"].as_u64().unwrap()
        + a["evaluation"]["frauds"].as_u64().unwrap();
    assert_eq!(labelled, frauds, "every analyst label is a fraud sample");
}
