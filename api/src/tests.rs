//! Router tests with a stand-in decider; the real scoring path is tested end to end in the
//! node's integration tests.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sentinel_event::{Decision, Outcome, Thresholds};
use sentinel_store::EmbeddedStore;
use tower::ServiceExt;

struct ApproveAll;

impl ApproveAll {
    fn approve(event: Transaction) -> Decision {
        let (outcome, score) = Thresholds::default().decide([]);
        assert_eq!(outcome, Outcome::Approve);
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
            decided_at: chrono::Utc::now(),
            latency_us: 1,
            event: Arc::new(event),
            ml: None,
        }
    }
}

#[async_trait]
impl Decider for ApproveAll {
    async fn decide(
        &self,
        event: Transaction,
        _received: Instant,
    ) -> Result<Stored, DecisionError> {
        Ok(Stored {
            decision: Arc::new(Self::approve(event)),
            duplicate: false,
        })
    }

    async fn screen(
        &self,
        events: Vec<Transaction>,
    ) -> Vec<Result<sentinel_engine::Screened, DecisionError>> {
        events
            .into_iter()
            .map(|event| {
                Ok(sentinel_engine::Screened {
                    decision: Self::approve(event),
                    duplicate: false,
                })
            })
            .collect()
    }

    async fn user_state(&self, _user_id: &str) -> Option<sentinel_engine::UserView> {
        None
    }
}

struct NoMetrics;
impl MetricsRender for NoMetrics {
    fn render(&self) -> String {
        "# none\n".into()
    }
}

/// The HS256 secret of the test routers.
pub(crate) const TEST_SECRET: &str = "test-secret-of-at-least-thirty-two-bytes";

/// The auth settings of the test routers.
pub(crate) fn test_auth() -> AuthConfig {
    AuthConfig {
        jwt_secret: Some(TEST_SECRET.into()),
        ..AuthConfig::default()
    }
}

/// A valid token for `role`.
pub(crate) fn token(role: Role) -> String {
    test_auth()
        .mint(
            &format!("test-{role}"),
            role,
            std::time::Duration::from_secs(600),
        )
        .unwrap()
}

/// `Bearer <admin token>`.
pub(crate) fn admin() -> String {
    format!("Bearer {}", token(Role::Admin))
}

pub(crate) fn router(dir: &tempfile::TempDir) -> Router {
    router_with(dir, test_auth())
}

pub(crate) fn router_with(dir: &tempfile::TempDir, auth: AuthConfig) -> Router {
    router_with_gate(dir, auth, Arc::default())
}

/// Like [`router_with`], with the given turns for searches and aggregates.
pub(crate) fn router_with_gate(
    dir: &tempfile::TempDir,
    auth: AuthConfig,
    heavy_queries: Arc<heavy::HeavyQueries>,
) -> Router {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    router_on(store, auth, heavy_queries)
}

/// A test router over a [`crate::test_store::WatchedStore`] in `dir`, and that store.
pub(crate) fn watched_router(
    dir: &tempfile::TempDir,
) -> (Arc<crate::test_store::WatchedStore>, Router) {
    let store = crate::test_store::WatchedStore::open(dir, false);
    let router = router_on(
        Arc::clone(&store) as Arc<dyn Store>,
        test_auth(),
        Arc::default(),
    );
    (store, router)
}

/// A test router over a [`crate::test_store::WatchedStore`] in `dir` whose idempotency layer
/// is `idempotency` over that store; the store, the layer and the router.
pub(crate) fn watched_router_with(
    dir: &tempfile::TempDir,
    idempotency: impl FnOnce(Arc<dyn Store>) -> Idempotency,
) -> (
    Arc<crate::test_store::WatchedStore>,
    Arc<Idempotency>,
    Router,
) {
    let store = crate::test_store::WatchedStore::open(dir, false);
    let shared = Arc::clone(&store) as Arc<dyn Store>;
    let mut context = context_over(
        Arc::clone(&shared),
        test_auth(),
        Arc::default(),
        true,
        Arc::new(ApproveAll),
    );
    context.idempotency = Arc::new(idempotency(shared));
    let idempotency = Arc::clone(&context.idempotency);
    (store, idempotency, app(context))
}

/// A test router over `store`.
pub(crate) fn router_on(
    store: Arc<dyn Store>,
    auth: AuthConfig,
    heavy_queries: Arc<heavy::HeavyQueries>,
) -> Router {
    router_over(store, auth, heavy_queries, true, Arc::new(ApproveAll))
}

