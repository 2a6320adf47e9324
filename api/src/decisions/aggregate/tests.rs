//! Aggregates over known stored decisions, against values worked out by hand; every bad
//! parameter refused naming it; the scan and group bounds.

use super::*;
use crate::tests::{admin, call_as, router_on, test_auth};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sentinel_event::{MlScore, Outcome, Transaction};
use sentinel_store::{EmbeddedStore, Store, WriteOp};
use serde_json::{json, Value};
use std::sync::Arc;

/// A decision on `event` (a producer's JSON) made at `at`.
fn decision(
    event: Value,
    outcome: Outcome,
    score: f64,
    ml: Option<f64>,
    at: DateTime<Utc>,
) -> Decision {
    let mut event = event;
    event["currency"] = json!("EUR");
    event["timestamp"] = json!(at.to_rfc3339());
    let event: Transaction = serde_json::from_value(event).unwrap();
    Decision {
        transaction_id: event.transaction_id.clone(),
        user_id: event.user_id.clone(),
        outcome,
        score,
        reasons: vec![],
        shadow_hits: vec![],
        rule_set_version: 1,
        user_seq: 1,
        late: false,
        decided_at: at,
        latency_us: 1,
        event: Arc::new(event),
        ml: ml.map(|s| MlScore {
            score: s,
            anomaly: s / 2.0,
            model_version: "m1".into(),
            top_features: vec![],
            challenger_score: None,
            challenger_version: None,
        }),
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// Five stored decisions; the fifth falls before the range the tests ask about.
async fn seeded(dir: &tempfile::TempDir) -> axum::Router {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let txn = |id: &str, user: &str, amount: &str, category: &str, channel: &str, country: &str| {
        json!({"transaction_id": id, "user_id": user, "amount": amount,
               "merchant_category": category, "channel": channel,
               "location": {"country": country}})
    };
    let mut t1 = txn("t1", "u1", "10.00", "grocery", "web", "DE");
    t1["metadata"] = json!({"items": 3});
    let mut t2 = txn("t2", "u1", "250.50", "gambling", "web", "DE");
    t2["metadata"] = json!({"items": 1});
    let mut t3 = txn("t3", "u2", "99.50", "grocery", "pos", "FR");
    t3["metadata"] = json!({"items": "many"});
    let t4 = txn("t4", "u2", "40", "grocery", "mobile", "FR");
    let mut t5 = txn("t5", "u3", "1000", "electronics", "web", "DE");
    t5["metadata"] = json!({"items": 0});
    let decisions = [
        decision(
            t1,
            Outcome::Approve,
            0.1,
            Some(0.2),
            at("2026-11-03T10:00:00Z"),
        ),
        decision(
            t2,
            Outcome::Decline,
            0.9,
            Some(0.8),
            at("2026-11-03T11:00:00Z"),
        ),
        decision(t3, Outcome::Review, 0.5, None, at("2026-11-03T12:00:00Z")),
        decision(
            t4,
            Outcome::Decline,
            0.7,
            Some(0.6),
            at("2026-11-04T09:00:00Z"),
        ),
        decision(
            t5,
            Outcome::Approve,
            0.05,
            Some(0.1),
            at("2026-11-02T23:00:00Z"),
        ),
    ];
    store
        .write_batch(
            decisions
                .into_iter()
                .map(|d| WriteOp::Decision(Arc::new(d)))
                .collect(),
        )
        .await
        .unwrap();
    router_on(store, test_auth(), Arc::default())
}

const RANGE: &str = "from=2026-11-03T00:00:00Z&until=2026-11-05T00:00:00Z";

async fn ask(r: &axum::Router, query: &str) -> (StatusCode, Value) {
    call_as(
        r,
        Some(&admin()),
        "GET",
        &format!("/v1/aggregates?{query}"),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_any_numeric_field_filtered_and_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let r = seeded(&dir).await;
    let cases: [(&str, Value, u64); 9] = [
        // No group_by: one group; t5 is outside the range.
        ("agg=count", json!({"all": 4.0}), 0),
        (
            "agg=sum&field=amount&group_by=user_id",
            json!({"u1": 260.5, "u2": 139.5}),
            0,
        ),
        // Two outcomes at once: (250.50 + 99.50 + 40) / 3.
        (
            "agg=avg&field=amount&outcome=review,decline",
            json!({"all": 130.0}),
            0,
        ),
        // t3 has no model score.
        (
            "agg=max&field=ml_score&group_by=country",
            json!({"DE": 0.8, "FR": 0.6}),
            1,
        ),
        ("agg=min&field=ml.anomaly", json!({"all": 0.1}), 1),
        // t3's `items` is not a number, t4 has no metadata.
        ("agg=min&field=metadata.items", json!({"all": 1.0}), 2),
        (
            "agg=sum&field=metadata.items&group_by=merchant_category",
            json!({"gambling": 1.0, "grocery": 3.0}),
            2,
        ),
        (
            "agg=sum&field=amount&merchant_category=grocery&channel=web&country=DE",
            json!({"all": 10.0}),
            0,
        ),
        (
            "agg=count&user_id=u2&group_by=outcome",
            json!({"review": 1.0, "decline": 1.0}),
            0,
        ),
    ];
    for (query, groups, without_field) in cases {
        let (status, body) = ask(&r, &format!("{query}&{RANGE}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body["groups"], groups, "{query}: {body}");
        assert_eq!(body["decisions"], 4, "{query}: {body}");
        assert_eq!(body["without_field"], without_field, "{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_counts_back_from_until() {
    let dir = tempfile::tempdir().unwrap();
    let r = seeded(&dir).await;
    let until = "until=2026-11-04T10:00:00Z";
    for (window, count) in [("1h", 1.0), ("22h", 2.0), ("24h", 4.0), ("7d", 5.0)] {
        let (status, body) = ask(&r, &format!("agg=count&window={window}&{until}")).await;
        assert_eq!(status, StatusCode::OK, "{window}: {body}");
        assert_eq!(body["groups"]["all"], count, "{window}: {body}");
        assert_eq!(
            body["cached"], false,
            "{window}: one cache entry per window"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_parameter_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = seeded(&dir).await;
    for (query, field) in [
        ("agg=median", "agg"),
        ("agg=sum&field=colour", "field"),
        ("agg=sum&field=metadata.", "field"),
        ("agg=sum&group_by=ip", "group_by"),
        ("agg=sum&channel=fax", "channel"),
        ("agg=sum&outcome=review,maybe", "outcome"),
        ("agg=sum&window=3w", "window"),
        ("agg=sum&window=-1h", "window"),
        ("agg=sum&window=40d", "window"),
        ("agg=sum&window=24h&from=2026-11-03T00:00:00Z", "window"),
    ] {
        let (status, body) = ask(&r, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

#[test]
fn an_aggregate_stops_at_its_scan_and_group_bounds_naming_the_parameter() {
    let d = |user: &str, amount: &str| {
        decision(
            json!({"transaction_id": format!("{user}-{amount}"), "user_id": user, "amount": amount}),
            Outcome::Approve,
            0.0,
            None,
            Utc::now(),
        )
    };
    let mut acc = Accumulator::new(Field::Amount, Some(GroupBy::Outcome), 3, 10);
    for _ in 0..3 {
        acc.add(&d("u1", "10"), true).unwrap();
    }
    let err = acc.add(&d("u1", "10"), true).unwrap_err();
    let text = format!("{err:?}");
    assert!(text.contains("400") && text.contains("\"from\""), "{text}");

    let mut acc = Accumulator::new(Field::Amount, Some(GroupBy::UserId), 100, 2);
    acc.add(&d("u1", "10"), true).unwrap();
    acc.add(&d("u2", "10"), true).unwrap();
    acc.add(&d("u1", "5"), true).unwrap();
    // Filtered out: examined, not grouped, so no third group.
    acc.add(&d("u4", "10"), false).unwrap();
    let err = acc.add(&d("u3", "10"), true).unwrap_err();
    let text = format!("{err:?}");
    assert!(
        text.contains("400") && text.contains("\"group_by\""),
        "{text}"
    );
    let answer = acc.finish(Agg::Sum, Instant::now());
    assert_eq!(answer.groups.get("u1"), Some(&15.0));
    assert_eq!(answer.decisions, 5);
}
