//! Pages read from the store are encoded where the store runs its reads
//! ([`sentinel_store::Store::run_read_work`]), not on the async workers that score.

use crate::tests::admin;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use sentinel_event::Decision;
use sentinel_store::{Store, WriteOp};
use std::sync::Arc;
use tower::ServiceExt;

/// Each page a reader asks for (a user's decisions, a decision search, alerts, the audit
/// trail) is encoded in the store's read lane, once, and answered as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_reads_are_encoded_in_the_stores_read_lane() {
    let dir = tempfile::tempdir().unwrap();
    let (store, router) = crate::tests::watched_router(&dir);
    // A decision for the user and day the reads below ask for.
    let scored = Request::post("/v1/transactions")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, admin())
        .body(Body::from(
            r#"{"transaction_id":"t-1","user_id":"u-1","amount":"12.50","timestamp":"2026-11-20T12:00:00Z"}"#,
        ))
        .unwrap();
    let response = router.clone().oneshot(scored).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // This router's decider stores nothing: store its decision as the writer would.
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let decision: Decision = serde_json::from_slice(&bytes).unwrap();
    let ops = vec![WriteOp::Decision(Arc::new(decision))];
    store.write_batch(ops).await.unwrap();
    let pages = [
        ("/v1/users/u-1/decisions", "/0/transaction_id"),
        ("/v1/users/u-1/transactions", "/0/transaction_id"),
        // The last day's decisions, by decision time: this one was decided just now.
        ("/v1/decisions", "/decisions/0/transaction_id"),
        ("/v1/alerts", "/alerts"),
        ("/v1/audit", "/entries"),
    ];
    for (uri, pointer) in pages {
        let before = store.read_work();
        let request = Request::get(uri)
            .header(header::AUTHORIZATION, admin())
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "{uri}"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let found = body.pointer(pointer);
        assert!(found.is_some(), "{uri}: no {pointer} in {body}");
        if pointer.ends_with("transaction_id") {
            assert_eq!(found.unwrap(), "t-1", "{uri}");
        }
        let encoded = store.read_work() - before;
        assert_eq!(encoded, 1, "{uri}: pages encoded in the read lane");
    }
}
