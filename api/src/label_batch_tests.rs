//! `POST /v1/labels` through the router over a real embedded store: good and bad items in one
//! batch, the same batch again, and who may send one.

use crate::tests::{admin, call_as, router_on, test_auth, token};
use crate::Role;
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use sentinel_event::{Decision, Outcome, Transaction};
use sentinel_store::{EmbeddedStore, Store, WriteOp};
use serde_json::json;
use std::sync::Arc;

/// A router whose store holds decisions `t-0` and `t-1`, paid an hour ago.
async fn router_with_decisions(dir: &tempfile::TempDir) -> axum::Router {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    for id in ["t-0", "t-1"] {
        let event: Transaction = serde_json::from_value(json!({
            "transaction_id": id, "user_id": "u", "amount": "80", "currency": "EUR",
            "timestamp": (Utc::now() - Duration::hours(1)).to_rfc3339(),
        }))
        .unwrap();
        let decision = Decision {
            transaction_id: id.into(),
            user_id: "u".into(),
            outcome: Outcome::Approve,
            score: 0.0,
            reasons: vec![],
            shadow_hits: vec![],
            rule_set_version: 1,
            user_seq: 1,
            late: false,
            decided_at: Utc::now(),
            latency_us: 1,
            event: Arc::new(event),
            ml: None,
        };
        store
            .write_batch(vec![WriteOp::Decision(Arc::new(decision))])
            .await
            .unwrap();
    }
    router_on(store, test_auth(), Arc::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stores_good_items_rejects_bad_ones_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let r = router_with_decisions(&dir).await;
    let reported = (Utc::now() - Duration::minutes(10)).to_rfc3339();
    let batch = json!({"labels": [
        {"transaction_id": "t-0", "label": "fraud", "labelled_at": reported, "source": "chargeback"},
        {"transaction_id": "ghost", "label": "fraud", "labelled_at": reported},
        {"transaction_id": "t-1", "label": "maybe"},
        {"transaction_id": "t-1", "label": "legit", "labelled_at": reported, "colour": "red"},
        {"transaction_id": "t-1", "label": "legit", "labelled_at": reported, "scenario": "x".repeat(65)},
        {"transaction_id": "t-1", "label": "legit", "labelled_at": reported},
    ]});
    let admin = admin();
    let (status, answer) =
        call_as(&r, Some(&admin), "POST", "/v1/labels", Some(batch.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let statuses: Vec<(&str, Option<&str>)> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["status"].as_str().unwrap(), o["field"].as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("stored", None),
            ("rejected", Some("transaction_id")),
            ("rejected", Some("label")),
            ("rejected", Some("colour")),
            ("rejected", Some("scenario")),
            ("stored", None),
        ]
    );
    assert_eq!(
        (&answer["stored"], &answer["rejected"]),
        (&json!(2), &json!(4))
    );
    let (_, label) = call_as(&r, Some(&admin), "GET", "/v1/decisions/t-0/label", None).await;
    assert_eq!(label["source"], "chargeback");

    let (status, again) = call_as(&r, Some(&admin), "POST", "/v1/labels", Some(batch)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&again["stored"], &again["unchanged"], &again["rejected"]),
        (&json!(0), &json!(2), &json!(4)),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_send_batches_viewers_and_strangers_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let r = router_with_decisions(&dir).await;
    let batch = json!({"labels": [{"transaction_id": "t-0", "label": "fraud"}]});
    for (authorization, want) in [
        (
            Some(format!("Bearer {}", token(Role::Analyst))),
            StatusCode::OK,
        ),
        (
            Some(format!("Bearer {}", token(Role::Viewer))),
            StatusCode::FORBIDDEN,
        ),
        (
            Some(format!("Bearer {}", token(Role::Ingest))),
            StatusCode::FORBIDDEN,
        ),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let (status, body) = call_as(
            &r,
            authorization.as_deref(),
            "POST",
            "/v1/labels",
            Some(batch.clone()),
        )
        .await;
        assert_eq!(status, want, "{authorization:?}: {body}");
    }
    let too_many: Vec<_> = (0..10_001)
        .map(|_| json!({"transaction_id": "t-0", "label": "fraud"}))
        .collect();
    let (status, err) = call_as(
        &r,
        Some(&admin()),
        "POST",
        "/v1/labels",
        Some(json!({"labels": too_many})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "labels");
}
