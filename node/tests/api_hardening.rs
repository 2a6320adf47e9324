//! The API against an attacker, through a real node process: cross-site requests and DNS
//! rebinding against a node with authentication disabled.

mod support;

use support::{metric_value, NodeProcess};

/// A node started with `[auth] mode = "disabled"` and `extra` lines in its config file.
async fn open_node(dir: &std::path::Path, extra: &str) -> NodeProcess {
    let config = dir.join("open.toml");
    std::fs::write(&config, format!("{extra}\n[auth]\nmode = \"disabled\"\n")).unwrap();
    NodeProcess::start(&dir.join("data"), &["--config", config.to_str().unwrap()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_post_and_a_rebound_host_are_refused_by_an_open_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_node(dir.path(), "").await;
    let client = reqwest::Client::new();
    let rule = r#"{"name": "csrf", "expression": "amount > 0", "action": "decline"}"#;

    // What a hostile page's `fetch(…, {method: "POST", mode: "no-cors", body})` sends.
    let r = client
        .post(node.url("/v1/rules"))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", "https://evil.example")
        .body(rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "Content-Type");

    // A DNS-rebinding page: its own name, resolved to 127.0.0.1, in `Host`.
    let port = node.http.rsplit_once(':').unwrap().1;
    let r = client
        .get(node.url("/v1/rules"))
        .header("host", format!("rebound.evil.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "Host");

    let rules: serde_json::Value = client
        .get(node.url("/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"csrf"), "{names:?}");
    let metrics = node.metrics(&client).await;
    for reason in ["content_type", "host"] {
        let series = format!("sentinel_api_requests_refused_total{{reason=\"{reason}\"}}");
        assert_eq!(metric_value(&metrics, &series), 1.0, "{series}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_name_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_node(
        dir.path(),
        "http_allowed_hosts = [\"sentinel.bank.example\"]",
    )
    .await;
    let r = reqwest::Client::new()
        .get(node.url("/v1/rules"))
        .header("host", "sentinel.bank.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_guessing_keys_gets_429_and_the_counter_moves() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("guess.toml");
    std::fs::write(
        &config,
        "[auth.failed_auth]\nmax_failures = 2\nwindow_secs = 3600\n",
    )
    .unwrap();
    let node = NodeProcess::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let client = reqwest::Client::new();
    let guess = |n: u32| {
        client
            .get(node.url("/v1/decisions"))
            .header("x-api-key", format!("sk_guess_{n}"))
            .send()
    };
    for n in 0..2 {
        assert_eq!(guess(n).await.unwrap().status(), 401);
    }
    let r = guess(2).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let metrics = node.metrics(&client).await;
    assert_eq!(
        metric_value(&metrics, "sentinel_api_auth_throttled_total"),
        1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "sentinel_api_auth_failures_total{reason=\"invalid_key\"}"
        ),
        2.0
    );
}

/// Starts a node with `config`, adds a shadow rule that every event hits, scores one event and
/// returns the rule's id and what an anonymous scrape of `/metrics` shows.
async fn shadow_hit_and_scrape(dir: &std::path::Path, config: &str) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("node.toml");
    std::fs::write(&file, config).unwrap();
    let node = NodeProcess::start(&dir.join("data"), &["--config", file.to_str().unwrap()]).await;
    let admin = support::admin_client();
    let rule: serde_json::Value = admin
        .post(node.url("/v1/rules"))
        .json(
            &serde_json::json!({"name": "shadow_mule_pattern", "expression": "amount > 0",
            "action": "decline", "mode": "shadow"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = rule["id"].as_str().unwrap().to_owned();
    let r = admin
        .post(node.url("/v1/transactions"))
        .json(&support::event("mule-1", "mule-user", "10.00", 1, "FR"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let scrape = node.metrics(&reqwest::Client::new()).await;
    (id, scrape)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_metrics_label_rule_hits_with_ids_unless_names_are_configured() {
    let dir = tempfile::tempdir().unwrap();
    let (id, scrape) = shadow_hit_and_scrape(&dir.path().join("default"), "").await;
    assert!(!scrape.contains("shadow_mule_pattern"), "{scrape}");
    let series = format!("sentinel_rule_hits_total{{rule=\"{id}\",mode=\"shadow\"}}");
    assert_eq!(metric_value(&scrape, &series), 1.0, "{scrape}");

    let (_, scrape) = shadow_hit_and_scrape(
        &dir.path().join("named"),
        "[auth]\nmetrics_rule_names = true\n",
    )
    .await;
    let series = "sentinel_rule_hits_total{rule=\"shadow_mule_pattern\",mode=\"shadow\"}";
    assert_eq!(metric_value(&scrape, series), 1.0, "{scrape}");
}