/// A test router over `store`; with `announce` false no policy ever reaches the (absent)
/// user actors, as when they are stuck.
pub(crate) fn router_over(
    store: Arc<dyn Store>,
    auth: AuthConfig,
    heavy_queries: Arc<heavy::HeavyQueries>,
    announce: bool,
    decider: Arc<dyn Decider>,
) -> Router {
    app(context_over(store, auth, heavy_queries, announce, decider))
}

/// What [`router_over`] serves.
fn context_over(
    store: Arc<dyn Store>,
    auth: AuthConfig,
    heavy_queries: Arc<heavy::HeavyQueries>,
    announce: bool,
    decider: Arc<dyn Decider>,
) -> ApiContext {
    let catalog = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(sentinel_catalog::Catalog::open(
            Arc::clone(&store),
            sentinel_engine::PolicyDef::seed(),
            300_000,
        ))
    })
    .unwrap();
    // No user actors here: announce each policy as applied as soon as it is published.
    let catalog = Arc::new(catalog);
    let (applied_tx, applied_rx) = tokio::sync::watch::channel(catalog.policy().rules.version);
    let mut published = catalog.subscribe();
    tokio::spawn(async move {
        while published.changed().await.is_ok() {
            let version = published.borrow_and_update().rules.version;
            if announce {
                applied_tx.send_replace(version);
            }
        }
    });
    ApiContext {
        decider,
        store: Arc::clone(&store),
        catalog,
        backtests: Arc::default(),
        aggregates: Arc::default(),
        policy_applied: applied_rx,
        limits: Arc::new(Limits::default()),
        metrics: Arc::new(NoMetrics),
        ready: Arc::new(AtomicBool::new(true)),
        live: Default::default(),
        heavy_queries,
        scoring_slots: Arc::new(tokio::sync::Semaphore::new(64)),
        idempotency: Arc::new(Idempotency::new(
            Arc::clone(&store),
            std::time::Duration::from_secs(3600),
        )),
        auth: Arc::new(Authenticator::new(&auth, ApiKeys::new(&auth, store).unwrap()).unwrap()),
    }
}

