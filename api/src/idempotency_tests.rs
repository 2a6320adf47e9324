//! Idempotency keys and rate limits through the router.

use crate::rate_limit::{Rate, RateLimits};
use crate::tests::{admin, router, router_with, test_auth, token};
use crate::{Idempotency, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sentinel_store::{RecordKind, Store, Writer, WriterConfig};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Sends `body` to `method uri` as `authorization` with an optional Idempotency-Key.
async fn send(
    r: &axum::Router,
    authorization: &str,
    method: &str,
    uri: &str,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, bool, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .header("authorization", authorization);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = r
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        replayed,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_replays_the_first_answer_and_a_different_body_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let admin = admin();
    let event = json!({"user_id": "u1", "amount": "12.50"});
    let (status, replayed, first) = send(
        &r,
        &admin,
        "POST",
        "/v1/transactions",
        Some("k-1"),
        event.clone(),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::OK, false), "{first}");
    let (status, replayed, again) = send(
        &r,
        &admin,
        "POST",
        "/v1/transactions",
        Some("k-1"),
        event.clone(),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    assert_eq!(
        again, first,
        "the first answer, assigned transaction id included"
    );

    let other = json!({"user_id": "u1", "amount": "99.00"});
    let (status, _, conflict) =
        send(&r, &admin, "POST", "/v1/transactions", Some("k-1"), other).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["error"]["field"], "Idempotency-Key");

    // Keys belong to their caller: another caller's `k-1` is a new request.
    let ingest = format!("Bearer {}", token(Role::Ingest));
    let (status, replayed, theirs) = send(
        &r,
        &ingest,
        "POST",
        "/v1/transactions",
        Some("k-1"),
        event.clone(),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::OK, false));
    assert_ne!(theirs["transaction_id"], first["transaction_id"]);

    // Without a key every request is new.
    let (_, _, a) = send(&r, &admin, "POST", "/v1/transactions", None, event.clone()).await;
    let (_, _, b) = send(&r, &admin, "POST", "/v1/transactions", None, event.clone()).await;
    assert_ne!(a["transaction_id"], b["transaction_id"]);

    let (status, _, bad) = send(
        &r,
        &admin,
        "POST",
        "/v1/transactions",
        Some("bad key"),
        event,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["field"], "Idempotency-Key");
}

/// `send` on a task of its own, for requests expected to wait.
fn sent_apart(
    r: &axum::Router,
    authorization: &str,
    uri: &'static str,
    key: &'static str,
    body: Value,
) -> tokio::task::JoinHandle<(StatusCode, bool, Value)> {
    let (r, authorization) = (r.clone(), authorization.to_owned());
    tokio::spawn(async move { send(&r, &authorization, "POST", uri, Some(key), body).await })
}

/// Answers stored by the idempotency layer's own task, as on a cluster member.
fn answers_stored_apart(store: Arc<dyn Store>) -> Idempotency {
    Idempotency::new(store, Duration::from_secs(3600))
}

/// Answers stored in a decision writer's batches, as on a node owning its embedded store.
/// (The router's stand-in decider stores no decisions: on a node, a decision in the batch of a
/// held answer waits with it.)
fn answers_stored_by_the_writer(store: Arc<dyn Store>) -> Idempotency {
    let writer = Writer::start(store, WriterConfig::default());
    Idempotency::with_writer(writer, Duration::from_secs(3600))
}

/// Scores `user` under `key` while answers are held from the store; the answer must come
/// without waiting for its record.
async fn scored_while_answers_wait(r: &axum::Router, user: &str, key: &str) -> Value {
    let event = json!({"user_id": user, "amount": "12.50"});
    let (status, replayed, body) = tokio::time::timeout(
        Duration::from_secs(60),
        send(r, &admin(), "POST", "/v1/transactions", Some(key), event),
    )
    .await
    .expect("answered while its record waits");
    assert_eq!((status, replayed), (StatusCode::OK, false), "{body}");
    body
}

