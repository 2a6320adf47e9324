//! `POST /v1/transactions/screen` through the router: per-item answers and the batch bounds.
//! (Live-equivalence and "nothing kept" are proved against the real node in
//! `node/tests/screen.rs`.)

use crate::tests::{admin, call_as, router};
use axum::http::StatusCode;
use serde_json::json;

const URI: &str = "/v1/transactions/screen";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_item_gets_a_decision_or_its_error_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let batch = json!({"transactions": [
        {"user_id": "u1", "amount": "12.50"},
        {"user_id": "u1", "amount": "twelve"},
        "not an object",
        {"user_id": "u2", "amount": 3, "shoe_size": 44},
        {"user_id": "u2", "amount": 4},
    ]});
    let (status, body) = call_as(&r, Some(&admin()), "POST", URI, Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], i);
    }
    assert_eq!(results[0]["decision"]["event"]["amount"], "12.50");
    assert_eq!(results[1]["error"]["field"], "amount", "{body}");
    assert_eq!(results[2]["error"]["code"], "invalid_event", "{body}");
    assert_eq!(results[3]["error"]["field"], "shoe_size", "{body}");
    assert_eq!(results[4]["decision"]["user_id"], "u2");
    assert_eq!(
        (body["decided"].clone(), body["rejected"].clone()),
        (json!(2), json!(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_to_a_thousand_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let one = json!({"user_id": "u", "amount": 1});
    for (batch, status) in [
        (
            json!({"transactions": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"transactions": vec![one.clone(); 1_001]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"transactions": one.clone()}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"transactions": vec![one; 1_000]}), StatusCode::OK),
    ] {
        let (got, body) = call_as(&r, Some(&admin()), "POST", URI, Some(batch)).await;
        assert_eq!(got, status, "{body}");
        if got != StatusCode::OK {
            assert_eq!(body["error"]["field"], "transactions", "{body}");
        }
    }
}
