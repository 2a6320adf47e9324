//! The shipped model changes a decision out of the box: against a real node with the shipped
//! policy and model, an account takeover (a new device, a foreign country and an unknown
//! address at once, hours after the holder's last payment) scores high and is reviewed for the
//! `ml_high_score` rule, which no other seed rule would flag; an ordinary payment is not.

use sentinel_testkit as support;

use serde_json::Value;
use support::{event, NodeProcess};

/// The `ml.score` the `ml_high_score` rule saw, if it fired.
fn ml_rule_score(decision: &Value) -> Option<f64> {
    let reason = decision["reasons"]
        .as_array()?
        .iter()
        .find(|r| r["rule"] == "ml_high_score")?;
    reason["values"]
        .as_array()?
        .iter()
        .find(|v| v[0] == "ml.score")?[1]
        .as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_model_score_is_reviewed_and_an_ordinary_payment_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]).await;
    let client = support::admin_client();
    let decide = async |body: Value| node.decide(&client, &body).await;
    // Two holders with ten ordinary payments at home, an hour apart, ending three hours ago.
    for user in ["dan", "eve"] {
        for i in 0..10 {
            decide(event(
                &format!("{user}-{i}"),
                user,
                "40.00",
                720 - i * 60,
                "FR",
            ))
            .await;
        }
    }

    let mut takeover = event("dan-x", "dan", "150.00", 0, "BR");
    takeover["device_id"] = "takeover-device".into();
    takeover["ip"] = "192.0.2.7".into();
    takeover["merchant_id"] = "m-999".into();
    let taken = decide(takeover).await;
    let score = ml_rule_score(&taken).unwrap_or_else(|| panic!("no ml_high_score: {taken}"));
    assert!(score >= 0.9, "{taken}");
    assert_eq!(taken["ml"]["score"].as_f64(), Some(score));
    assert_eq!(taken["outcome"], "review");
    // Only the model saw it: no rule on amounts, travel or devices fired.
    assert_eq!(taken["reasons"].as_array().unwrap().len(), 1, "{taken}");

    let ordinary = decide(event("eve-x", "eve", "45.00", 0, "FR")).await;
    assert!(ml_rule_score(&ordinary).is_none(), "{ordinary}");
    assert!(
        ordinary["ml"]["score"].as_f64().unwrap() < 0.9,
        "{ordinary}"
    );
    assert_eq!(ordinary["outcome"], "approve");
}
