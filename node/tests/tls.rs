//! HTTPS on the API listener end to end: a node started with a self-signed certificate made
//! here answers health and authenticated calls over TLS to a client trusting that certificate,
//! refuses plain HTTP on the same port, and will not start with a certificate that is not PEM.

use sentinel_testkit as support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{eventually, free_port, token, Process, TEST_JWT_SECRET};

/// A `sentinel run` command on `port` serving the given PEM files.
fn node_command(data_dir: &Path, port: u16, cert: &Path, key: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sentinel"));
    command
        .arg("run")
        .args(["--http-listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--tls-cert-file")
        .arg(cert)
        .env("SENTINEL_TLS_KEY_FILE", key)
        .env("RUST_LOG", "info")
        .env("SENTINEL_AUTH_JWT_SECRET", TEST_JWT_SECRET)
        .env_remove("SENTINEL_CONFIG");
    command
}

#[tokio::test]
async fn the_api_speaks_https_with_the_configured_certificate_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.path().join("api.crt");
    let key = dir.path().join("api.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();

    let port = free_port();
    let mut node = Process::spawn(
        "sentinel (TLS)",
        &mut node_command(&dir.path().join("data"), port, &cert, &key),
        dir.path().join("node.log"),
    );
    let trusted = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(trusted)
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .https_only(true)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");

    // The node's log tail is printed by `Process` if this times out.
    eventually(
        "the node to answer over HTTPS",
        Duration::from_secs(60),
        async || {
            node.assert_running();
            let answer = client.get(format!("{base}/readyz")).send().await.ok()?;
            answer.status().is_success().then_some(())
        },
    )
    .await;

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let rules = format!("{base}/v1/rules");
    let anonymous = client.get(&rules).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let admin = client
        .get(&rules)
        .bearer_auth(token("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let body: serde_json::Value = admin.json().await.unwrap();
    assert!(body.is_array() || body.is_object(), "{body}");

    // The same port without TLS: the handshake fails, so no HTTP answer comes back.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // A client that does not trust the self-signed certificate is refused by its own TLS.
    let untrusting = reqwest::Client::builder()
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    assert!(untrusting
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err());
    node.assert_running();
}

#[tokio::test]
async fn a_certificate_file_that_is_not_pem_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("api.crt");
    let key = dir.path().join("api.key");
    std::fs::write(&cert, "this is not a certificate").unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();

    let mut node = Process::spawn(
        "sentinel (bad certificate)",
        &mut node_command(&dir.path().join("data"), free_port(), &cert, &key),
        dir.path().join("node.log"),
    );
    let status = node.wait(Duration::from_secs(60)).await;
    assert!(!status.success());
    let log = node.log_text();
    assert!(log.contains("tls_cert_file"), "{log}");
}
