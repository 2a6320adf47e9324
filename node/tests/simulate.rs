//! `sentinel simulate` through the real binary: the history it writes is the simulator's
//! stream in event-time order, in the JSON a node accepts, and its chargeback file reports
//! only exported frauds, each after its event.

use sentinel_testkit as support;

use chrono::{DateTime, Utc};
use sentinel_simulator::{Labeller, Scenario, SimConfig, Simulator};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use support::{post_text, NodeProcess};

const START: &str = "2026-01-05T00:00:00Z";

fn simulate(dir: &Path, name: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args([
            "simulate", "--users", "300", "--rate", "0.02", "--seed", "3",
        ])
        .args(["--start", START])
        .arg("--out")
        .arg(dir.join(format!("{name}.jsonl")))
        .arg("--chargebacks")
        .arg(dir.join(format!("{name}.csv")))
        .args(extra)
        .output()
        .unwrap()
}

fn succeeded(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_writes_an_ordered_history_and_a_chargeback_file() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--events", "20000", "--fraud-ratio", "0.02"];
    let out = succeeded(simulate(dir.path(), "history", &args));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("wrote 20000 transactions"), "{summary}");

    // The exported lines are the simulator's stream, byte for byte, with every scenario on.
    let mut sim = Simulator::new(SimConfig {
        seed: 3,
        users: 300,
        rate_per_sec: 0.02,
        fraud_ratio: 0.02,
        start: START.parse().unwrap(),
        daily_rhythm: true,
        scenarios: Scenario::EVERY.to_vec(),
    });
    let text = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20_000);
    let mut events: HashMap<String, (DateTime<Utc>, Option<Scenario>)> = HashMap::new();
    let mut fraud_lines = Vec::new();
    let mut last = DateTime::<Utc>::MIN_UTC;
    let limits = sentinel_event::Limits::default();
    let mut labeller = Labeller::chargebacks(3);
    let mut expected_rows = Vec::new();
    for line in &lines {
        let expected = sim.next_event();
        expected_rows.extend(labeller.label(&expected).map(|l| (l.at, l.transaction_id)));
        assert_eq!(*line, serde_json::to_string(&expected.txn).unwrap());
        // What the node's Kafka path parses, strictly.
        let (txn, _) = sentinel_event::parse_transaction(
            line.as_bytes(),
            sentinel_event::ParseMode::Strict,
            &limits,
            Utc::now(),
        )
        .unwrap();
        assert!(txn.timestamp >= last, "event-time order");
        last = txn.timestamp;
        if expected.label.is_some() {
            fraud_lines.push(*line);
        }
        events.insert(txn.transaction_id, (txn.timestamp, expected.label));
    }
    assert_eq!(events.len(), 20_000, "unique transaction ids");
    let patterns = fraud_lines.len();
    assert!(patterns > 200, "{patterns} frauds");

    // Chargebacks: reported frauds of this file only, each reported after its event.
    let mut reader = csv::Reader::from_path(dir.path().join("history.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "transaction_id",
            "label",
            "labelled_at",
            "source",
            "scenario"
        ]
    );
    let mut rows = Vec::new();
    let mut previous = DateTime::<Utc>::MIN_UTC;
    let mut seen_scenarios = std::collections::BTreeSet::new();
    for row in reader.records() {
        let row = row.unwrap();
        let (at, scenario) = events[&row[0]];
        let scenario = scenario.expect("a chargeback names a fraud event");
        let labelled_at: DateTime<Utc> = row[2].parse().unwrap();
        assert!(labelled_at > at, "{} reported before it happened", &row[0]);
        assert!(labelled_at >= previous, "report order");
        previous = labelled_at;
        assert_eq!((&row[1], &row[3]), ("fraud", "chargeback"));
        assert_eq!(row[4].parse::<Scenario>(), Ok(scenario));
        seen_scenarios.insert(scenario);
        rows.push((labelled_at, row[0].to_owned()));
    }
    // Exactly the labels `Labeller::chargebacks(seed)` gives, in report order.
    expected_rows.sort();
    assert!(rows == expected_rows);
    let reported = rows.len();
    assert!(
        reported < patterns && reported * 10 > patterns * 8,
        "{reported}/{patterns}"
    );
    for s in Scenario::PATTERNS {
        assert!(seen_scenarios.contains(&s), "{s:?} in {seen_scenarios:?}");
    }

    // Same arguments, same files.
    succeeded(simulate(dir.path(), "again", &args));
    for ext in ["jsonl", "csv"] {
        let a = std::fs::read(dir.path().join(format!("history.{ext}"))).unwrap();
        let b = std::fs::read(dir.path().join(format!("again.{ext}"))).unwrap();
        assert!(a == b, "{ext} differs between runs");
    }

    // A real node decides the exported events as they are, normal and fraud alike.
    let node = NodeProcess::start(&dir.path().join("node"), &[]).await;
    let client = support::admin_client();
    for line in lines.iter().take(5).chain(fraud_lines.iter().take(5)) {
        let (status, decision) =
            post_text(&client, node.url("/v1/transactions"), line.to_string()).await;
        assert_eq!(status, 200, "{decision}");
    }
}

