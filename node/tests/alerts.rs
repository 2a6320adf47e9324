//! Alerts end to end against a real HTTP receiver inside this test process: the receiver
//! answers 500s, then hangs past the node's timeout, then recovers, while the node is killed
//! and restarted in between. Every alert that should exist is delivered (at least once, and
//! exactly once after deduplicating on the delivery id), signatures verify, the Slack and
//! Discord bodies have their documented shapes, and a permanently failing sink ends
//! dead-lettered and recovers through the retry endpoint.

use sentinel_testkit as support;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::phase;
use support::{event, eventually, metric_value, NodeProcess};

const SECRET: &str = "test-signing-secret";
const BASE_URL: &str = "https://sentinel.example.test";

/// How the main sinks answer.
const FAIL: u8 = 0;
const HANG: u8 = 1;
const OK: u8 = 2;

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Seen {
    sink: String,
    delivery_id: String,
    timestamp: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
    answered: u16,
}

#[derive(Default)]
struct Receiver {
    mode: AtomicU8,
    dead_sink_recovered: AtomicBool,
    seen: Mutex<Vec<Seen>>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(sink): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mode = receiver.mode.load(Ordering::SeqCst);
    let answered = if sink == "dead" {
        if receiver.dead_sink_recovered.load(Ordering::SeqCst) {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    } else {
        match mode {
            FAIL => StatusCode::INTERNAL_SERVER_ERROR,
            HANG => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::OK,
        }
    };
    receiver.seen.lock().unwrap().push(Seen {
        sink: sink.clone(),
        delivery_id: header("x-sentinel-delivery").unwrap_or_default(),
        timestamp: header("x-sentinel-timestamp"),
        signature: header("x-sentinel-signature"),
        body: body.to_vec(),
        answered: answered.as_u16(),
    });
    if sink != "dead" && mode == HANG {
        // Far longer than the node's timeout: the node must give up and retry later.
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    answered
}

/// Starts the receiver on a free port; returns its base URL.
async fn start_receiver(receiver: Arc<Receiver>) -> String {
    let app = axum::Router::new()
        .route("/{sink}", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn node_config(receiver_url: &str) -> String {
    format!(
        r#"
[alerts]
public_base_url = "{BASE_URL}"
max_attempts = 1000
initial_backoff_ms = 50
max_backoff_ms = 400
timeout_ms = 1000
poll_interval_ms = 100
breaker_failures = 3
breaker_cooldown_ms = 300
throttle_secs = 600

[[alerts.routes]]
sinks = ["hook", "slack", "discord"]
outcomes = ["review", "decline"]

[[alerts.routes]]
sinks = ["dead"]
rules = ["large_amount"]

[[alerts.sinks]]
name = "hook"
kind = "webhook"
url = "{receiver_url}/hook"
secret = "{SECRET}"

[[alerts.sinks]]
name = "slack"
kind = "slack"
url = "{receiver_url}/slack"

[[alerts.sinks]]
name = "discord"
kind = "discord"
url = "{receiver_url}/discord"

[[alerts.sinks]]
name = "dead"
kind = "webhook"
url = "{receiver_url}/dead"
max_attempts = 3
"#
    )
}

async fn score(client: &reqwest::Client, node: &NodeProcess, body: Value) -> Value {
    let r = client
        .post(node.url("/v1/transactions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Every alert with `status`, through the paged API (small pages, to exercise the cursor).
async fn alerts(client: &reqwest::Client, node: &NodeProcess, status: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let mut url = node.url(&format!("/v1/alerts?status={status}&limit=2"));
        if !after.is_empty() {
            url.push_str(&format!("&after={after}"));
        }
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        all.extend(page["alerts"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => return all,
        }
    }
}

fn hmac_hex(timestamp: &str, body: &[u8]) -> String {
    let mac = sentinel_alerts::signature::hmac_sha256(
        SECRET.as_bytes(),
        &[timestamp.as_bytes(), b".", body],
    );
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// One receiver and one data directory, walked through named phases: each phase starts from
/// the state the previous one left (the outbox, what the receiver saw).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_survive_failing_hanging_receivers_and_restarts() {
    let receiver = Arc::new(Receiver::default());
    let receiver_url = start_receiver(Arc::clone(&receiver)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sentinel.toml");
    std::fs::write(&config, node_config(&receiver_url)).unwrap();
    let config_arg = ["--config", config.to_str().unwrap()];
    let data = dir.path().join("data");
    let client = support::admin_client();

    // Two flagged transactions of different users, one repeat of the first user's rule
    // (throttled) and an approval (no alert).
    let node = phase(
        "while the receiver answers 500: flagged transactions queue alerts, a repeat is throttled",
        async {
            let node = NodeProcess::start(&data, &config_arg).await;
            for (txn, user, amount) in [
                ("al-1", "al-u1", "50000"),
                ("al-2", "al-u2", "50000"),
                ("al-3", "al-u1", "60000"),
                ("al-ok", "al-u4", "12"),
            ] {
                let decided = score(&client, &node, event(txn, user, amount, 1, "FR")).await;
                let expected = if amount == "12" { "approve" } else { "review" };
                assert_eq!(decided["outcome"], expected, "{decided}");
            }
            let metrics = node.metrics(&client).await;
            for sink in ["hook", "slack", "discord", "dead"] {
                assert_eq!(
                    metric_value(
                        &metrics,
                        &format!("sentinel_alerts_throttled_total{{sink=\"{sink}\"}}")
                    ),
                    1.0,
                    "the repeat of al-u1's rule is throttled and counted for {sink}"
                );
                assert_eq!(
                    metric_value(
                        &metrics,
                        &format!("sentinel_alerts_queued_total{{sink=\"{sink}\"}}")
                    ),
                    2.0
                );
            }
            node
        },
    )
    .await;

    let mut node = phase(
        "a redelivery queues nothing, and attempts fail with HTTP 500",
        async {
            let again = score(&client, &node, event("al-2", "al-u2", "50000", 1, "FR")).await;
            assert_eq!(again["duplicate"], true);
            let metrics = node.metrics(&client).await;
            assert_eq!(
                metric_value(&metrics, "sentinel_alerts_queued_total{sink=\"hook\"}"),
                2.0
            );
            eventually(
                "failed attempts to be recorded",
                Duration::from_secs(60),
                async || {
                    let pending = alerts(&client, &node, "pending").await;
                    let retried = pending.iter().filter(|a| a["sink"] != "dead").all(|a| {
                        a["attempts"].as_u64() >= Some(1)
                            && a["last_error"] == "HTTP 500 Internal Server Error"
                    });
                    (pending.len() >= 6 && retried).then_some(())
                },
            )
            .await;
            assert!(receiver.seen().iter().all(|s| s.answered == 500));
            node
        },
    )
    .await;

    phase(
        "after a crash, a new node resumes the outbox against a hanging receiver",
        async {
            // Crash without draining; the receiver starts hanging.
            node.kill();
            receiver.mode.store(HANG, Ordering::SeqCst);
            let mut node = NodeProcess::start(&data, &config_arg).await;
            let decided = score(&client, &node, event("al-4", "al-u3", "70000", 1, "FR")).await;
            assert_eq!(decided["outcome"], "review");
            eventually(
                "every pending alert to have timed out against the hanging receiver",
                Duration::from_secs(90),
                async || {
                    let pending = alerts(&client, &node, "pending").await;
                    let main: Vec<_> = pending.iter().filter(|a| a["sink"] != "dead").collect();
                    (main.len() == 9 && main.iter().all(|a| a["last_error"] == "timed out"))
                        .then_some(())
                },
            )
            .await;
            assert_eq!(node.terminate(), Some(0), "a clean stop after SIGTERM");
        },
    )
    .await;

    // Recovery: the main sinks answer 200 from now on.
    receiver.mode.store(OK, Ordering::SeqCst);
    let (node, delivered, failed) = phase(
        "once the receiver recovers, every alert is delivered or dead-lettered",
        async {
            let node = NodeProcess::start(&data, &config_arg).await;
            let (delivered, failed) = eventually(
                "every alert to be delivered or dead-lettered",
                Duration::from_secs(120),
                async || {
                    let delivered = alerts(&client, &node, "delivered").await;
                    let failed = alerts(&client, &node, "failed").await;
                    (delivered.len() == 9 && failed.len() == 3).then_some((delivered, failed))
                },
            )
            .await;
            assert!(alerts(&client, &node, "pending").await.is_empty());
            (node, delivered, failed)
        },
    )
    .await;

    // Three transactions × three main sinks delivered, the always-failing sink dead-lettered
    // after its three attempts; none for al-3 or al-ok.
    phase("exactly the alerts owed exist", async {
        let by_sink_txn: BTreeSet<(String, String)> = delivered
            .iter()
            .map(|a| {
                (
                    a["sink"].as_str().unwrap().to_owned(),
                    a["transaction_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut expected = BTreeSet::new();
        for sink in ["discord", "hook", "slack"] {
            for txn in ["al-1", "al-2", "al-4"] {
                expected.insert((sink.to_owned(), txn.to_owned()));
            }
        }
        assert_eq!(by_sink_txn, expected);
        let failed_txns: BTreeSet<&str> = failed
            .iter()
            .map(|a| a["transaction_id"].as_str().unwrap())
            .collect();
        assert_eq!(failed_txns, BTreeSet::from(["al-1", "al-2", "al-4"]));
        for alert in &failed {
            assert_eq!(alert["sink"], "dead");
            assert_eq!(alert["attempts"], 3);
            assert_eq!(alert["last_error"], "HTTP 500 Internal Server Error");
        }
    })
    .await;

    let seen = receiver.seen();
    phase(
        "each delivered alert was refused or hung, then accepted exactly once per delivery id",
        async {
            // The receiver saw every delivered alert's id at least once, and deduplicating the
            // accepted requests on the delivery id leaves exactly one per alert.
            let mut accepted: BTreeMap<String, Vec<&Seen>> = BTreeMap::new();
            for s in seen.iter().filter(|s| s.answered == 200) {
                accepted.entry(s.delivery_id.clone()).or_default().push(s);
            }
            let delivered_ids: BTreeSet<String> = delivered
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(
                accepted.keys().cloned().collect::<BTreeSet<_>>(),
                delivered_ids
            );
            for alert in &delivered {
                let id = alert["id"].as_str().unwrap();
                let failures = seen
                    .iter()
                    .filter(|s| s.delivery_id == id && s.answered != 200)
                    .count();
                assert!(
                    failures >= 1,
                    "{id} was first refused or hung, then retried"
                );
            }
            assert!(
                seen.iter().any(|s| s.answered == 408),
                "the hang phase was exercised"
            );
        },
    )
    .await;

    phase(
        "payloads: signed webhook JSON, Slack Block Kit, Discord embeds",
        async {
            for s in seen.iter() {
                check_payload(s, &delivered, &failed);
            }
        },
    )
    .await;

    // The dead-lettered alerts come back through the retry endpoint once the sink recovers.
    receiver.dead_sink_recovered.store(true, Ordering::SeqCst);
    let dead_id = failed[0]["id"].as_str().unwrap().to_owned();
    let retry = |id: String| {
        let client = client.clone();
        let url = node.url(&format!("/v1/alerts/{id}/retry"));
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap()
        }
    };
    phase(
        "a dead-lettered alert is delivered after a retry through the API",
        async {
            let r = retry(dead_id.clone()).await;
            assert_eq!(r.status(), 200);
            let pending: Value = r.json().await.unwrap();
            assert_eq!(pending["status"], "pending");
            assert_eq!(pending["attempts"], 0);
            let delivered_again = eventually(
                "the retried alert to be delivered",
                Duration::from_secs(60),
                async || {
                    alerts(&client, &node, "delivered")
                        .await
                        .into_iter()
                        .find(|a| a["id"] == dead_id.as_str())
                },
            )
            .await;
            assert_eq!(delivered_again["attempts"], 1);
            assert!(receiver
                .seen()
                .iter()
                .any(|s| s.delivery_id == dead_id && s.answered == 200));
            assert_eq!(alerts(&client, &node, "failed").await.len(), 2);
            let metrics = node.metrics(&client).await;
            assert!(
                metric_value(&metrics, "sentinel_alerts_delivered_total{sink=\"dead\"}") >= 1.0
            );
            assert!(metric_value(&metrics, "sentinel_alerts_retried_total{sink=\"hook\"}") >= 1.0);
        },
    )
    .await;

    phase(
        "retrying what is not failed, or does not exist, is refused precisely",
        async {
            let r = retry(dead_id.clone()).await;
            assert_eq!(r.status(), 409);
            let r = retry("no-such-alert".into()).await;
            assert_eq!(r.status(), 404);
            let r = client
                .get(node.url("/v1/alerts?status=lost"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400);
            let error: Value = r.json().await.unwrap();
            assert_eq!(error["error"]["field"], "status");
        },
    )
    .await;
}

/// Checks one request the receiver saw against its sink's documented shape: a signed webhook
/// JSON, Slack Block Kit, Discord embeds, or an unsigned webhook for the secretless sink.
fn check_payload(s: &Seen, delivered: &[Value], failed: &[Value]) {
    let body: Value = serde_json::from_slice(&s.body).unwrap();
    let alert = delivered
        .iter()
        .chain(failed)
        .find(|a| a["id"] == s.delivery_id.as_str())
        .unwrap_or_else(|| panic!("a request for an unknown alert {}", s.delivery_id));
    let txn = alert["transaction_id"].as_str().unwrap();
    let link = format!("{BASE_URL}/v1/decisions/{txn}");
    match s.sink.as_str() {
        "hook" => {
            let timestamp = s.timestamp.as_deref().unwrap();
            let signature = s.signature.as_deref().unwrap();
            assert_eq!(signature, format!("v1={}", hmac_hex(timestamp, &s.body)));
            assert_eq!(body["delivery_id"], s.delivery_id.as_str());
            assert_eq!(body["link"], link.as_str());
            assert_eq!(body["decision"]["transaction_id"], txn);
            let reasons = body["decision"]["reasons"].as_array().unwrap();
            assert!(reasons.iter().any(|r| r["rule"] == "large_amount"));
        }
        "dead" => assert!(s.signature.is_none(), "no secret, no signature"),
        "slack" => {
            assert!(body["text"].as_str().unwrap().contains("Review needed"));
            let blocks = body["blocks"].as_array().unwrap();
            assert_eq!(blocks[0]["type"], "header");
            assert_eq!(blocks[0]["text"]["type"], "plain_text");
            assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
            assert_eq!(blocks[1]["type"], "section");
            let fields = blocks[1]["fields"].as_array().unwrap();
            assert!(!fields.is_empty() && fields.len() <= 10);
            assert!(fields.iter().all(|f| f["type"] == "mrkdwn"));
            assert_eq!(blocks[2]["text"]["type"], "mrkdwn");
            assert!(blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("large_amount"));
            assert_eq!(blocks[3]["type"], "actions");
            let button = &blocks[3]["elements"][0];
            assert_eq!(button["type"], "button");
            assert_eq!(button["text"]["type"], "plain_text");
            assert_eq!(button["url"], link.as_str());
        }
        "discord" => {
            assert!(body["content"].as_str().unwrap().chars().count() <= 2000);
            assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
            let embeds = body["embeds"].as_array().unwrap();
            assert_eq!(embeds.len(), 1);
            let embed = &embeds[0];
            assert_eq!(embed["url"], link.as_str());
            assert!(embed["title"].as_str().unwrap().contains(txn));
            assert!(embed["description"]
                .as_str()
                .unwrap()
                .contains("large_amount"));
            assert!(embed["color"].as_u64().is_some_and(|c| c <= 0xFF_FF_FF));
            chrono::DateTime::parse_from_rfc3339(embed["timestamp"].as_str().unwrap()).unwrap();
            let fields = embed["fields"].as_array().unwrap();
            assert!(fields.len() <= 25);
            for field in fields {
                assert!(field["name"].is_string() && field["value"].is_string());
                assert!(field["inline"].is_boolean());
            }
        }
        other => panic!("request to unexpected path /{other}"),
    }
}
