//! What alert delivery must never do, proven against real HTTP servers in this test process and
//! a real node: reveal a sink's URL (Slack and Discord webhook URLs carry their secret token)
//! in `GET /v1/alerts` or the log, and follow a redirect (which would re-post the signed alert
//! to wherever the receiver points).

use sentinel_testkit as support;

use axum::http::{header, StatusCode};
use axum::routing::{any, post};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{event, eventually, free_port, NodeProcess};

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A node whose alerts for every review or decline go to `sinks` (name, URL), with two quick
/// attempts each so that failures end dead-lettered while the test runs. Alert delivery logs
/// at debug level, so every failed attempt reaches the log.
async fn node_with_sinks(dir: &std::path::Path, sinks: &[(&str, &str)]) -> NodeProcess {
    let names: Vec<String> = sinks
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    let mut config = format!(
        "[alerts]\nmax_attempts = 2\ninitial_backoff_ms = 50\nmax_backoff_ms = 100\n\
         poll_interval_ms = 100\nbreaker_failures = 1000\nthrottle_secs = 0\n\
         [[alerts.routes]]\nsinks = [{}]\n",
        names.join(", ")
    );
    for (name, url) in sinks {
        config.push_str(&format!(
            "[[alerts.sinks]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\nsecret = \"signing-secret\"\n"
        ));
    }
    let path = dir.join("sentinel.toml");
    std::fs::write(&path, config).unwrap();
    NodeProcess::start_with_env(
        &dir.join("data"),
        &["--config", path.to_str().unwrap()],
        &[("RUST_LOG", "info,sentinel_alerts=debug")],
    )
    .await
}

/// Scores one transaction that the seed policy sends to review, so it owes an alert per sink.
async fn flag_one(client: &reqwest::Client, node: &NodeProcess, txn: &str) {
    let r = client
        .post(node.url("/v1/transactions"))
        .json(&event(txn, "u-safety", "50000", 1, "FR"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let decided: Value = r.json().await.unwrap();
    assert_eq!(decided["outcome"], "review", "{decided}");
}

/// The raw body of `GET /v1/alerts?status=failed` once it lists `count` alerts.
async fn dead_lettered(client: &reqwest::Client, node: &NodeProcess, count: usize) -> String {
    eventually(
        "every alert to be dead-lettered",
        Duration::from_secs(60),
        async || {
            let text = client
                .get(node.url("/v1/alerts?status=failed"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let page: Value = serde_json::from_str(&text).ok()?;
            (page["alerts"].as_array()?.len() == count).then_some(text)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_errors_never_reveal_the_sink_url() {
    const REFUSED_TOKEN: &str = "xoxb-refused-9f8e7d6c5b4a";
    const ERRORING_TOKEN: &str = "discord-erroring-1a2b3c4d5e";
    // One receiver answers 500; the other URL points at a port nothing listens on, so the
    // connection is refused and the error comes from the HTTP client itself.
    let erroring = serve(axum::Router::new().route(
        "/api/webhooks/{id}/{token}",
        post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
    ))
    .await;
    let refused = format!(
        "http://127.0.0.1:{}/services/T000/B000/{REFUSED_TOKEN}",
        free_port()
    );
    let erroring = format!("{erroring}/api/webhooks/42/{ERRORING_TOKEN}");
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_sinks(
        dir.path(),
        &[("refused", &refused), ("erroring", &erroring)],
    )
    .await;
    let client = support::admin_client();
    flag_one(&client, &node, "safety-1").await;

    let listed = dead_lettered(&client, &node, 2).await;
    let page: Value = serde_json::from_str(&listed).unwrap();
    for alert in page["alerts"].as_array().unwrap() {
        let error = alert["last_error"].as_str().unwrap();
        match alert["sink"].as_str().unwrap() {
            // The cause is still there for the operator, only the URL is not.
            "refused" => assert!(error.starts_with("request failed: "), "{error}"),
            "erroring" => assert_eq!(error, "HTTP 500 Internal Server Error"),
            other => panic!("unexpected sink {other}"),
        }
        assert_eq!(alert["attempts"], 2, "{alert}");
    }
    let log = node.log_text();
    assert!(log.contains("alert dead-lettered"), "{log}");
    assert!(log.contains("will retry"), "{log}");
    for token in [REFUSED_TOKEN, ERRORING_TOKEN] {
        assert!(
            !listed.contains(token),
            "the API shows a sink URL: {listed}"
        );
        assert!(!log.contains(token), "the log shows a sink URL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirecting_receiver_is_a_failed_delivery_and_its_target_gets_nothing() {
    // Where a hostile or misconfigured receiver redirects to: it must never be reached.
    let target_hits = Arc::new(AtomicUsize::new(0));
    let hits = Arc::clone(&target_hits);
    let target = serve(axum::Router::new().route(
        "/collect",
        any(move || {
            hits.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::OK }
        }),
    ))
    .await;
    let location = format!("{target}/collect");
    let temporary = location.clone();
    let redirector = serve(
        axum::Router::new()
            .route(
                "/temporary",
                post(move || async move {
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(header::LOCATION, temporary)],
                    )
                }),
            )
            .route(
                "/permanent",
                post(move || async move {
                    (
                        StatusCode::PERMANENT_REDIRECT,
                        [(header::LOCATION, location)],
                    )
                }),
            ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_sinks(
        dir.path(),
        &[
            ("temporary", &format!("{redirector}/temporary")),
            ("permanent", &format!("{redirector}/permanent")),
        ],
    )
    .await;
    let client = support::admin_client();
    flag_one(&client, &node, "redirect-1").await;

    let listed = dead_lettered(&client, &node, 2).await;
    let page: Value = serde_json::from_str(&listed).unwrap();
    for alert in page["alerts"].as_array().unwrap() {
        let expected = match alert["sink"].as_str().unwrap() {
            "temporary" => "HTTP 307 Temporary Redirect",
            "permanent" => "HTTP 308 Permanent Redirect",
            other => panic!("unexpected sink {other}"),
        };
        assert_eq!(alert["last_error"], expected, "{alert}");
        assert_eq!(alert["attempts"], 2, "{alert}");
    }
    assert_eq!(target_hits.load(Ordering::SeqCst), 0);
}
