//! `sentinel alerts` as a standalone consumer of `transactions_fraud` on a real tansu broker:
//! a scoring node publishes decisions, the alerts process stores them with their alerts and
//! delivers to a real HTTP receiver in this test process, is SIGKILLed and restarted, and
//! every flagged transaction ends with exactly one alert (one delivery id), none lost.

use sentinel_testkit as support;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{
    event, eventually, free_port, metric_value, Broker, NodeProcess, Process, NODE_TOPICS,
};

/// (delivery id, transaction id) of every request the receiver accepted.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn receive(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> &'static str {
    let id = headers
        .get("x-sentinel-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let txn = body["decision"]["transaction_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push((id, txn));
    "ok"
}

fn start_alerts(config: &Path, data: &Path, brokers: &str, http: &str, log: &Path) -> Process {
    Process::spawn(
        "sentinel alerts",
        Command::new(env!("CARGO_BIN_EXE_sentinel"))
            .arg("alerts")
            .args(["--kafka-brokers", brokers, "--http-listen", http])
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "info")
            .env("SENTINEL_AUTH_JWT_SECRET", support::TEST_JWT_SECRET),
        log.to_owned(),
    )
}

/// Transaction id → the distinct delivery ids the receiver accepted for it.
fn deliveries(seen: &Seen) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_txn: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, txn) in seen.lock().unwrap().iter() {
        by_txn.entry(txn.clone()).or_default().insert(id.clone());
    }
    by_txn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_alerts_consumer_delivers_each_flagged_decision_once_across_a_crash() {
    let broker = Broker::start().await;
    broker.create_topics(&NODE_TOPICS, 2).await;
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    std::fs::write(
        &config,
        format!(
            "header_read_timeout_secs = 1\n\
             [alerts]\nthrottle_secs = 0\npoll_interval_ms = 100\n\
             [[alerts.routes]]\nsinks = [\"hook\"]\n\
             [[alerts.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://{receiver}/hook\"\n"
        ),
    )
    .unwrap();
    let node = NodeProcess::start(
        &dir.path().join("node"),
        &["--kafka-brokers", &broker.address],
    )
    .await;
    let alerts_data = dir.path().join("alerts");
    let http = format!("127.0.0.1:{}", free_port());
    let mut alerts = start_alerts(
        &config,
        &alerts_data,
        &broker.address,
        &http,
        &dir.path().join("alerts-1.log"),
    );
    let client = support::admin_client();
    let healthz = format!("http://{http}/healthz");
    eventually(
        "the alerts process to serve",
        Duration::from_secs(60),
        async || {
            alerts.assert_running();
            let r = client.get(&healthz).send().await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;

    let score = async |txn: &str, user: &str, amount: &str| {
        let r = client
            .post(node.url("/v1/transactions"))
            .json(&event(txn, user, amount, 1, "FR"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    score("st-1", "st-u1", "50000").await;
    score("st-2", "st-u2", "50000").await;
    score("st-ok", "st-u3", "12").await;
    eventually(
        "alerts for st-1 and st-2",
        Duration::from_secs(90),
        async || {
            let by_txn = deliveries(&seen);
            (by_txn.contains_key("st-1") && by_txn.contains_key("st-2")).then_some(())
        },
    )
    .await;
    let metrics = client
        .get(format!("http://{http}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric_value(&metrics, "sentinel_alerts_queued_total{sink=\"hook\"}"),
        2.0
    );

    // A crash, a decision published while the alerts process is down, and a restart: the
    // committed-or-not decisions before the crash owe nothing new; the new one is alerted.
    alerts.signal_group("-KILL");
    alerts.wait(Duration::from_secs(30)).await;
    score("st-3", "st-u4", "70000").await;
    let mut alerts = start_alerts(
        &config,
        &alerts_data,
        &broker.address,
        &http,
        &dir.path().join("alerts-2.log"),
    );
    eventually("the alert for st-3", Duration::from_secs(90), async || {
        alerts.assert_running();
        deliveries(&seen).contains_key("st-3").then_some(())
    })
    .await;

    let by_txn = deliveries(&seen);
    assert_eq!(
        by_txn.keys().map(String::as_str).collect::<Vec<_>>(),
        ["st-1", "st-2", "st-3"],
        "one alert per flagged decision, none for the approval"
    );
    for (txn, ids) in &by_txn {
        assert_eq!(ids.len(), 1, "{txn} has exactly one alert: {ids:?}");
        assert!(!ids.iter().next().unwrap().is_empty());
    }
    // The alerts API has the node's listener and guards: a socket that never speaks is
    // closed after header_read_timeout_secs, and a foreign Host is refused.
    {
        use tokio::io::AsyncReadExt;
        let mut silent = tokio::net::TcpStream::connect(&http).await.unwrap();
        let mut buffer = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match silent.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the silent socket stayed open");
        let foreign = client
            .get(&healthz)
            .header("host", "rebound.example")
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), 421);
    }

    // The standalone process serves the alert API over its own outbox.
    let page: Value = client
        .get(format!("http://{http}/v1/alerts?status=delivered"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: BTreeSet<&str> = page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, BTreeSet::from(["st-1", "st-2", "st-3"]));
    alerts.signal_group("-TERM");
    assert!(alerts.wait(Duration::from_secs(30)).await.success());
}
