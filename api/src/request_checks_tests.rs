//! Attacks on a node with authentication disabled: a cross-site form or `text/plain` POST, and a
//! DNS-rebinding page whose `Host` is the attacker's name.

use crate::auth::{AuthConfig, AuthMode};
use crate::hosts::{check_hosts, AllowedHosts};
use crate::tests::{call_as, router_with};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn open_auth() -> AuthConfig {
    AuthConfig {
        mode: AuthMode::Disabled,
        ..AuthConfig::default()
    }
}

async fn send(router: &axum::Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_text_plain_post_cannot_change_rules_with_auth_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let r = router_with(&dir, open_auth());
    let (_, before) = call_as(&r, None, "GET", "/v1/rules", None).await;
    let rule = serde_json::json!({"name": "csrf", "expression": "amount > 0", "action": "decline"});
    // What `<form enctype="text/plain">` or `fetch(…, {mode: "no-cors"})` sends.
    for content_type in [
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = Request::post("/v1/rules").header("origin", "https://evil.example");
        if let Some(value) = content_type {
            request = request.header("content-type", value);
        }
        let (status, body) = send(&r, request.body(Body::from(rule.to_string())).unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(body["error"]["field"], "Content-Type");
        assert_eq!(body["error"]["code"], "unsupported_media_type");
    }
    // A body-less POST is no exception: it would roll a model back.
    let (status, _) = send(
        &r,
        Request::post("/v1/models/rollback")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, after) = call_as(&r, None, "GET", "/v1/rules", None).await;
    assert_eq!(before, after, "a refused request changed the rules");
    // The same change with the JSON content type (which needs a CORS preflight) goes through.
    let (status, body) = call_as(&r, None, "POST", "/v1/rules", Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_and_our_names_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = AllowedHosts::new(&[], "127.0.0.1:8080".parse().unwrap());
    let r = check_hosts(router_with(&dir, open_auth()), allowed);
    let get = |host: &str| {
        Request::get("/v1/rules")
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    };
    let (status, body) = send(&r, get("rebound.evil.example:8080")).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(body["error"]["field"], "Host");
    let (status, body) = send(&r, Request::get("/v1/rules").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "Host");
    for host in ["127.0.0.1:8080", "localhost:8080"] {
        let (status, _) = send(&r, get(host)).await;
        assert_eq!(status, StatusCode::OK, "{host}");
    }
    // HTTP/2 names the host in `:authority`, which reaches the router as the URI's authority.
    let (status, _) = send(
        &r,
        Request::get("http://rebound.evil.example/v1/rules")
            .header("host", "127.0.0.1:8080")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
    // Credentials in the authority do not hide the name.
    let (status, _) = send(
        &r,
        Request::get("http://localhost@rebound.evil.example:8080/v1/rules")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
}
