//! Producers keep their own payloads: the seed documents' payloads, byte for byte, decided over
//! HTTP and through a real Kafka-API broker with the shipped mapping files; unknown fields
//! refused by name or kept in `metadata` for rules; `sentinel config check` on good and bad
//! mappings.

use sentinel_testkit as support;

use std::path::PathBuf;
use std::time::Duration;
use support::{
    collect, eventually, fired_rules, metric_value, post_text, Broker, NodeProcess, NODE_TOPICS,
};

/// Seed document 004's curl scenario payload, byte for byte.
const SEED_004: &str = r#"{"user_id": "user-ring-1", "card_id": "card-ring-1", "device_id": "device-shared-123", "amount": 150.00, "merchant": "Online Store"}"#;

/// Seed document 003's transactions carry `account_id` (the user), `transaction_type`,
/// `ip_address` and a text `location` ("New York, US"). We do not have that document, so this
/// payload is representative: exactly those field names, plus amount, currency and timestamp.
fn seed_003(txn: &str, account: &str, kind: &str) -> String {
    let at = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    format!(
        r#"{{"transaction_id": "{txn}", "account_id": "{account}", "amount": 2500.00, "currency": "USD", "timestamp": "{at}", "transaction_type": "{kind}", "ip_address": "198.51.100.7", "location": "New York, US"}}"#
    )
}

fn shipped(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(file)
        .display()
        .to_string()
}

/// Creates an active rule through the API; returns once it is in force.
async fn add_rule(node: &NodeProcess, client: &reqwest::Client, name: &str, expression: &str) {
    let rule = serde_json::json!({"name": name, "expression": expression, "action": "review"});
    let (status, body) = post_text(client, node.url("/v1/rules"), rule.to_string()).await;
    assert_eq!(status, 201, "{body}");
}

