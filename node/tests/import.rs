//! `sentinel import` through the real binary: simulated history (JSON lines, with a bad row)
//! is decided by the user actors and rules and stored; a node started on the store then serves
//! those decisions, and velocity rules fired on history they could only see through the
//! windows the import built. A second import of the same file stores nothing new.

use sentinel_testkit as support;

use sentinel_simulator::{Scenario, SimConfig, Simulator};
use std::io::Write;
use support::NodeProcess;

fn import(data: &std::path::Path, file: &std::path::Path) -> String {
    support::run_ok(
        support::sentinel()
            .args(["import", "--data-dir", data.to_str().unwrap()])
            .arg(file),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_decided_by_the_actors_and_rules_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let file = dir.path().join("history.jsonl");
    let mut sim = Simulator::new(SimConfig {
        seed: 9,
        users: 200,
        rate_per_sec: 1.0,
        fraud_ratio: 0.05,
        start: chrono::Utc::now() - chrono::Duration::days(20),
        daily_rhythm: false,
        scenarios: vec![Scenario::VelocityBurst],
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let mut burst = Vec::new();
    for i in 0..3_000 {
        let e = sim.next_event();
        if i == 1_000 {
            // A bad row: line 1001, reported with its reason, the rest goes on.
            writeln!(out, "{{\"transaction_id\": \"bad\", \"amount\": \"x\"}}").unwrap();
        }
        writeln!(out, "{}", serde_json::to_string(&e.txn).unwrap()).unwrap();
        if e.label.is_some() {
            burst.push(e.txn.transaction_id.clone());
        }
    }
    out.flush().unwrap();
    drop(out);
    assert!(burst.len() > 20, "the simulation has velocity bursts");

    let printed = import(&data, &file);
    assert!(
        printed.contains("imported 3001 events")
            && printed.contains("3000 decided, 0 already stored")
            && printed.contains("1 rejected"),
        "{printed}"
    );
    let rejects = std::fs::read_to_string(dir.path().join("history.jsonl.rejects.jsonl")).unwrap();
    let reject: serde_json::Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(reject["line"], 1001, "{rejects}");
    assert!(reject["row"].as_str().unwrap().contains("\"bad\""));

    // Once more: every event is already stored, nothing is decided twice.
    let printed = import(&data, &file);
    assert!(
        printed.contains("0 decided, 3000 already stored"),
        "{printed}"
    );

    // A node on the store serves the imported decisions; the bursts' later events tripped the
    // velocity rule, which counts the user's earlier events in its window.
    let node = NodeProcess::start(&data, &[]).await;
    let client = support::admin_client();
    let mut velocity = 0;
    for id in &burst {
        let decision = node
            .decision(&client, id)
            .await
            .unwrap_or_else(|| panic!("{id} stored"));
        velocity += usize::from(
            decision["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["rule"] == "velocity_5m"),
        );
    }
    assert!(velocity > burst.len() / 3, "{velocity} of {}", burst.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_seeds_an_empty_store_with_the_given_policy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"version": 1, "thresholds": {"review": 0.5, "decline": 0.8}, "lists": {},
            "rules": [{"name": "every_payment", "expression": "amount > 0", "action": "review", "priority": 1}]}"#,
    )
    .unwrap();
    let file = dir.path().join("one.jsonl");
    let at = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    std::fs::write(
        &file,
        format!(
            r#"{{"transaction_id": "p-1", "user_id": "u-1", "amount": "5.00", "currency": "EUR", "timestamp": "{at}"}}"#
        ),
    )
    .unwrap();
    support::run_ok(
        support::sentinel()
            .args(["import", "--data-dir", data.to_str().unwrap(), "--policy"])
            .arg(&policy)
            .arg(&file),
    );

    // The imported event was decided under that policy, not the shipped one.
    let node = NodeProcess::start(&data, &[]).await;
    let decision = node
        .decision(&support::admin_client(), "p-1")
        .await
        .expect("stored");
    assert_eq!(decision["outcome"], "review", "{decision}");
    assert_eq!(
        decision["reasons"][0]["rule"], "every_payment",
        "{decision}"
    );
}
