//! Scoring over HTTP against a running node (no Kafka): decisions, idempotent redelivery,
//! precise refusals, metrics, and a clean stop.

use sentinel_testkit as support;

use serde_json::json;
use support::{event, metric_value, NodeProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_scoring_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), &[]).await;
    let client = support::admin_client();
    let post = |body: String| {
        client
            .post(node.url("/v1/transactions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // A minimal event: the node assigns what is missing and says so.
    let r = post(json!({"user_id": "h-1", "amount": "19.99"}).to_string())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let minimal: serde_json::Value = r.json().await.unwrap();
    assert_eq!(minimal["outcome"], "approve");
    assert_eq!(minimal["score"], 0.0);
    assert_eq!(minimal["assigned"]["transaction_id"], true);
    assert_eq!(minimal["event"]["amount"], "19.99");
    assert!(minimal["latency_us"].as_u64().is_some());
    assert_eq!(minimal["rule_set_version"], 1);

    // A large amount is declined-or-reviewed with its reason and the value the rule saw.
    let r = post(event("h-big", "h-2", "50000", 1, "FR").to_string())
        .await
        .unwrap();
    let big: serde_json::Value = r.json().await.unwrap();
    assert_eq!(big["outcome"], "review");
    assert_eq!(big["reasons"][0]["rule"], "large_amount");
    assert_eq!(
        big["reasons"][0]["values"][0],
        json!(["amount_base", 58000.0])
    );

    // The same transaction id again: the first decision, not a second one.
    let r = post(event("h-big", "h-2", "1", 1, "FR").to_string())
        .await
        .unwrap();
    let again: serde_json::Value = r.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event"]["amount"], "50000");
    assert_eq!(node.user_decisions(&client, "h-2").await.len(), 1);
    let stored = node.decision(&client, "h-big").await.unwrap();
    assert_eq!(stored["outcome"], "review");

    // Bad input: 422 naming the field, or 413 for the oversized body.
    let valid = event("h-bad", "h-3", "10", 1, "FR");
    let with = |field: &str, value: serde_json::Value| {
        let mut e = valid.clone();
        e[field] = value;
        e.to_string()
    };
    for (body, field) in [
        ("{oops".to_string(), "body"),
        (with("amount", json!(-3)), "amount"),
        (with("amount", json!("NaN")), "amount"),
        (with("currency", json!("ABC")), "currency"),
        (
            with("timestamp", json!("1970-01-01T00:00:00Z")),
            "timestamp",
        ),
        (with("channel", json!("fax")), "channel"),
        (with("surprise", json!(1)), "surprise"),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), 422, "{body}");
        let err: serde_json::Value = r.json().await.unwrap();
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let r = post(with("metadata", json!({"blob": "x".repeat(1_000_000)})))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // The 413 is answered before the upload ends and the server closes that connection; a
    // pooled connection could race the close, so the next request goes on a fresh client.
    let metrics = node.metrics(&support::admin_client()).await;
    assert_eq!(
        metric_value(&metrics, r#"sentinel_decisions_total{outcome="approve"}"#),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, r#"sentinel_decisions_total{outcome="review"}"#),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, r#"sentinel_events_received_total{source="http"}"#),
        3.0
    );

    // The live summary line (every 5 s) counts the repeated transaction apart from the rate.
    support::eventually(
        "a summary line counting the duplicate",
        std::time::Duration::from_secs(20),
        async || {
            node.log_text()
                .lines()
                .any(|l| l.contains("| rejected 0 | duplicates 1 |"))
                .then_some(())
        },
    )
    .await;

    assert_eq!(node.terminate(), Some(0), "{}", node.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = support::admin_client();
    let mut node = NodeProcess::start(dir.path(), &[]).await;
    for i in 0..5 {
        let r = client
            .post(node.url("/v1/transactions"))
            .header("content-type", "application/json")
            .body(event(&format!("s-{i}"), "s-user", "30", 10 - i, "FR").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    node.kill();
    let node = NodeProcess::start(dir.path(), &[]).await;
    let r: serde_json::Value = client
        .post(node.url("/v1/transactions"))
        .header("content-type", "application/json")
        .body(event("s-5", "s-user", "30", 1, "FR").to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["user_seq"], 6,
        "the restarted node rebuilt the user's state from the store"
    );
    assert_eq!(node.user_decisions(&client, "s-user").await.len(), 6);
}

/// The node turns transparent huge pages off for itself (`sentinel_allocator::configure`, its
/// first call): the kernel reports it of the running process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), &[]).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
    let enabled = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .expect("Linux 5.0 or later reports THP_enabled");
    assert_eq!(enabled.trim(), "0", "{status}");
    assert_eq!(node.terminate(), Some(0));
}

/// Polls a backtest job until it is done.
async fn finished_backtest(
    client: &reqwest::Client,
    node: &NodeProcess,
    id: &str,
) -> serde_json::Value {
    support::eventually(
        "the backtest",
        std::time::Duration::from_secs(60),
        async || {
            let url = node.url(&format!("/v1/backtests/{id}"));
            let v: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (v["status"] == "done").then_some(v)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtests_replay_history_under_a_candidate_rule() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]).await;
    let client = support::admin_client();
    for i in 0..12 {
        let amount = format!("{}", 100 * (i + 1));
        let r = client
            .post(node.url("/v1/transactions"))
            .header("content-type", "application/json")
            .body(
                event(
                    &format!("bt-{i}"),
                    &format!("bt-user-{}", i % 3),
                    &amount,
                    60 - i as i64,
                    "FR",
                )
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let from = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    let until = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let request = json!({
        "candidate": {"rule": {"name": "over_650", "expression": "amount > 650", "action": "decline"}},
        "from": from, "until": until
    });
    let r = client
        .post(node.url("/v1/backtests"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: serde_json::Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let done = finished_backtest(&client, &node, &id).await;
    let report = &done["report"];
    assert_eq!(report["events"], 12);
    assert_eq!(report["hits"]["over_650"], 6, "{report}");
    assert_eq!(report["changed"], 6);
    assert_eq!(done["processed"], 3);

    let unchanged = json!({"candidate": "current", "from": from, "until": until});
    let r = client
        .post(node.url("/v1/backtests"))
        .json(&unchanged)
        .send()
        .await
        .unwrap();
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = finished_backtest(&client, &node, &id).await;
    assert_eq!(
        done["report"]["changed"], 0,
        "live and replayed decisions agree"
    );

    let backwards = json!({"candidate": "current", "from": until, "until": from});
    let r = client
        .post(node.url("/v1/backtests"))
        .json(&backwards)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let nonsense = json!({"candidate": {"rule": {"name": "x", "expression": "amount >", "action": "flag"}}, "from": from, "until": until});
    let r = client
        .post(node.url("/v1/backtests"))
        .json(&nonsense)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = client
        .get(node.url("/v1/backtests/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looking_things_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]).await;
    let client = support::admin_client();
    let get = async |path: &str| -> (u16, serde_json::Value) {
        let r = client.get(node.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    };
    for i in 0..25 {
        let mut e = event(
            &format!("lk-{i:02}"),
            &format!("lk-user-{}", i % 5),
            &format!("{}.50", 10 + i),
            50 - i as i64,
            "FR",
        );
        if i % 5 == 0 {
            e["type"] = json!("credit");
        }
        if i == 24 {
            e["amount"] = json!("20000");
        }
        let r = client
            .post(node.url("/v1/transactions"))
            .header("content-type", "application/json")
            .body(e.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // Paging through everything gives every decision once, in a stable order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/decisions?limit=7&cursor={c}"),
            None => "/v1/decisions?limit=7".to_string(),
        };
        let (status, page) = get(&path).await;
        assert_eq!(status, 200, "{page}");
        for d in page["decisions"].as_array().unwrap() {
            seen.push(d["transaction_id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!((seen.len(), sorted.len()), (25, 25));

    let (_, page) = get("/v1/decisions?user_id=lk-user-1&limit=100").await;
    assert_eq!(page["decisions"].as_array().unwrap().len(), 5);
    let (_, page) = get("/v1/decisions?rule=large_amount").await;
    assert_eq!(page["decisions"][0]["transaction_id"], "lk-24");
    let (_, page) = get("/v1/decisions?outcome=review&min_score=0.5").await;
    assert_eq!(page["decisions"].as_array().unwrap().len(), 1);
    // Several outcomes at once: what an analyst's queue is.
    let (_, reviewed) = get("/v1/decisions?outcome=review&limit=1000").await;
    let (_, declined) = get("/v1/decisions?outcome=decline&limit=1000").await;
    let (_, both) = get("/v1/decisions?outcome=review,decline&limit=1000").await;
    let count = |page: &serde_json::Value| page["decisions"].as_array().unwrap().len();
    assert!(count(&reviewed) > 0);
    assert_eq!(count(&both), count(&reviewed) + count(&declined));
    assert!(both["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["outcome"] != "approve"));
    for bad in [
        "cursor=garbage",
        "cursor=2026-01-01.12.zz",
        "limit=0",
        "outcome=maybe",
        "outcome=review,maybe",
        "from=2020-01-01T00:00:00Z",
        "user_id=x%27%20OR%201%3D1",
    ] {
        let (status, body) = get(&format!("/v1/decisions?{bad}")).await;
        if bad.starts_with("user_id") {
            assert_eq!(
                (status, body["decisions"].as_array().map(Vec::len)),
                (200, Some(0)),
                "{bad}"
            );
        } else {
            assert_eq!(status, 400, "{bad}: {body}");
        }
    }

    let (status, profile) = get("/v1/users/lk-user-4/profile").await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["txn_count"], 5);
    assert_eq!(profile["home_country"], "FR");
    assert_eq!(profile["windows"][5]["window"], "30d");
    assert_eq!(profile["windows"][5]["count"], 5);
    assert_eq!(get("/v1/users/nobody/profile").await.0, 404);

    // user-0 has credits of 10.50, 15.50 … 30.50 (i = 0, 5, 10, 15, 20) and no debits.
    let (_, balance) = get("/v1/users/lk-user-0/balance").await;
    assert_eq!(balance["balances"]["EUR"], "102.50");
    let (_, balance) = get("/v1/users/lk-user-1/balance").await;
    assert_eq!(balance["balances"]["EUR"], "-107.50");
    let (_, history) = get("/v1/users/lk-user-1/transactions").await;
    assert_eq!(history.as_array().unwrap().len(), 5);

    let (status, agg) = get("/v1/aggregates?agg=count&group_by=outcome").await;
    assert_eq!(status, 200, "{agg}");
    assert_eq!(agg["groups"]["approve"], 24.0);
    assert_eq!(agg["groups"]["review"], 1.0);
    assert_eq!(agg["cached"], false);
    let (_, again) = get("/v1/aggregates?agg=count&group_by=outcome").await;
    assert_eq!(again["cached"], true);
    let (_, sums) = get("/v1/aggregates?agg=sum&field=amount&group_by=user_id").await;
    assert_eq!(sums["groups"]["lk-user-1"], 107.5);
    let refused = "sentinel_api_requests_refused_total{reason=\"invalid_parameter\"}";
    let metrics = node.metrics(&client).await;
    assert!(metrics.contains(refused), "registered at zero");
    assert_eq!(metric_value(&metrics, refused), 0.0);
    let (status, body) = get("/v1/aggregates?agg=median&group_by=outcome").await;
    assert_eq!((status, &body["error"]["field"]), (400, &json!("agg")));
    let metrics = node.metrics(&client).await;
    assert_eq!(metric_value(&metrics, refused), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_and_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sentinel.toml");
    std::fs::write(
        &config,
        "cors_allowed_origins = [\"https://risk.example.com\"]\n",
    )
    .unwrap();
    let node = NodeProcess::start(dir.path(), &["--config", config.to_str().unwrap()]).await;
    let client = support::admin_client();
    let preflight = client
        .request(reqwest::Method::OPTIONS, node.url("/v1/rules"))
        .header("origin", "https://risk.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://risk.example.com"
    );
    let other = client
        .get(node.url("/v1/rules"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let doc: serde_json::Value = client
        .get(node.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/rules/{id}/rollback"]["post"].is_object());
}

/// SIGKILL while many requests are being decided: every decision the node acknowledged (200)
/// is in the store after a restart, with its decision log intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_decisions_survive_a_sigkill_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), &[]).await;
    let client = support::admin_client();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        let url = node.url("/v1/transactions");
        let acknowledged = std::sync::Arc::clone(&acknowledged);
        senders.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let txn = format!("k-{worker}-{i}");
                let body =
                    event(&txn, &format!("k-user-{}", i % 50), "12.00", 30, "FR").to_string();
                match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => acknowledged.lock().unwrap().push(txn),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the node is gone
                }
            }
        }));
    }
    support::eventually(
        "a few hundred acknowledged decisions",
        std::time::Duration::from_secs(60),
        async || (acknowledged.lock().unwrap().len() >= 300).then_some(()),
    )
    .await;
    node.kill();
    for s in senders {
        s.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let node = NodeProcess::start(dir.path(), &[]).await;
    for txn in &acknowledged {
        assert!(
            node.decision(&client, txn).await.is_some(),
            "acknowledged {txn} was lost"
        );
    }
    let mut node = node;
    assert_eq!(node.terminate(), Some(0));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .arg("verify-log")
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(log["verified"].as_u64().unwrap() >= acknowledged.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_tie_log_lines_to_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start_with_env(
        dir.path(),
        &["--log-format", "json"],
        &[("RUST_LOG", "info,sentinel=debug")],
    )
    .await;
    let client = support::admin_client();

    // The client's request id is kept and echoed; without one the node assigns a UUID.
    let r = client
        .post(node.url("/v1/transactions"))
        .header("x-request-id", "req-from-gateway-42")
        .json(&event("log-txn-1", "log-user", "12.50", 1, "FR"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "req-from-gateway-42");
    let r = client
        .get(node.url("/v1/decisions/no-such-txn"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let assigned = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&assigned).is_ok(), "{assigned}");

    // The decision's log line carries the transaction id, inside the request's span.
    let line = support::eventually(
        "the decision's log line",
        std::time::Duration::from_secs(20),
        async || {
            node.log_text()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|l| l["fields"]["transaction_id"] == "log-txn-1")
        },
    )
    .await;
    assert_eq!(line["fields"]["message"], "decided", "{line}");
    assert_eq!(line["fields"]["outcome"], "approve", "{line}");
    assert_eq!(line["span"]["request_id"], "req-from-gateway-42", "{line}");
    assert_eq!(line["span"]["path"], "/v1/transactions", "{line}");
}

/// An event without `transaction_id` sent with an `Idempotency-Key`: the node is SIGKILLed
/// after the decision is stored but before the key's answer is, and the client's retry with
/// the same key gets the same decision; the store holds one.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_retry_after_a_sigkill_decides_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = support::admin_client();
    let body = json!({"user_id": "idem-user", "amount": "42.00"}).to_string();
    let mut node = NodeProcess::start_with_env(
        dir.path(),
        &[],
        &[("SENTINEL_FAILPOINT", "hang_after_decision")],
    )
    .await;
    let first = tokio::spawn({
        let (client, url, body) = (client.clone(), node.url("/v1/transactions"), body.clone());
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .header("idempotency-key", "retry-me-1")
                .body(body)
                .send()
                .await
        }
    });
    let stored = support::eventually(
        "the first attempt's decision stored",
        std::time::Duration::from_secs(30),
        async || {
            let decisions = node.user_decisions(&client, "idem-user").await;
            (decisions.len() == 1).then(|| decisions[0].clone())
        },
    )
    .await;
    node.kill();
    assert!(
        first.await.unwrap().is_err(),
        "the client never got an answer"
    );

    let node = NodeProcess::start(dir.path(), &[]).await;
    let retry: serde_json::Value = client
        .post(node.url("/v1/transactions"))
        .header("content-type", "application/json")
        .header("idempotency-key", "retry-me-1")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(retry["transaction_id"], stored["transaction_id"], "{retry}");
    assert_eq!(retry["outcome"], stored["outcome"]);
    assert_eq!(retry["duplicate"], true);
    assert_eq!(
        node.user_decisions(&client, "idem-user").await.len(),
        1,
        "the retry decided nothing new"
    );
}

/// A scoring answer goes out before its replay record is stored; a SIGTERM in between
/// (failpoint: the record waits two seconds) stops the node only once the record is stored,
/// so the retry after the restart is the first answer replayed, not a second decision.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_stores_the_scoring_answers_already_sent() {
    let dir = tempfile::tempdir().unwrap();
    let client = support::admin_client();
    let body = json!({"user_id": "stop-user", "amount": "42.00"}).to_string();
    let mut node = NodeProcess::start_with_env(
        dir.path(),
        &[],
        &[("SENTINEL_FAILPOINT", "slow_answer_save")],
    )
    .await;
    let score = |url: String| {
        client
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", "stop-me-1")
            .body(body.clone())
            .send()
    };
    let first = score(node.url("/v1/transactions")).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(node.terminate(), Some(0), "a clean stop after SIGTERM");

    let node = NodeProcess::start(dir.path(), &[]).await;
    let retry = score(node.url("/v1/transactions")).await.unwrap();
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..]),
        "the first answer is replayed"
    );
    let retry: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(retry, first);
    assert_eq!(retry["duplicate"], false);
}

/// A scoring request still in flight at a SIGTERM (failpoint: it waits two seconds before its
/// decision) is decided, answered and stored before the node stops: the scorer outlives the
/// HTTP server's drain.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_a_stop_is_decided_before_the_node_stops() {
    let dir = tempfile::tempdir().unwrap();
    let client = support::admin_client();
    let mut node =
        NodeProcess::start_with_env(dir.path(), &[], &[("SENTINEL_FAILPOINT", "slow_decision")])
            .await;
    let in_flight = tokio::spawn(
        client
            .post(node.url("/v1/transactions"))
            .json(&json!({"transaction_id": "late-1", "user_id": "late-user", "amount": "42.00"}))
            .send(),
    );
    support::eventually(
        "the request waiting before its decision",
        std::time::Duration::from_secs(30),
        async || {
            node.log_text()
                .contains("a scoring request waits before its decision")
                .then_some(())
        },
    )
    .await;
    assert_eq!(node.terminate(), Some(0), "a clean stop after SIGTERM");
    let answer = in_flight.await.unwrap().expect("an answer before the stop");
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["transaction_id"], "late-1", "{answer}");

    let node = NodeProcess::start(dir.path(), &[]).await;
    let stored = node.decision(&client, "late-1").await;
    assert_eq!(
        stored.map(|d| d["outcome"].clone()),
        Some(answer["outcome"].clone()),
        "the answered decision is stored"
    );
}

/// Overload is refused at the edge: with `http_max_scoring_in_flight = 2` and two scoring
/// requests held open (failpoint: they never answer once decided), a third is answered 503
/// with `Retry-After` at once, decides nothing, and is counted; other routes still answer.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_requests_over_the_in_flight_limit_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("limit.toml");
    std::fs::write(&config, "http_max_scoring_in_flight = 2\n").unwrap();
    let client = support::admin_client();
    let node = NodeProcess::start_with_env(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[("SENTINEL_FAILPOINT", "hang_after_decision")],
    )
    .await;
    let held: Vec<_> = ["held-1", "held-2"]
        .into_iter()
        .map(|user| {
            let (client, url) = (client.clone(), node.url("/v1/transactions"));
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"user_id": user, "amount": "5.00"}))
                    .send()
                    .await
            })
        })
        .collect();
    for user in ["held-1", "held-2"] {
        support::eventually(
            "the held requests decided",
            std::time::Duration::from_secs(30),
            async || (node.user_decisions(&client, user).await.len() == 1).then_some(()),
        )
        .await;
    }

    let refused = client
        .post(node.url("/v1/transactions"))
        .json(&json!({"user_id": "third", "amount": "5.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    // Refused for the limit, not answered by the request timeout after waiting.
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("as many HTTP requests as it takes at once"),
        "{body}"
    );
    assert!(node.user_decisions(&client, "third").await.is_empty());
    let metrics = node.metrics(&client).await;
    assert_eq!(
        metric_value(
            &metrics,
            "sentinel_api_requests_refused_total{reason=\"overloaded\"}"
        ),
        1.0
    );
    // Slots come back when their requests end (here: the clients give up). The server learns
    // of a closed connection a moment later, so an early attempt may still be refused: retry
    // (same transaction id, so the event is decided at most once; an attempt that was decided
    // hangs on the failpoint and is given up after a second).
    for request in held {
        request.abort();
    }
    support::eventually(
        "a request decided once the held ones ended",
        std::time::Duration::from_secs(30),
        async || {
            let _ = client
                .post(node.url("/v1/transactions"))
                .timeout(std::time::Duration::from_secs(1))
                .json(&json!({"transaction_id": "after-1", "user_id": "after", "amount": "5.00"}))
                .send()
                .await;
            (node.user_decisions(&client, "after").await.len() == 1).then_some(())
        },
    )
    .await;
}
