//! Security end to end against real node processes: refusing to run unprotected, tokens and
//! keys over HTTP, and no secret in the logs or in any answer.

use sentinel_testkit as support;

use std::process::Command;
use std::time::Duration;
use support::{
    client_with, event, eventually, free_port, token, NodeProcess, TEST_INGEST_KEY, TEST_JWT_SECRET,
};

/// `sentinel token` with another secret: a well-formed token with a forged signature.
fn forged_token() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["token", "--role", "admin", "--subject", "mallory"])
        .env(
            "SENTINEL_AUTH_JWT_SECRET",
            "not-the-node-secret-0123456789abcdef",
        )
        .env_remove("SENTINEL_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_to_start_unprotected_unless_told_and_then_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .arg("run")
        .args(["--http-listen", &http])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("SENTINEL_AUTH_JWT_SECRET")
        .env_remove("SENTINEL_AUTH_API_KEYS")
        .env_remove("SENTINEL_AUTH_MODE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no authentication configured"), "{stderr}");

    // `sentinel token` without a secret explains where the secret goes.
    let out = Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["token", "--role", "admin"])
        .env_remove("SENTINEL_AUTH_JWT_SECRET")
        .env_remove("SENTINEL_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SENTINEL_AUTH_JWT_SECRET"));

    // Explicitly disabled: it runs, open to anyone, and the log says so loudly.
    let config = dir.path().join("open.toml");
    std::fs::write(&config, "[auth]\nmode = \"disabled\"\n").unwrap();
    let node = NodeProcess::start(
        &dir.path().join("open"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let status = reqwest::get(node.url("/v1/decisions"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert!(node.log_text().contains("AUTHENTICATION IS DISABLED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_keys_work_over_http_and_no_secret_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::start(dir.path(), &[]).await;
    let anonymous = reqwest::Client::new();
    let admin_token = token("admin");
    let admin = client_with(&format!("Bearer {admin_token}"));
    let forged = forged_token();
    let wrong_key = "sk_0123456789abcdef_wrongwrongwrongwrongwrong";
    let mut secrets = vec![
        TEST_JWT_SECRET.to_owned(),
        TEST_INGEST_KEY.to_owned(),
        admin_token.clone(),
        forged.clone(),
        wrong_key.to_owned(),
    ];

    // Refused: nothing, a forged token, an unknown key; every answer is free of the credential.
    let body = event("sec-1", "sec-user", "10.00", 1, "FR").to_string();
    let attempts = [
        anonymous.post(node.url("/v1/transactions")),
        anonymous
            .post(node.url("/v1/transactions"))
            .bearer_auth(&forged),
        anonymous
            .post(node.url("/v1/transactions"))
            .header("x-api-key", wrong_key),
    ];
    for attempt in attempts {
        let r = attempt
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
        let text = r.text().await.unwrap();
        assert!(secrets.iter().all(|s| !text.contains(s.as_str())), "{text}");
    }

    // The bootstrap ingest key submits, but may not read.
    let r = anonymous
        .post(node.url("/v1/transactions"))
        .header("x-api-key", TEST_INGEST_KEY)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = anonymous
        .get(node.url("/v1/decisions/sec-1"))
        .header("x-api-key", TEST_INGEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A key created over HTTP works at once and stops at once when revoked.
    let created: serde_json::Value = admin
        .post(node.url("/v1/keys"))
        .json(&serde_json::json!({"name": "checkout", "role": "ingest"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    secrets.push(key.clone());
    let send = async |txn: &str| {
        anonymous
            .post(node.url("/v1/transactions"))
            .header("authorization", format!("ApiKey {key}"))
            .header("content-type", "application/json")
            .body(event(txn, "sec-user", "11.00", 1, "FR").to_string())
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(send("sec-2").await, 200);
    let id = created["id"].as_str().unwrap();
    let r = admin
        .delete(node.url(&format!("/v1/keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(send("sec-3").await, 401);

    // The stored decision is readable with the token; the viewer reads it too.
    let decision = eventually(
        "the decision to be readable",
        Duration::from_secs(10),
        async || node.decision(&admin, "sec-2").await,
    )
    .await;
    assert_eq!(decision["transaction_id"], "sec-2");
    let viewer = client_with(&format!("Bearer {}", token("viewer")));
    assert!(node.decision(&viewer, "sec-1").await.is_some());

    // Drain so every log line is written, then search the whole log.
    assert_eq!(node.terminate(), Some(0));
    let log = node.log_text();
    assert!(log.contains("stopped cleanly"), "{log}");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_requests_with_one_idempotency_key_make_one_decision() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(dir.path(), &[]).await;
    let ingest = reqwest::Client::new();
    // No transaction id: without the key, every request would be a new decision.
    let body = serde_json::json!({"user_id": "idem-user", "amount": "42.00"}).to_string();
    let requests = (0..32).map(|_| {
        ingest
            .post(node.url("/v1/transactions"))
            .header("x-api-key", TEST_INGEST_KEY)
            .header("idempotency-key", "order-7781")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    });
    let answers = futures::future::join_all(requests).await;
    let mut ids = std::collections::BTreeSet::new();
    let mut replayed = 0;
    for answer in answers {
        let r = answer.unwrap();
        assert_eq!(r.status(), 200);
        replayed += usize::from(r.headers().contains_key("idempotent-replayed"));
        let v: serde_json::Value = r.json().await.unwrap();
        ids.insert(v["transaction_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(replayed, 31);
    let admin = client_with(&format!("Bearer {}", token("admin")));
    assert_eq!(node.user_decisions(&admin, "idem-user").await.len(), 1);

    // The same key with another body is refused, naming the header.
    let r = ingest
        .post(node.url("/v1/transactions"))
        .header("x-api-key", TEST_INGEST_KEY)
        .header("idempotency-key", "order-7781")
        .header("content-type", "application/json")
        .body(serde_json::json!({"user_id": "idem-user", "amount": "43.00"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["field"], "Idempotency-Key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("slow.toml");
    std::fs::write(&config, "header_read_timeout_secs = 1\n").unwrap();
    let node = NodeProcess::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let mut socket = tokio::net::TcpStream::connect(&node.http).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The server closes the connection (EOF or a reset) well before this test gives up.
    let mut buffer = [0u8; 512];
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "the half-sent request was never cut off");
    // Well-behaved clients are unaffected.
    let status = reqwest::get(node.url("/healthz")).await.unwrap().status();
    assert_eq!(status, 200);
}

/// The addresses (hex, as `/proc/net/tcp*` writes them) of the sockets listening on `port`.
#[cfg(target_os = "linux")]
fn listening_addresses(port: u16) -> Vec<String> {
    let port = format!("{port:04X}");
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // fields[1] is `address:port`, fields[3] the state (0A: LISTEN).
            if let (Some(local), Some(&"0A")) = (fields.get(1), fields.get(3)) {
                if let Some((address, p)) = local.rsplit_once(':') {
                    if p == port {
                        found.push(address.to_owned());
                    }
                }
            }
        }
    }
    found
}

/// The cluster port is the store host's door: by default it opens on loopback only, and a node
/// told to open it wider with a guessable cookie refuses to start and says why.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_port_is_loopback_by_default_and_a_weak_cookie_never_listens_wider() {
    let dir = tempfile::tempdir().unwrap();
    let cluster_port = free_port();
    let node = NodeProcess::start(
        &dir.path().join("default"),
        &["--cluster-port", &cluster_port.to_string()],
    )
    .await;
    let listening = listening_addresses(cluster_port);
    // 127.0.0.1 as /proc/net/tcp prints it (little-endian hex).
    assert_eq!(listening, ["0100007F"], "cluster listener: {listening:?}");
    drop(node);

    for (cookie, reason) in [
        (None, "the default `sentinel`"),
        (Some(""), "empty"),
        (Some("change-me"), "shorter than 16"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sentinel"));
        command
            .arg("run")
            .args(["--http-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--cluster-listen", &format!("0.0.0.0:{}", free_port())])
            .arg("--data-dir")
            .arg(dir.path().join("wide"))
            .env("SENTINEL_AUTH_JWT_SECRET", TEST_JWT_SECRET)
            .env_remove("SENTINEL_CLUSTER_COOKIE")
            .env_remove("SENTINEL_CONFIG");
        if let Some(cookie) = cookie {
            command.arg(format!("--cluster-cookie={cookie}"));
        }
        let out = command.output().unwrap();
        assert!(!out.status.success(), "started with cookie {cookie:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("refusing to listen for cluster peers on 0.0.0.0")
                && stderr.contains(reason),
            "{stderr}"
        );
    }
}

/// A node reachable beyond loopback with the defaults says, at start-up, which settings of
/// the production checklist are still unsafe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_listening_beyond_loopback_names_each_unsafe_setting() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("wide.toml");
    std::fs::write(
        &config,
        "[cluster]\nbind = \"0.0.0.0\"\ncookie = \"a-long-enough-cluster-cookie\"\n",
    )
    .unwrap();
    let mut node = support::Process::spawn(
        "sentinel (exposed)",
        Command::new(env!("CARGO_BIN_EXE_sentinel"))
            .arg("run")
            .args(["--http-listen", &format!("0.0.0.0:{port}")])
            .args(["--config", config.to_str().unwrap()])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("SENTINEL_AUTH_JWT_SECRET", TEST_JWT_SECRET)
            .env("RUST_LOG", "info")
            .env_remove("SENTINEL_CONFIG"),
        dir.path().join("node.log"),
    );
    let ready = format!("http://127.0.0.1:{port}/readyz");
    eventually(
        "the exposed node to be ready",
        Duration::from_secs(60),
        async || {
            node.assert_running();
            let r = reqwest::get(&ready).await.ok()?;
            r.status().is_success().then_some(())
        },
    )
    .await;
    let log = node.log_text();
    for setting in [
        "tls_cert_file",
        "[auth] metrics_require_token",
        "[cluster] tls_cert_file",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("UNSAFE SETTING") && l.contains(setting)),
            "no warning for {setting}: {log}"
        );
    }
}