async fn post(router: Router, body: impl Into<Body>) -> (StatusCode, serde_json::Value) {
    let request = Request::post("/v1/transactions")
        .header("content-type", "application/json")
        .header("authorization", admin())
        .body(body.into())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_event_is_scored_and_defaults_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (status, body) = post(router(&dir), r#"{"user_id":"u1","amount":"12.50"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "approve");
    assert_eq!(body["event"]["amount"], "12.50");
    assert_eq!(body["assigned"]["transaction_id"], true);
    assert_eq!(body["assigned"]["currency"], true);
    assert_eq!(body["duplicate"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_422_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    for (json, field) in [
        (r#"{"user_id":"u1","amount":-1}"#, "amount"),
        (r#"{"amount":5}"#, "user_id"),
        (
            r#"{"user_id":"u1","amount":5,"currency":"QQQ"}"#,
            "currency",
        ),
        (r#"{"user_id":"u1","amount":5,"shoe_size":44}"#, "shoe_size"),
        (r#"{"user_id":"u1","amount":"#, "body"),
    ] {
        let (status, body) = post(router(&dir), json).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}: {body}");
        assert_eq!(body["error"]["field"], field, "{json}: {body}");
        assert_eq!(body["error"]["code"], "invalid_event");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let huge = format!(
        r#"{{"user_id":"u1","amount":1,"metadata":{{"x":"{}"}}}}"#,
        "a".repeat(1 << 20)
    );
    let request = Request::post("/v1/transactions")
        .header("authorization", admin())
        .header("content-type", "application/json")
        .body(Body::from(huge))
        .unwrap();
    let response = router(&dir).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let just_over = format!(
        r#"{{"user_id":"u1","amount":1,"metadata":{{"x":"{}"}}}}"#,
        "a".repeat(70_000)
    );
    let (status, body) = post(router(&dir), just_over).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["field"], "body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_decisions_and_routes_are_404_json() {
    let dir = tempfile::tempdir().unwrap();
    for uri in ["/v1/decisions/nope", "/v2/nothing"] {
        let response = router(&dir)
            .oneshot(
                Request::get(uri)
                    .header("authorization", admin())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    call_as(router, Some(&admin()), method, uri, body).await
}

/// Revokes the stored API key `id` as an admin through `router`; the answer's status.
pub(crate) async fn revoke_key(router: &Router, id: &str) -> StatusCode {
    let path = format!("/v1/keys/{id}");
    call_as(router, Some(&admin()), "DELETE", &path, None)
        .await
        .0
}

/// One request with `authorization` (none when `None`); the status and the JSON body.
pub(crate) async fn call_as(
    router: &Router,
    authorization: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let request = request
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&bytes)))
    };
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_created_versioned_rolled_back_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let (status, list) = call(&r, "GET", "/v1/rules", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["rules"].as_array().unwrap().len(), 8);
    assert_eq!(list["policy_version"], 1);

    let rule = serde_json::json!({"name": "big_web", "expression": "amount > 500 and channel = \"web\"", "action": "review", "priority": 3});
    let (status, created) = call(&r, "POST", "/v1/rules", Some(rule)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["version"], 1);

    let (status, updated) = call(
        &r,
        "PUT",
        &format!("/v1/rules/{id}"),
        Some(serde_json::json!({"name": "big_web", "expression": "amount > 900", "action": "decline", "mode": "shadow"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["version"].as_u64(), updated["mode"].as_str()),
        (Some(2), Some("shadow"))
    );
    let (_, shadow) = call(&r, "GET", "/v1/rules?mode=shadow", None).await;
    assert_eq!(shadow["rules"].as_array().unwrap().len(), 1);

    let (status, back) = call(
        &r,
        "POST",
        &format!("/v1/rules/{id}/rollback"),
        Some(serde_json::json!({"version": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (back["version"].as_u64(), back["expression"].as_str()),
        (Some(3), Some("amount > 500 and channel = \"web\""))
    );
    let (_, versions) = call(&r, "GET", &format!("/v1/rules/{id}/versions"), None).await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);

    let (status, deleted) = call(&r, "DELETE", &format!("/v1/rules/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["deleted"], true);
    let (_, list) = call(&r, "GET", "/v1/rules", None).await;
    assert_eq!(list["rules"].as_array().unwrap().len(), 8);
    assert_eq!(list["policy_version"], 5);

    let (_, page) = call(&r, "GET", "/v1/audit?limit=2", None).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["entries"][0]["action"], "rule.create");
    let next = page["next"].as_str().unwrap();
    let (_, rest) = call(&r, "GET", &format!("/v1/audit?after={next}"), None).await;
    let actions: Vec<&str> = rest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rule.rollback", "rule.delete"]);
    let (status, err) = call(&r, "GET", "/v1/audit?after=not-a-cursor", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["field"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_get_precise_answers() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let cases = [
        (
            serde_json::json!({"name": "x", "expression": "amount >\n  \"text\"", "action": "review"}),
            "expression",
            Some((2, 3)),
        ),
        (
            serde_json::json!({"name": "x", "expression": "amont > 1", "action": "review"}),
            "expression",
            Some((1, 1)),
        ),
        (
            serde_json::json!({"name": "x", "expression": "amount > 1", "action": "explode"}),
            "action",
            None,
        ),
        (
            serde_json::json!({"name": "x", "expression": "amount > 1", "action": "review", "colour": 1}),
            "colour",
            None,
        ),
        (
            serde_json::json!({"name": "x", "expression": "amount > 1", "action": {"add_score": 7}}),
            "rule",
            None,
        ),
        (
            serde_json::json!({"name": "x", "expression": format!("{}amount > 1{}", "(".repeat(100), ")".repeat(100)), "action": "flag"}),
            "expression",
            Some((1, 33)),
        ),
        (
            serde_json::json!({"name": "x", "expression": "merchant_category matches \"(a+)+$\" or x in @nope", "action": "flag"}),
            "expression",
            None,
        ),
    ];
    for (body, field, position) in cases {
        let (status, err) = call(&r, "POST", "/v1/rules", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
        if let Some((line, column)) = position {
            assert_eq!(
                (
                    err["error"]["line"].as_u64(),
                    err["error"]["column"].as_u64()
                ),
                (Some(line), Some(column)),
                "{err}"
            );
        }
    }
    let (status, _) = call(&r, "POST", "/v1/rules", Some(serde_json::json!({"name": "large_amount", "expression": "amount > 1", "action": "flag"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(&r, "GET", "/v1/rules/no-such-id", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = call(
        &r,
        "GET",
        "/v1/rules?name_contains=%27%3B%20DROP%20TABLE%20rules%3B--",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(list["rules"].as_array().unwrap().is_empty());
    let (status, err) = call(&r, "GET", "/v1/rules?mode=sideways", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let huge = serde_json::json!({"name": "x", "expression": "amount > 1", "action": "flag", "description": "d".repeat(1 << 20)});
    let (status, err) = call(&r, "POST", "/v1/rules", Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    let (_, list) = call(&r, "GET", "/v1/rules", None).await;
    assert_eq!(list["policy_version"], 1, "nothing invalid was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_tests_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let (status, list) = call(
        &r,
        "POST",
        "/v1/lists",
        Some(serde_json::json!({"name": "blocked_devices", "items": [{"value": "dev-9"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    let (status, _) = call(
        &r,
        "POST",
        "/v1/lists/blocked_devices/items",
        Some(serde_json::json!({"value": "dev-7", "expires_at": "2099-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let test = serde_json::json!({
        "expression": "device_id in @blocked_devices and amount > 2 * user.avg_amount_30d",
        "transaction": {"user_id": "u", "amount": "100", "device_id": "dev-7", "timestamp": "2026-11-20T12:10:00Z"},
        "history": [{"user_id": "u", "amount": "20", "timestamp": "2026-11-20T12:00:00Z"}]
    });
    let (status, result) = call(&r, "POST", "/v1/rules/test", Some(test)).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["matches"], true);
    assert_eq!(
        result["values"][1],
        serde_json::json!(["@blocked_devices", true])
    );
    let bad = serde_json::json!({"expression": "amount > 1", "transaction": {"user_id": "u", "amount": -1}});
    let (status, err) = call(&r, "POST", "/v1/rules/test", Some(bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["field"], "transaction.amount");

    let rule = serde_json::json!({"name": "blocked", "expression": "device_id in @blocked_devices", "action": "decline"});
    assert_eq!(
        call(&r, "POST", "/v1/rules", Some(rule)).await.0,
        StatusCode::CREATED
    );
    let (status, err) = call(&r, "DELETE", "/v1/lists/blocked_devices", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let (status, _) = call(
        &r,
        "DELETE",
        "/v1/lists/blocked_devices/items/dev-404",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = call(&r, "DELETE", "/v1/lists/blocked_devices/items/dev-9", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, _) = call(
        &r,
        "POST",
        "/v1/decisions/unknown/label",
        Some(serde_json::json!({"label": "fraud"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_the_router_serves() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let (status, doc) = call(&r, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{transaction_id}", "t-1")
            .replace("{user_id}", "u-1")
            .replace("{id}", "x")
            .replace("{name}", "n")
            .replace("{value}", "v");
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let body = matches!(method.as_str(), "POST" | "PUT").then(|| serde_json::json!({}));
            let request = Request::builder()
                .method(method.as_str())
                .uri(&concrete)
                .header("content-type", "application/json")
                .header("authorization", admin())
                .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
                .unwrap();
            let response = r.clone().oneshot(request).await.unwrap();
            assert_ne!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            if response.headers()["content-type"] == "text/event-stream" {
                // An endless stream: that it answers as one is the check.
                operations += 1;
                continue;
            }
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("no route for"),
                "{method} {path} is documented but not routed"
            );
            operations += 1;
        }
    }
    // Every route except /openapi.json, /docs and the dashboard's page and assets.
    assert_eq!(operations, 47, "every handler is documented");
    for schema in [
        "Transaction",
        "Decision",
        "RuleVersion",
        "ErrorResponse",
        "BacktestReport",
        "UserView",
        "ClusterView",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    let page = r
        .clone()
        .oneshot(Request::get("/docs").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&html).contains("/openapi.json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_change_answers_only_once_it_is_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    // The policy never reaches the actors: every change is stored, none is in force.
    let r = router_over(
        store,
        test_auth(),
        Arc::default(),
        false,
        Arc::new(ApproveAll),
    );
    let rule = serde_json::json!({"name": "big", "expression": "amount > 100", "action": "review"});
    let (status, body) = call(&r, "POST", "/v1/rules", Some(rule)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (_, rules) = call(&r, "GET", "/v1/rules", None).await;
    let id = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "big")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed =
        serde_json::json!({"name": "big", "expression": "amount > 200", "action": "review"});
    let (status, body) = call(&r, "PUT", &format!("/v1/rules/{id}"), Some(changed)).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "an update must not answer before it is in force: {body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not reached every user actor"));
}
