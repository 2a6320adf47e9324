//! Bounds on decision searches and aggregates: forged cursors, the cache key and the turns.

use super::*;
use crate::heavy::HeavyQueries;
use crate::tests::{admin, call_as, router, router_with_gate, test_auth};
use axum::http::StatusCode;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_outside_the_requested_range_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let today = Utc::now().date_naive();
    // `0001-01-01` would have one request walk some 739,000 days of the store.
    for forged in ["0001-01-01..", "9999-12-31..", "2000-01-01.1.6131"] {
        let (status, body) = call_as(
            &r,
            Some(&admin()),
            "GET",
            &format!("/v1/decisions?cursor={forged}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{forged}: {body}");
        assert_eq!(body["error"]["field"], "cursor", "{body}");
    }
    let (status, body) = call_as(
        &r,
        Some(&admin()),
        "GET",
        &format!("/v1/decisions?cursor={today}.."),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_range_written_two_ways_is_one_cache_entry() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let ask = |from: &str, until: &str| {
        format!("/v1/aggregates?agg=count&group_by=outcome&from={from}&until={until}")
    };
    let (status, first) = call_as(
        &r,
        Some(&admin()),
        "GET",
        &ask("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["cached"], false);
    let (_, again) = call_as(
        &r,
        Some(&admin()),
        "GET",
        &ask(
            "2026-11-01T01:00:00.250%2B01:00",
            "2026-11-02T00:00:00.999Z",
        ),
        None,
    )
    .await;
    assert_eq!(again["cached"], true, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_without_a_free_turn_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(HeavyQueries::new(1, std::time::Duration::ZERO));
    let r = router_with_gate(&dir, test_auth(), Arc::clone(&gate));
    let held = gate.enter().await.ok().unwrap();
    for uri in ["/v1/decisions", "/v1/aggregates?agg=count&group_by=outcome"] {
        let response = tower::ServiceExt::oneshot(
            r.clone(),
            axum::http::Request::get(uri)
                .header("authorization", admin())
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{uri}");
        assert!(response.headers().contains_key("retry-after"));
    }
    drop(held);
    let (status, _) = call_as(&r, Some(&admin()), "GET", "/v1/decisions", None).await;
    assert_eq!(status, StatusCode::OK);
}
