//! The event stream is authenticated when it opens and again while it runs: it ends once the
//! caller's token expires or its key is revoked.

use crate::tests::{admin, call_as, revoke_key, router, router_with, test_auth};
use crate::{AuthConfig, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

/// Opens `/v1/stream` with `header: value`; its body.
async fn open(r: &axum::Router, header: &str, value: &str) -> Body {
    let request = Request::get("/v1/stream")
        .header(header, value)
        .body(Body::empty())
        .unwrap();
    let response = r.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body()
}

/// Reads a stream until the server ends it; the text. `None` if it is still open when the test
/// stops waiting (the test's own limit, not a property under test).
async fn read_until_closed(mut body: Body) -> Option<String> {
    let mut text = String::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .ok()
        .map(|()| text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_key_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let (status, created) = call_as(
        &r,
        Some(&admin()),
        "POST",
        "/v1/keys",
        Some(json!({"name": "wallboard", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let stream = open(&r, "x-api-key", &key).await;
    assert_eq!(revoke_key(&r, &id).await, StatusCode::OK);
    let text = read_until_closed(stream)
        .await
        .expect("the stream outlived its revoked key");
    assert!(text.contains("event: hello"), "{text}");
    assert!(text.contains("event: end"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_when_its_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let auth = AuthConfig {
        leeway_secs: 0,
        ..test_auth()
    };
    let r = router_with(&dir, auth.clone());
    let token = auth
        .mint(
            "short-lived",
            Role::Viewer,
            std::time::Duration::from_secs(2),
        )
        .unwrap();
    let stream = open(&r, "authorization", &format!("Bearer {token}")).await;
    let text = read_until_closed(stream)
        .await
        .expect("the stream outlived its token");
    assert!(text.contains("event: end"), "{text}");
    assert!(text.contains("expired or were revoked"), "{text}");
}
