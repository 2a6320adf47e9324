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

#[async_trait]
impl Decider for ApproveAll {
    async fn decide(
        &self,
        event: Transaction,
        _received: Instant,
    ) -> Result<Stored, DecisionError> {
        let (outcome, score) = Thresholds::default().decide([]);
        assert_eq!(outcome, Outcome::Approve);
        Ok(Stored {
            decision: Arc::new(Decision {
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
            }),
            duplicate: false,
        })
    }
}

struct NoMetrics;
impl MetricsRender for NoMetrics {
    fn render(&self) -> String {
        "# none\n".into()
    }
}

fn router(dir: &tempfile::TempDir) -> Router {
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    app(ApiState {
        decider: Arc::new(ApproveAll),
        store: Arc::new(store),
        limits: Arc::new(Limits::default()),
        metrics: Arc::new(NoMetrics),
        ready: Arc::new(AtomicBool::new(true)),
    })
}

async fn post(router: Router, body: impl Into<Body>) -> (StatusCode, serde_json::Value) {
    let request = Request::post("/v1/transactions")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
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

#[tokio::test]
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

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let huge = format!(
        r#"{{"user_id":"u1","amount":1,"metadata":{{"x":"{}"}}}}"#,
        "a".repeat(1 << 20)
    );
    let request = Request::post("/v1/transactions")
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

#[tokio::test]
async fn unknown_decisions_and_routes_are_404_json() {
    let dir = tempfile::tempdir().unwrap();
    for uri in ["/v1/decisions/nope", "/v2/nothing"] {
        let response = router(&dir)
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
}
