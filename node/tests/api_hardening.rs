//! The API against an attacker, through a real node process: cross-site requests and DNS
//! rebinding against a node with authentication disabled.

use sentinel_testkit as support;

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

/// Reads until the server closes the connection (EOF or a reset); `false` if it never does
/// while the test waits (the test's own limit, not a property under test).
async fn closed_by_server(socket: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_http2_sockets_are_disconnected() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quick.toml");
    std::fs::write(
        &config,
        "header_read_timeout_secs = 1\nhttp2_keep_alive_secs = 1\n",
    )
    .unwrap();
    let node = NodeProcess::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let connect = || tokio::net::TcpStream::connect(&node.http);
    // Nothing at all.
    let mut silent = connect().await.unwrap();
    // The first three bytes of the HTTP/2 preface.
    let mut pri = connect().await.unwrap();
    pri.write_all(b"PRI").await.unwrap();
    // The whole preface and a SETTINGS frame, then silence: the keep-alive ping goes unanswered.
    let mut h2 = connect().await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    for (name, socket) in [("silent", &mut silent), ("PRI", &mut pri), ("h2", &mut h2)] {
        assert!(
            closed_by_server(socket).await,
            "the {name} socket stayed open"
        );
    }
    // Well-behaved clients are unaffected.
    let status = reqwest::get(node.url("/healthz")).await.unwrap().status();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once_and_counted() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cap.toml");
    std::fs::write(
        &config,
        "http_max_connections = 2\nheader_read_timeout_secs = 60\n",
    )
    .unwrap();
    let node = NodeProcess::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    // A kept-alive connection that has been answered once: it holds a slot.
    let served = async || {
        let mut socket = tokio::net::TcpStream::connect(&node.http).await.ok()?;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", node.http);
        socket.write_all(request.as_bytes()).await.ok()?;
        let mut answer = [0u8; 12];
        socket.read_exact(&mut answer).await.ok()?;
        (&answer == b"HTTP/1.1 200").then_some(socket)
    };
    let wait = std::time::Duration::from_secs(30);
    // The start-up probe's connection may still hold a slot for a moment.
    let _first = support::eventually("a first slot", wait, served).await;
    let mut second = support::eventually("a second slot", wait, served).await;
    let mut third = tokio::net::TcpStream::connect(&node.http).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", node.http);
    let _ = third.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = third.read_to_end(&mut answer).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));

    // A freed slot is taken again, and the refusal was counted.
    second.shutdown().await.unwrap();
    drop(second);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let metrics = support::eventually("a freed slot", wait, async || {
        let r = client.get(node.url("/metrics")).send().await.ok()?;
        r.text().await.ok()
    })
    .await;
    assert!(metric_value(&metrics, "sentinel_http_connections_refused_total") >= 1.0);
    assert_eq!(
        metric_value(&metrics, "sentinel_http_connections_open"),
        2.0
    );
}
