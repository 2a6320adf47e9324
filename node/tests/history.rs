//! Bringing a team's history, end to end through the real binary: a simulated history and its
//! chargeback file (with report times) are written by `sentinel simulate`, imported with
//! `sentinel import` and `sentinel labels import`, trained on from the store with the
//! literature's protocol (labels known by the end of training, a gap, a later test window) and
//! evaluated. The exported features show the merchant fraud share is non-zero exactly when a
//! fraud label old enough for the event exists at its merchant — checked on every event, and
//! on both sides of the boundaries.

use sentinel_testkit as support;

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::path::Path;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
const DELAY_SECS: i64 = 86_400;

fn sentinel(args: &[&str]) -> String {
    support::run_ok(support::sentinel().args(args))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Merchant and event time of every exported transaction.
fn history(file: &Path) -> HashMap<String, (Option<String>, i64)> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            let at: DateTime<Utc> = e["timestamp"].as_str().unwrap().parse().unwrap();
            (
                e["transaction_id"].as_str().unwrap().to_owned(),
                (
                    e["merchant_id"].as_str().map(str::to_owned),
                    at.timestamp_millis(),
                ),
            )
        })
        .collect()
}

/// Every chargeback row: (line, transaction, report time).
fn chargebacks(file: &Path) -> Vec<(u64, String, i64)> {
    let mut reader = csv::Reader::from_path(file).unwrap();
    reader
        .records()
        .enumerate()
        .map(|(i, row)| {
            let row = row.unwrap();
            let at: DateTime<Utc> = row[2].parse().unwrap();
            (i as u64 + 2, row[0].to_owned(), at.timestamp_millis())
        })
        .collect()
}

/// The merchant fraud share over 30 days the spec gives an event at `t`: frauds at the
/// merchant in the complete hours of the 30 days that end at `t - delay`, reported by then.
fn expects_share(frauds: &[(i64, i64)], t: i64) -> bool {
    let horizon = t - DELAY_SECS * 1_000;
    let last = horizon.div_euclid(HOUR_MS) - 1;
    let first = last - 30 * 24 + 1;
    frauds.iter().any(|&(event, reported)| {
        let hour = event.div_euclid(HOUR_MS);
        hour >= first && hour <= last && reported <= horizon
    })
}

