//! Authentication and authorisation through the router: every endpoint against every role,
//! bad tokens of every kind, API keys, and the principal in the audit log.

use crate::test_store::WatchedStore;
use crate::tests::{
    admin, call_as, revoke_key, router, router_on, router_with, test_auth, token, TEST_SECRET,
};
use crate::{AuthConfig, AuthMode, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sentinel_store::Store;
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

/// Who may call each endpoint, written out from the issue rather than read from the access
/// table: `*` is everyone (no credentials needed), otherwise the roles' initials
/// (Admin, aNalyst, Viewer, Ingest).
const EXPECTED: &[(&str, &str, &str)] = &[
    ("POST", "/v1/transactions", "AI"),
    ("POST", "/v1/transactions/screen", "AI"),
    ("GET", "/v1/decisions/{transaction_id}", "ANV"),
    ("GET", "/v1/users/{user_id}/decisions", "ANV"),
    ("GET", "/v1/users/{user_id}/transactions", "ANV"),
    ("POST", "/v1/decisions/{transaction_id}/label", "AN"),
    ("GET", "/v1/decisions/{transaction_id}/label", "ANV"),
    ("POST", "/v1/labels", "AN"),
    ("GET", "/v1/decisions", "ANV"),
    ("GET", "/v1/aggregates", "ANV"),
    ("GET", "/v1/users/{user_id}/profile", "ANV"),
    ("GET", "/v1/users/{user_id}/balance", "ANV"),
    ("PUT", "/v1/users/{user_id}/opening-balance", "A"),
    ("GET", "/v1/rules", "AN"),
    ("POST", "/v1/rules", "A"),
    ("GET", "/v1/rules/{id}", "AN"),
    ("PUT", "/v1/rules/{id}", "A"),
    ("DELETE", "/v1/rules/{id}", "A"),
    ("GET", "/v1/rules/{id}/versions", "AN"),
    ("POST", "/v1/rules/{id}/rollback", "A"),
    ("POST", "/v1/rules/test", "AN"),
    ("GET", "/v1/lists", "AN"),
    ("POST", "/v1/lists", "A"),
    ("GET", "/v1/lists/{name}", "AN"),
    ("PUT", "/v1/lists/{name}", "A"),
    ("DELETE", "/v1/lists/{name}", "A"),
    ("POST", "/v1/lists/{name}/items", "A"),
    ("DELETE", "/v1/lists/{name}/items/{value}", "A"),
    ("GET", "/v1/audit", "AN"),
    ("POST", "/v1/backtests", "AN"),
    ("GET", "/v1/backtests/{id}", "AN"),
    ("GET", "/healthz", "*"),
    ("GET", "/readyz", "*"),
    ("GET", "/metrics", "*"),
    ("GET", "/v1/stream", "ANV"),
    ("GET", "/v1/models", "AN"),
    ("GET", "/v1/models/{id}", "AN"),
    ("POST", "/v1/models", "A"),
    ("POST", "/v1/models/{id}/activate", "A"),
    ("POST", "/v1/models/rollback", "A"),
    ("DELETE", "/v1/models/challenger", "A"),
    ("GET", "/v1/alerts", "AN"),
    ("POST", "/v1/alerts/{id}/retry", "AN"),
    ("GET", "/v1/cluster", "ANV"),
    ("GET", "/v1/keys", "A"),
    ("POST", "/v1/keys", "A"),
    ("DELETE", "/v1/keys/{id}", "A"),
    // Served but not in the API document: the description and the dashboard's static files.
    ("GET", "/openapi.json", "*"),
    ("GET", "/docs", "*"),
    ("GET", "/", "*"),
    ("GET", "/assets/dashboard.css", "*"),
    ("GET", "/assets/dashboard.js", "*"),
    ("GET", "/favicon.svg", "*"),
];

fn initial(role: Role) -> char {
    match role {
        Role::Admin => 'A',
        Role::Analyst => 'N',
        Role::Viewer => 'V',
        Role::Ingest => 'I',
    }
}

/// Status and headers only: the stream never ends, so its body is not read.
async fn status_of(
    router: &axum::Router,
    authorization: Option<&str>,
    method: &str,
    path: &str,
) -> (StatusCode, Option<String>) {
    let concrete = path
        .replace("{transaction_id}", "t-1")
        .replace("{user_id}", "u-1")
        .replace("{id}", "0123456789abcdef")
        .replace("{name}", "n")
        .replace("{value}", "v");
    let body = matches!(method, "POST" | "PUT").then(|| json!({}).to_string());
    let mut request = Request::builder()
        .method(method)
        .uri(concrete)
        .header("content-type", "application/json");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let request = request
        .body(body.map_or(Body::empty(), Body::from))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_against_every_role_and_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let (_, doc) = call_as(&r, None, "GET", "/openapi.json", None).await;
    // Every documented operation and every declared route must have an expectation here, and
    // every expectation a declared route.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            assert!(
                EXPECTED.iter().any(|(m, p, _)| *m == method && p == path),
                "{method} {path} has no entry in the access matrix"
            );
        }
    }
    let rules = &crate::routes::api().rules;
    for rule in rules {
        assert!(
            EXPECTED
                .iter()
                .any(|(m, p, _)| *m == rule.method.as_str() && *p == rule.path),
            "{} {} has no entry in the access matrix",
            rule.method,
            rule.path
        );
    }
    assert_eq!(
        rules.len(),
        EXPECTED.len(),
        "an expectation without a route"
    );
    let mut checked = 0;
    for (method, path, allowed) in EXPECTED {
        let (status, challenge) = status_of(&r, None, method, path).await;
        if *allowed == "*" {
            assert!(
                !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                "{method} {path} must be open, got {status}"
            );
        } else {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without credentials"
            );
            assert!(challenge.unwrap().starts_with("Bearer"), "{method} {path}");
        }
        for role in Role::ALL {
            let bearer = format!("Bearer {}", token(role));
            let (status, _) = status_of(&r, Some(&bearer), method, path).await;
            let may = *allowed == "*" || allowed.contains(initial(role));
            if may {
                assert!(
                    !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                    "{role} must be allowed {method} {path}, got {status}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} on {method} {path}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, EXPECTED.len() * Role::ALL.len());
}

fn claims(overrides: serde_json::Value) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "sub": "mallory", "role": "admin", "iss": "sentinel", "aud": "sentinel-api",
        "iat": now, "exp": now + 600,
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn hs256(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Asserts `token` gets a 401 naming `why`, and that the answer does not repeat the token.
async fn refused(r: &axum::Router, token: &str, why: &str) {
    let request = Request::get("/v1/rules")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = r.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "expected `{why}` in `{message}`");
    assert!(!String::from_utf8_lossy(&bytes).contains(token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_misaddressed_and_unsigned_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let now = chrono::Utc::now().timestamp();
    refused(
        &r,
        &hs256("another-secret-of-thirty-two-bytes!!", &claims(json!({}))),
        "bad signature",
    )
    .await;
    refused(
        &r,
        &hs256(TEST_SECRET, &claims(json!({"exp": now - 3600}))),
        "expired",
    )
    .await;
    refused(
        &r,
        &hs256(TEST_SECRET, &claims(json!({"aud": "someone-else"}))),
        "wrong audience",
    )
    .await;
    refused(
        &r,
        &hs256(TEST_SECRET, &claims(json!({"iss": "evil"}))),
        "wrong issuer",
    )
    .await;
    refused(
        &r,
        &hs256(TEST_SECRET, &claims(json!({"exp": null}))),
        "malformed",
    )
    .await;
    refused(
        &r,
        &hs256(TEST_SECRET, &claims(json!({"role": "root"}))),
        "malformed",
    )
    .await;
    refused(
        &r,
        &hs256(TEST_SECRET, &claims(json!({"sub": ""}))),
        "empty subject",
    )
    .await;
    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(json!({})).to_string().as_bytes())
    );
    refused(&r, &none, "malformed").await;
    // A valid HS256 token with its header's algorithm swapped: the signature no longer counts.
    let valid = hs256(TEST_SECRET, &claims(json!({})));
    let (_, rest) = valid.split_once('.').unwrap();
    let relabelled = format!("{}.{rest}", b64(br#"{"alg":"HS512","typ":"JWT"}"#));
    refused(&r, &relabelled, "algorithm not accepted").await;
    refused(&r, "not-a-token", "malformed").await;
    // The real thing passes.
    let (status, _) = call_as(
        &r,
        Some(&format!("Bearer {valid}")),
        "GET",
        "/v1/rules",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

const RS256_PRIVATE: &str = include_str!("testdata/rs256-test-private.pem");
const RS256_PUBLIC: &str = include_str!("testdata/rs256-test-public.pem");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_verify_and_algorithm_confusion_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("public.pem");
    std::fs::write(&key_file, RS256_PUBLIC).unwrap();
    let r = router_with(
        &dir,
        AuthConfig {
            jwt_algorithm: crate::auth::JwtAlgorithm::RS256,
            jwt_public_key_file: Some(key_file),
            ..AuthConfig::default()
        },
    );
    let signed = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(json!({"role": "viewer"})),
        &EncodingKey::from_rsa_pem(RS256_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let (status, _) = call_as(
        &r,
        Some(&format!("Bearer {signed}")),
        "GET",
        "/v1/decisions",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The classic confusion attack: HS256 with the (public) RSA key as the HMAC secret.
    refused(
        &r,
        &hs256(RS256_PUBLIC, &claims(json!({}))),
        "algorithm not accepted",
    )
    .await;
    // And an HS256 node's tokens mean nothing here.
    refused(&r, &token(Role::Admin), "algorithm not accepted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_created_used_listed_without_secrets_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let admin = admin();
    let (status, created) = call_as(
        &r,
        Some(&admin),
        "POST",
        "/v1/keys",
        Some(json!({"name": "checkout producer", "role": "ingest"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["created_by"], "test-admin");

    // Both header forms work for the key's role, and nothing else.
    let event = json!({"user_id": "u1", "amount": "5"});
    for header in ["x-api-key", "authorization"] {
        let value = if header == "x-api-key" {
            key.clone()
        } else {
            format!("ApiKey {key}")
        };
        let request = Request::post("/v1/transactions")
            .header("content-type", "application/json")
            .header(header, value)
            .body(Body::from(event.to_string()))
            .unwrap();
        let status = r.clone().oneshot(request).await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "{header}");
    }
    let (status, _) = call_as(&r, Some(&format!("ApiKey {key}")), "GET", "/v1/rules", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call_as(
        &r,
        Some(&format!("ApiKey {key}x")),
        "POST",
        "/v1/transactions",
        Some(event.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.to_string().contains(&key));

    // The listing never shows the key or its hash.
    let (status, listed) = call_as(&r, Some(&admin), "GET", "/v1/keys", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["id"], id.as_str());
    let text = listed.to_string();
    assert!(
        !text.contains(&key) && !text.contains(&crate::sha256_hex(&key)),
        "{text}"
    );

    // An admin key acts as `key:<id>` in the audit log.
    let (_, admin_key) = call_as(
        &r,
        Some(&admin),
        "POST",
        "/v1/keys",
        Some(json!({"name": "ops", "role": "admin"})),
    )
    .await;
    let admin_key = admin_key["key"].as_str().unwrap().to_owned();
    let admin_key_id = admin_key.split('_').nth(1).unwrap().to_owned();
    let rule = json!({"name": "by_key", "expression": "amount > 5000", "action": "review"});
    let (status, made) = call_as(
        &r,
        Some(&format!("ApiKey {admin_key}")),
        "POST",
        "/v1/rules",
        Some(rule),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["created_by"], format!("key:{admin_key_id}"));

    let (status, revoked) =
        call_as(&r, Some(&admin), "DELETE", &format!("/v1/keys/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = call_as(
        &r,
        Some(&format!("ApiKey {key}")),
        "POST",
        "/v1/transactions",
        Some(event),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call_as(
        &r,
        Some(&admin),
        "DELETE",
        "/v1/keys/0123456789abcdef",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, audit) = call_as(&r, Some(&admin), "GET", "/v1/audit", None).await;
    let entries: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().into(),
                e["principal"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected_key_principal = format!("key:{admin_key_id}");
    assert_eq!(
        entries,
        [
            ("key.create".to_owned(), "test-admin".to_owned()),
            ("key.create".to_owned(), "test-admin".to_owned()),
            ("rule.create".to_owned(), expected_key_principal),
            ("key.revoke".to_owned(), "test-admin".to_owned()),
        ]
    );
    assert!(!audit.to_string().contains(&key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_keys_work_by_secret_or_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let plain = "producer-secret-0123456789";
    let hashed = "scripts-secret-0123456789";
    let mut auth = test_auth();
    auth.api_keys = serde_json::from_value(json!([
        {"id": "producer", "role": "ingest", "secret": plain},
        {"id": "scripts", "role": "viewer", "secret_sha256": crate::sha256_hex(hashed)},
    ]))
    .unwrap();
    let r = router_with(&dir, auth);
    let (status, _) = call_as(
        &r,
        Some(&format!("ApiKey {plain}")),
        "POST",
        "/v1/transactions",
        Some(json!({"user_id": "u", "amount": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call_as(
        &r,
        Some(&format!("ApiKey {hashed}")),
        "GET",
        "/v1/decisions",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call_as(
        &r,
        Some(&format!("ApiKey {hashed}")),
        "POST",
        "/v1/transactions",
        Some(json!({"user_id": "u", "amount": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Creates an ingest key through `r` and returns the key and its id.
async fn created_key(r: &axum::Router) -> (String, String) {
    let (status, created) = call_as(
        r,
        Some(&admin()),
        "POST",
        "/v1/keys",
        Some(json!({"name": "checkout", "role": "ingest"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let field = |name: &str| created[name].as_str().unwrap().to_owned();
    (field("key"), field("id"))
}

/// The status of scoring an event under `key`.
async fn score_with(r: &axum::Router, key: &str) -> StatusCode {
    let event = json!({"user_id": "u1", "amount": "5"});
    call_as(
        r,
        Some(&format!("ApiKey {key}")),
        "POST",
        "/v1/transactions",
        Some(event),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_key_is_read_once_per_recheck_interval_and_its_secret_checked_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let (store, r) = crate::tests::watched_router(&dir);
    let (key, id) = created_key(&r).await;
    for _ in 0..5 {
        assert_eq!(score_with(&r, &key).await, StatusCode::OK);
    }
    assert_eq!(
        store.key_reads(),
        1,
        "read once, then verified from the cache"
    );

    // The id alone is not enough: a known id with another secret is refused.
    let forged = format!("sk_{id}_{}", "0".repeat(64));
    assert_eq!(score_with(&r, &forged).await, StatusCode::UNAUTHORIZED);
    assert_eq!(revoke_key(&r, &id).await, StatusCode::OK);
    assert_eq!(score_with(&r, &key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_recheck_interval_a_revocation_by_another_node_counts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = WatchedStore::open(&dir, false);
    let mut auth = test_auth();
    auth.stored_key_recheck_secs = 0;
    // Two nodes over one store, not told of each other's revocations.
    let here = router_on(
        Arc::clone(&store) as Arc<dyn Store>,
        auth.clone(),
        Arc::default(),
    );
    let elsewhere = router_on(Arc::clone(&store) as Arc<dyn Store>, auth, Arc::default());
    let (key, id) = created_key(&here).await;
    for _ in 0..3 {
        assert_eq!(score_with(&here, &key).await, StatusCode::OK);
    }
    assert_eq!(store.key_reads(), 3, "every request reads the store");
    assert_eq!(revoke_key(&elsewhere, &id).await, StatusCode::OK);
    assert_eq!(score_with(&here, &key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token_and_auth_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let mut auth = test_auth();
    auth.metrics_require_token = true;
    let r = router_with(&dir, auth);
    assert_eq!(
        status_of(&r, None, "GET", "/metrics").await.0,
        StatusCode::UNAUTHORIZED
    );
    let ingest = format!("Bearer {}", token(Role::Ingest));
    assert_eq!(
        status_of(&r, Some(&ingest), "GET", "/metrics").await.0,
        StatusCode::OK
    );

    let dir = tempfile::tempdir().unwrap();
    let r = router_with(
        &dir,
        AuthConfig {
            mode: AuthMode::Disabled,
            ..AuthConfig::default()
        },
    );
    let rule = json!({"name": "open_door", "expression": "amount > 5000", "action": "review"});
    let (status, made) = call_as(&r, None, "POST", "/v1/rules", Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["created_by"], "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_alone_takes_a_token_in_its_query() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let viewer = token(Role::Viewer);
    let stream = status_of(
        &r,
        None,
        "GET",
        &format!("/v1/stream?access_token={viewer}"),
    )
    .await;
    assert_eq!(stream.0, StatusCode::OK);
    let other = status_of(
        &r,
        None,
        "GET",
        &format!("/v1/decisions?access_token={viewer}"),
    )
    .await;
    assert_eq!(other.0, StatusCode::UNAUTHORIZED);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let mut auth = test_auth();
    auth.api_keys = serde_json::from_value(
        json!([{"id": "p", "role": "ingest", "secret": "very-secret-key-material"}]),
    )
    .unwrap();
    let printed = format!("{auth:?}");
    assert!(
        !printed.contains(TEST_SECRET) && !printed.contains("very-secret-key-material"),
        "{printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_guessing_credentials_is_stopped_and_others_are_not() {
    use crate::auth_throttle::FailedAuthLimit;
    use axum::extract::ConnectInfo;
    let dir = tempfile::tempdir().unwrap();
    let r = router_with(
        &dir,
        AuthConfig {
            failed_auth: FailedAuthLimit {
                max_failures: 3,
                window_secs: 3600,
            },
            ..test_auth()
        },
    );
    let from = |peer: &str, authorization: &str| {
        let mut request = Request::get("/v1/decisions")
            .header("authorization", authorization)
            .body(Body::empty())
            .unwrap();
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    };
    let guessing = "203.0.113.9:40000";
    for guess in 0..3 {
        let r = r
            .clone()
            .oneshot(from(guessing, &format!("ApiKey sk_guess_{guess}")))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth attempt is refused before it is looked at, even with a valid token, and from
    // another port of the same address.
    let stopped = r
        .clone()
        .oneshot(from("203.0.113.9:40001", &admin()))
        .await
        .unwrap();
    assert_eq!(stopped.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = stopped.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let bytes = stopped.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed authentications"),
        "{body}"
    );
    // Another address is unaffected; requests without credentials are not guesses.
    let other = r
        .clone()
        .oneshot(from("198.51.100.7:5000", &admin()))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    for _ in 0..5 {
        let mut request = Request::get("/v1/decisions").body(Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo(
            "198.51.100.8:5000".parse::<std::net::SocketAddr>().unwrap(),
        ));
        let r = r.clone().oneshot(request).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}