/// The decision is stored before it is answered, and a retry would find it by its id: the
/// answer does not wait for its own record. Its key stays taken until the record is stored;
/// a retry waits, then replays it. A rule is a change a retry would make again: its answer
/// waits for its record.
async fn scoring_answers_go_out_before_they_are_stored(
    idempotency: fn(Arc<dyn Store>) -> Idempotency,
) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, r) = crate::tests::watched_router_with(&dir, idempotency);
    let admin = admin();
    let held = store.hold_answers().await;
    let first = scored_while_answers_wait(&r, "u-early", "k-early").await;
    let event = json!({"user_id": "u-early", "amount": "12.50"});
    let retry = sent_apart(&r, &admin, "/v1/transactions", "k-early", event);
    let rule = json!({"name": "held", "expression": "amount > 7000", "action": "review"});
    let rule = sent_apart(&r, &admin, "/v1/rules", "k-rule", rule);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !retry.is_finished(),
        "the retry waits for the first answer's record"
    );
    assert!(
        !rule.is_finished(),
        "a rule is answered once its answer is stored"
    );

    drop(held);
    let (status, replayed, again) = retry.await.unwrap();
    assert_eq!((status, replayed), (StatusCode::OK, true), "{again}");
    assert_eq!(again, first, "the first answer, replayed");
    assert_eq!(rule.await.unwrap().0, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoring_answer_goes_out_before_it_is_stored_and_a_retry_waits_to_replay_it() {
    scoring_answers_go_out_before_they_are_stored(answers_stored_apart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoring_answer_goes_out_before_the_decision_writer_stores_it() {
    scoring_answers_go_out_before_they_are_stored(answers_stored_by_the_writer).await;
}

/// A stopping node waits for the answers it sent before storing them (`finish_saves`, once
/// its HTTP server has stopped): a retry after the restart gets the replay. A request still
/// answered after that (one the server gave up waiting for) is answered once stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_sent_before_a_stop_are_stored_before_it_ends() {
    for idempotency in [answers_stored_apart, answers_stored_by_the_writer] {
        let dir = tempfile::tempdir().unwrap();
        let (store, idem, r) = crate::tests::watched_router_with(&dir, idempotency);
        let held = store.hold_answers().await;
        let first = scored_while_answers_wait(&r, "u-stop", "k-stop").await;
        let finished = tokio::spawn({
            let idem = Arc::clone(&idem);
            async move { idem.finish_saves().await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !finished.is_finished(),
            "the stop waits for the answer's record"
        );
        drop(held);
        tokio::time::timeout(Duration::from_secs(60), finished)
            .await
            .expect("the stop ends once the record is stored")
            .unwrap();
        let kept = store
            .scan_records(RecordKind::Idempotency, "", None, 10)
            .await
            .unwrap();
        assert_eq!(kept.len(), 1, "the answer is stored");
        let event = json!({"user_id": "u-stop", "amount": "12.50"});
        let (_, replayed, again) = send(
            &r,
            &admin(),
            "POST",
            "/v1/transactions",
            Some("k-stop"),
            event,
        )
        .await;
        assert!(replayed, "{again}");
        assert_eq!(again, first);

        let held = store.hold_answers().await;
        let late = json!({"user_id": "u-late", "amount": "12.50"});
        let late = sent_apart(&r, &admin(), "/v1/transactions", "k-late", late);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !late.is_finished(),
            "after the stop an answer waits for its record"
        );
        drop(held);
        assert_eq!(late.await.unwrap().0, StatusCode::OK);
        idem.finish_saves().await;
    }
}

/// A store that does not take an answer within the limit frees its key: a retry is not held
/// up behind it (it scores again and finds the decision of record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_store_does_not_take_in_time_frees_its_key() {
    for idempotency in [answers_stored_apart, answers_stored_by_the_writer] {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, r) = crate::tests::watched_router_with(&dir, |store| {
            idempotency(store).saving_within(Duration::from_millis(200))
        });
        let _held = store.hold_answers().await;
        scored_while_answers_wait(&r, "u-slow", "k-slow").await;
        let event = json!({"user_id": "u-slow", "amount": "12.50"});
        let (status, replayed, again) = tokio::time::timeout(
            Duration::from_secs(20),
            send(
                &r,
                &admin(),
                "POST",
                "/v1/transactions",
                Some("k-slow"),
                event,
            ),
        )
        .await
        .expect("the retry is not held up by a store that does not answer");
        assert_eq!((status, replayed), (StatusCode::OK, false), "{again}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_changes_and_keys_are_made_once_per_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let admin = admin();
    let rule = json!({"name": "once", "expression": "amount > 7000", "action": "review"});
    let (s1, _, first) = send(
        &r,
        &admin,
        "POST",
        "/v1/rules",
        Some("rule-1"),
        rule.clone(),
    )
    .await;
    let (s2, replayed, second) = send(&r, &admin, "POST", "/v1/rules", Some("rule-1"), rule).await;
    assert_eq!(
        (s1, s2, replayed),
        (StatusCode::CREATED, StatusCode::CREATED, true)
    );
    assert_eq!(first["id"], second["id"]);
    let (_, _, list) = send(&r, &admin, "GET", "/v1/rules", None, Value::Null).await;
    let named_once = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "once")
        .count();
    assert_eq!(named_once, 1);

    // A key's secret is shown once: the retry creates nothing and says why.
    let new_key = json!({"name": "producer", "role": "ingest"});
    let (status, _, created) = send(
        &r,
        &admin,
        "POST",
        "/v1/keys",
        Some("key-1"),
        new_key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(created["key"].is_string());
    let (status, _, retry) = send(&r, &admin, "POST", "/v1/keys", Some("key-1"), new_key).await;
    assert_eq!(status, StatusCode::CONFLICT, "{retry}");
    assert!(!retry.to_string().contains(created["key"].as_str().unwrap()));
    let (_, _, keys) = send(&r, &admin, "GET", "/v1/keys", None, Value::Null).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_make_one_decision() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let admin = admin();
    let event = json!({"user_id": "u-c", "amount": "3.00"});
    let answers = futures::future::join_all((0..32).map(|_| {
        send(
            &r,
            &admin,
            "POST",
            "/v1/transactions",
            Some("same"),
            event.clone(),
        )
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, _, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["transaction_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_allowance_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut auth = test_auth();
    auth.rate_limits = RateLimits {
        viewer: Rate {
            per_sec: 0.5,
            burst: 3.0,
        },
        ..RateLimits::default()
    };
    let r = router_with(&dir, auth);
    let viewer = format!("Bearer {}", token(Role::Viewer));
    let request = |auth: &str| {
        Request::get("/v1/decisions")
            .header("authorization", auth)
            .body(Body::empty())
            .unwrap()
    };
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = r.clone().oneshot(request(&viewer)).await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response.headers().get("retry-after").cloned();
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let secs: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    // Another caller has its own bucket.
    let status = r.clone().oneshot(request(&admin())).await.unwrap().status();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_model_upload_with_a_key_gets_the_routes_own_body_limit() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    // The shipped model as `sentinel train` writes it, padded to 2 MiB: far over the 128 KiB
    // the layer used to buffer, well under the 16 MiB models may have.
    let mut model = include_bytes!("../../model/default_model.json").to_vec();
    model.resize(2 << 20, b'\n');
    let upload = |key: &str, model: &[u8]| {
        Request::post("/v1/models")
            .header("content-type", "application/json")
            .header("authorization", admin())
            .header("idempotency-key", key)
            .body(Body::from(model.to_vec()))
            .unwrap()
    };
    let first = r.clone().oneshot(upload("model-1", &model)).await.unwrap();
    let status = first.status();
    let bytes = first.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let again = r.clone().oneshot(upload("model-1", &model)).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert!(again.headers().contains_key("idempotent-replayed"));
    // Over the route's limit it is still 413, key or not.
    model.resize(crate::models::MAX_MODEL_BYTES + 1, b'\n');
    let over = r.clone().oneshot(upload("model-2", &model)).await.unwrap();
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// A batch of 10,000 labels, each rejected with its reason, answers ~1.6 MB: under a key it
/// is answered and kept like any other answer, and a retry gets it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_label_batch_under_a_key_is_answered_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let labels: Vec<Value> = (0..10_000)
        .map(|i| json!({"transaction_id": format!("no-such-transaction-{i:06}"), "label": "fraud"}))
        .collect();
    let batch = json!({ "labels": labels });
    let (status, replayed, first) = send(
        &r,
        &admin(),
        "POST",
        "/v1/labels",
        Some("big-batch"),
        batch.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(!replayed);
    assert!(
        first.to_string().len() > 1 << 20,
        "the answer is over 1 MiB"
    );
    assert_eq!(first["results"].as_array().unwrap().len(), 10_000);
    let (status, replayed, again) =
        send(&r, &admin(), "POST", "/v1/labels", Some("big-batch"), batch).await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    assert_eq!(again, first);
}

/// An answer too large to keep (here ~2.7 MB, long transaction ids) is answered all the same;
/// a retry is not replayed but gets a real attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_large_to_keep_is_answered_and_a_retry_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let long = "x".repeat(100);
    let labels: Vec<Value> = (0..10_000)
        .map(|i| json!({"transaction_id": format!("{long}-{i:06}"), "label": "fraud"}))
        .collect();
    let batch = json!({ "labels": labels });
    for attempt in ["first", "retry"] {
        let (status, replayed, answer) = send(
            &r,
            &admin(),
            "POST",
            "/v1/labels",
            Some("huge"),
            batch.clone(),
        )
        .await;
        assert_eq!((status, replayed), (StatusCode::OK, false), "{attempt}");
        assert!(
            answer.to_string().len() > 2 << 20,
            "{attempt}: over the limit"
        );
        assert_eq!(answer["results"].as_array().unwrap().len(), 10_000);
    }
}