#[test]
fn a_history_and_its_chargebacks_train_and_test_point_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let (events, cb) = (dir.path().join("h.jsonl"), dir.path().join("cb.csv"));
    let now = Utc::now();
    // Five weeks of history ending two days ago.
    let start = (now - Duration::days(37))
        .format("%Y-%m-%dT00:00:00Z")
        .to_string();
    sentinel(&[
        "simulate",
        "--events",
        "30000",
        "--users",
        "1000",
        "--rate",
        "0.01",
        "--fraud-ratio",
        "0.004",
        "--seed",
        "5",
        "--start",
        &start,
        "--out",
        path(&events),
        "--chargebacks",
        path(&cb),
    ]);
    let printed = sentinel(&["import", "--data-dir", path(&data), path(&events)]);
    assert!(printed.contains("30000 decided"), "{printed}");

    // Chargebacks reported after now are refused (a label cannot be given in the future),
    // each reported by line; every other row is stored.
    let rows = chargebacks(&cb);
    let printed = sentinel(&["labels", "import", "--data-dir", path(&data), path(&cb)]);
    let rejects =
        std::fs::read_to_string(dir.path().join("cb.csv.rejects.jsonl")).unwrap_or_default();
    let mut refused = std::collections::HashSet::new();
    for line in rejects.lines() {
        let reject: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(reject["field"], "labelled_at", "{line}");
        assert!(reject["reason"]
            .as_str()
            .unwrap()
            .ends_with("is in the future"));
        refused.insert(reject["line"].as_u64().unwrap());
    }
    let reported: Vec<(String, i64)> = rows
        .iter()
        .filter(|(line, _, at)| {
            let future = *at > now.timestamp_millis();
            // Refused exactly when reported after now (give or take the 5 minutes of skew a
            // label time may have).
            if (*at - now.timestamp_millis()).abs() > 600_000 {
                assert_eq!(refused.contains(line), future, "line {line}");
            }
            !refused.contains(line)
        })
        .map(|(_, id, at)| (id.clone(), *at))
        .collect();
    assert!(
        printed.contains(&format!(
            "{} stored, 0 unchanged, {} rejected",
            reported.len(),
            refused.len()
        )),
        "{printed}"
    );
    assert!(reported.len() > 50, "{} reported frauds", reported.len());

    // Train on three weeks with the labels known by then, skip a week, test the next one.
    let start: DateTime<Utc> = start.parse().unwrap();
    let train_until = (start + Duration::days(21)).to_rfc3339();
    let (model, features) = (dir.path().join("m.json"), dir.path().join("f.csv"));
    let printed = sentinel(&[
        "train",
        "--from",
        "store",
        "--data-dir",
        path(&data),
        "--since",
        &start.to_rfc3339(),
        "--until",
        &now.to_rfc3339(),
        "--train-until",
        &train_until,
        "--gap-days",
        "7",
        "--test-days",
        "6",
        "--label-delay-secs",
        &DELAY_SECS.to_string(),
        "--export-features",
        path(&features),
        "--out",
        path(&model),
    ]);
    for figure in [
        "labels known by then",
        "AUC-ROC",
        "card precision@100",
        "card precision per day",
    ] {
        assert!(printed.contains(figure), "{figure}: {printed}");
    }
    let artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    let known_by_then = reported
        .iter()
        .filter(|(id, at)| *at < start.timestamp_millis() + 21 * DAY_MS && !id.is_empty())
        .count() as u64;
    let trained = artifact["training"]["train_frauds"].as_u64().unwrap();
    assert!(
        trained > 0 && trained <= known_by_then,
        "trained on {trained} frauds, {known_by_then} were reported by then"
    );
    let tested = artifact["evaluation"]["events"].as_u64().unwrap();
    assert!(tested > 1_000, "{tested} events tested");

    // The entity-risk features, on every stored event.
    let merchants = history(&events);
    let mut frauds_at: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for (id, reported) in &reported {
        if let (Some(merchant), event) = &merchants[id.as_str()] {
            frauds_at
                .entry(merchant)
                .or_default()
                .push((*event, *reported));
        }
    }
    let mut reader = csv::Reader::from_path(&features).unwrap();
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "merchant_fraud_share_30d")
        .unwrap();
    let (mut positive, mut zero, mut near) = (0, 0, 0);
    for row in reader.records() {
        let row = row.unwrap();
        let (merchant, t) = &merchants[&row[0]];
        let share: f64 = row[column].parse().unwrap();
        let frauds = merchant.as_deref().and_then(|m| frauds_at.get(m));
        let expected = frauds.is_some_and(|f| expects_share(f, *t));
        assert_eq!(share > 0.0, expected, "{} at {t}: share {share}", &row[0]);
        if expected {
            positive += 1;
        } else {
            zero += 1;
        }
        // Events within an hour of a report becoming visible: the boundary itself.
        if frauds.is_some_and(|f| {
            f.iter()
                .any(|&(_, reported)| (t - DELAY_SECS * 1_000 - reported).abs() < HOUR_MS)
        }) {
            near += 1;
        }
    }
    assert!(
        positive > 100 && zero > 100,
        "{positive} positive, {zero} zero"
    );
    assert!(near > 0, "no event near a boundary");

    // The model evaluated on the test week again, from the store.
    let test_from = (start + Duration::days(28)).to_rfc3339();
    let test_until = (start + Duration::days(34)).to_rfc3339();
    let printed = sentinel(&[
        "evaluate",
        "--model",
        path(&model),
        "--from",
        "store",
        "--data-dir",
        path(&data),
        "--since",
        &start.to_rfc3339(),
        "--until",
        &now.to_rfc3339(),
        "--test-from",
        &test_from,
        "--test-until",
        &test_until,
        "--label-delay-secs",
        &DELAY_SECS.to_string(),
        "--json",
    ]);
    let figures: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(figures["events"].as_u64().unwrap(), tested);
    assert!(figures["daily"].as_array().unwrap().len() >= 5, "{figures}");
}