#[test]
fn simulate_refuses_bad_flags_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, says) in [
        (&["--scenarios", "card_tests"][..], "card_tests"),
        (&["--rate", "0"][..], "--rate"),
        (&["--fraud-ratio", "1.5"][..], "--fraud-ratio"),
        (&["--users", "0"][..], "--users"),
        (&["--households", "2"][..], "--households"),
    ] {
        let out = simulate(
            dir.path(),
            "bad",
            &[&["--events", "10"][..], extra].concat(),
        );
        assert!(!out.status.success(), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    // A chosen scenario list is honoured.
    let one = ["--events", "5000", "--fraud-ratio", "0.05"];
    let out = succeeded(simulate(
        dir.path(),
        "one",
        &[&one[..], &["--scenarios", "card_testing"]].concat(),
    ));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("card_testing"), "{summary}");
    assert!(!summary.contains("velocity_burst"), "{summary}");
}

#[test]
fn simulate_writes_households_and_every_true_label() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.csv");
    succeeded(simulate(
        dir.path(),
        "homes",
        &[
            "--events",
            "3000",
            "--fraud-ratio",
            "0.02",
            "--households",
            "0.5",
            "--truth",
            truth.to_str().unwrap(),
        ],
    ));
    let history = std::fs::read_to_string(dir.path().join("homes.jsonl")).unwrap();
    assert!(
        history.contains("\"device_id\":\"home-dev-"),
        "no shared device"
    );
    // One true label per event, in event order; frauds are exactly the chargebacks' scenarios
    // (and the unreported ones).
    let mut rows = csv::Reader::from_path(&truth).unwrap();
    let labels: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(labels.len(), 3_000);
    for (line, label) in history.lines().zip(&labels) {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(event["transaction_id"], label[0]);
        let at: DateTime<Utc> = label[2].parse().unwrap();
        let time: DateTime<Utc> = event["timestamp"].as_str().unwrap().parse().unwrap();
        assert_eq!(at - time, chrono::Duration::days(1));
        assert!(label[1] == *"fraud" || (label[1] == *"legit" && label[4].is_empty()));
    }
    let chargebacks = std::fs::read_to_string(dir.path().join("homes.csv")).unwrap();
    let frauds: Vec<&str> = labels
        .iter()
        .filter(|l| &l[1] == "fraud")
        .map(|l| l.get(0).unwrap())
        .collect();
    assert!(frauds.len() > 10, "{} frauds", frauds.len());
    for line in chargebacks.lines().skip(1) {
        let id = line.split(',').next().unwrap();
        assert!(frauds.contains(&id), "charged back but not fraud: {id}");
    }
}