async fn node_with(dir: &std::path::Path, extra: &[&str]) -> NodeProcess {
    NodeProcess::start(dir, extra).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_payloads_are_decided_over_http_with_the_shipped_mappings() {
    let client = support::admin_client();

    let dir = tempfile::tempdir().unwrap();
    let mapping = shipped("mapping-seed-004.toml");
    let node = node_with(dir.path(), &["--mapping-file", &mapping]).await;
    let (status, body) = post_text(&client, node.url("/v1/transactions"), SEED_004.into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "user-ring-1");
    assert_eq!(body["event"]["merchant_name"], "Online Store");
    assert_eq!(body["event"]["amount"], "150");
    assert_eq!(body["event"]["device_id"], "device-shared-123");
    assert!(body["outcome"].is_string());
    // An unmapped unknown field is still refused, naming it, and counted.
    let with_extra = SEED_004.replace('}', r#", "loyalty_tier": "gold"}"#);
    let (status, body) = post_text(&client, node.url("/v1/transactions"), with_extra).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "loyalty_tier");
    let metrics = node.metrics(&client).await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"sentinel_events_invalid_total{source="http",field="other"}"#
        ),
        1.0
    );
    assert!(metrics.contains(r#"sentinel_events_invalid_total{source="kafka",field="amount"} 0"#));
    drop(node);

    let dir = tempfile::tempdir().unwrap();
    let mapping = shipped("mapping-seed-003.toml");
    let node = node_with(dir.path(), &["--mapping-file", &mapping]).await;
    let (status, body) = post_text(
        &client,
        node.url("/v1/transactions"),
        seed_003("txn-003-http", "acct-42", "transfer"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "acct-42");
    assert_eq!(body["event"]["ip"], "198.51.100.7");
    assert_eq!(body["event"]["location"]["country"], "US");
    assert_eq!(body["event"]["location"]["city"], "New York");
    assert_eq!(body["event"]["metadata"]["transaction_type"], "transfer");
    // A location that does not read "City, CC" is refused naming `location`.
    let bad = seed_003("txn-003-bad", "acct-42", "transfer").replace("New York, US", "Gotham");
    let (status, body) = post_text(&client, node.url("/v1/transactions"), bad).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "location");
    let metrics = node.metrics(&client).await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"sentinel_events_invalid_total{source="http",field="location"}"#
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_read_metadata_from_mapped_and_unknown_fields() {
    let client = support::admin_client();
    let dir = tempfile::tempdir().unwrap();
    let mapping = shipped("mapping-seed-003.toml");
    let node = node_with(dir.path(), &["--mapping-file", &mapping]).await;
    add_rule(
        &node,
        &client,
        "transfers",
        r#"metadata.transaction_type == "transfer""#,
    )
    .await;
    // `channel_hint` is in no mapping: the seed-003 file's `unknown_fields = "metadata"` keeps it.
    add_rule(
        &node,
        &client,
        "web_hint",
        r#"metadata.channel_hint == "web""#,
    )
    .await;

    let (status, transfer) = post_text(
        &client,
        node.url("/v1/transactions"),
        seed_003("txn-transfer", "acct-1", "transfer"),
    )
    .await;
    assert_eq!(status, 200, "{transfer}");
    assert_eq!(fired_rules(&transfer), ["transfers"], "{transfer}");
    assert_eq!(transfer["outcome"], "review");
    let reason = &transfer["reasons"][0]["values"][0];
    assert_eq!(reason[0], "metadata.transaction_type");
    assert_eq!(reason[1], "transfer");

    // A purchase, with the unknown field moved into metadata: the other rule fires.
    let purchase =
        seed_003("txn-purchase", "acct-2", "purchase").replace('}', r#", "channel_hint": "web"}"#);
    let (status, decided) = post_text(&client, node.url("/v1/transactions"), purchase).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["event"]["metadata"]["channel_hint"], "web");
    assert_eq!(fired_rules(&decided), ["web_hint"], "{decided}");

    // Neither key: both comparisons are false, not errors.
    let plain = seed_003("txn-plain", "acct-3", "purchase");
    let (status, decided) = post_text(&client, node.url("/v1/transactions"), plain).await;
    assert_eq!(status, 200, "{decided}");
    assert!(fired_rules(&decided).is_empty(), "{decided}");

    // A rule comparing two metadata fields has no type: refused with its position.
    let rule = serde_json::json!({"name": "bad", "expression": "metadata.a = metadata.b", "action": "review"});
    let (status, body) = post_text(&client, node.url("/v1/rules"), rule.to_string()).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("both metadata fields"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_payloads_are_decided_through_kafka_with_the_shipped_mappings() {
    let broker = Broker::start().await;
    broker.create_topics(&NODE_TOPICS, 2).await;
    let client = support::admin_client();
    let producer = broker.producer();

    let dir = tempfile::tempdir().unwrap();
    let mapping = shipped("mapping-seed-004.toml");
    let node = node_with(
        dir.path(),
        &[
            "--kafka-brokers",
            &broker.address,
            "--kafka-group",
            "mapping-004",
            "--mapping-file",
            &mapping,
        ],
    )
    .await;
    broker
        .produce(
            &producer,
            "transactions",
            "user-ring-1",
            SEED_004.as_bytes(),
        )
        .await;
    let unmapped = SEED_004.replace('}', r#", "loyalty_tier": "gold"}"#);
    broker
        .produce(
            &producer,
            "transactions",
            "user-ring-1",
            unmapped.as_bytes(),
        )
        .await;
    let decisions = eventually(
        "the seed-004 decision",
        Duration::from_secs(60),
        async || {
            let all = node.user_decisions(&client, "user-ring-1").await;
            (!all.is_empty()).then_some(all)
        },
    )
    .await;
    let event = &decisions[0]["event"];
    assert_eq!(event["merchant_name"], "Online Store");
    assert_eq!(event["currency"], "USD");
    // The id is the message's position, so a redelivered message keeps it.
    let id = event["transaction_id"].as_str().unwrap();
    assert!(id.starts_with("transactions:"), "{id}");
    let published = collect(
        &broker.consumer(&["transactions_approved", "transactions_fraud"]),
        Duration::from_secs(60),
        |rs| !rs.is_empty(),
    )
    .await;
    assert_eq!(published[0].json()["transaction_id"], id);
    // The unmapped field is dead-lettered, naming it, and counted.
    let letters = collect(
        &broker.consumer(&["transactions_dlq"]),
        Duration::from_secs(60),
        |rs| !rs.is_empty(),
    )
    .await;
    assert_eq!(letters[0].headers["sentinel-error-field"], "loyalty_tier");
    assert_eq!(letters[0].payload, unmapped.as_bytes());
    let metrics = node.metrics(&client).await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"sentinel_events_invalid_total{source="kafka",field="other"}"#
        ),
        1.0
    );
    drop(node);

    let dir = tempfile::tempdir().unwrap();
    let mapping = shipped("mapping-seed-003.toml");
    let node = node_with(
        dir.path(),
        &[
            "--kafka-brokers",
            &broker.address,
            "--kafka-group",
            "mapping-003",
            "--input-topic",
            "transactions-003",
            "--mapping-file",
            &mapping,
        ],
    )
    .await;
    add_rule(
        &node,
        &client,
        "transfers",
        r#"metadata.transaction_type == "transfer""#,
    )
    .await;
    let payload = seed_003("txn-003-kafka", "acct-7", "transfer");
    broker
        .produce(&producer, "transactions-003", "acct-7", payload.as_bytes())
        .await;
    let decision = eventually(
        "the seed-003 decision",
        Duration::from_secs(60),
        async || node.decision(&client, "txn-003-kafka").await,
    )
    .await;
    assert_eq!(decision["user_id"], "acct-7");
    assert_eq!(decision["event"]["location"]["city"], "New York");
    assert_eq!(
        decision["event"]["metadata"]["transaction_type"],
        "transfer"
    );
}

/// Runs `sentinel config check` with `args` and the environment a test node gets.
fn config_check(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["config", "check"])
        .args(args)
        .env("SENTINEL_AUTH_JWT_SECRET", support::TEST_JWT_SECRET)
        .env_remove("SENTINEL_CONFIG")
        .env_remove("SENTINEL_MAPPING_FILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_prints_the_mapping_and_names_a_bad_setting() {
    let (code, stdout, stderr) =
        config_check(&["--mapping-file", &shipped("mapping-seed-003.toml")]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("account_id        user_id"), "{stdout}");
    assert!(
        stdout.contains("transaction_type  metadata.transaction_type"),
        "{stdout}"
    );
    assert!(stdout.contains("unknown fields: metadata"), "{stdout}");
    assert!(
        !stdout.contains(support::TEST_JWT_SECRET),
        "the secret was printed"
    );
    assert!(stdout.contains("<redacted>"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sentinel.toml");
    std::fs::write(
        &config,
        "[mapping]\nunknown_fields = \"metadata\"\n[mapping.fields]\naccount_id = \"user_id\"\n\"payer.id\" = \"user_id\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = config_check(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("mapping.fields.\"payer.id\"") && stderr.contains("account_id"),
        "{stderr}"
    );
    // The environment layers over the file as for `sentinel run`.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["config", "check"])
        .env("SENTINEL_AUTH_JWT_SECRET", support::TEST_JWT_SECRET)
        .env("SENTINEL_MAPPING_UNKNOWN_FIELDS", "keep")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reject or metadata"));
    // And `run` refuses the same bad file before it starts anything.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(["run", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--http-listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("SENTINEL_AUTH_JWT_SECRET", support::TEST_JWT_SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mapping.fields.\"payer.id\""));
}

#[test]
fn import_reads_history_through_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.jsonl");
    let lines = [
        seed_003("txn-h1", "acct-h", "purchase"),
        seed_003("txn-h2", "acct-h", "transfer"),
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    let import = |data: &str, extra: &[&str]| {
        support::run_ok(
            support::sentinel()
                .args(["import", "--data-dir"])
                .arg(dir.path().join(data))
                .args(extra)
                .arg(&file)
                .env_remove("SENTINEL_MAPPING_FILE"),
        )
    };
    let printed = import("unmapped", &[]);
    assert!(printed.contains("2 rejected"), "{printed}");
    let printed = import(
        "mapped",
        &["--mapping-file", &shipped("mapping-seed-003.toml")],
    );
    assert!(
        printed.contains("2 decided") && printed.contains("0 rejected"),
        "{printed}"
    );
}
