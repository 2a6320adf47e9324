//! Amounts compared across currencies, against a running node: the seed rules read the base
//! amount, an event with no rate is refused naming `currency` (or decided raw, as configured),
//! and a changed rates file applies to the next events while a bad one keeps the old table.

use sentinel_testkit as support;

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use support::{event, fired_rules, metric_value, NodeProcess};

/// Replaces the file atomically, as an operator's deploy should (the node may read it any time).
fn write_rates(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn rates(as_of: &str, jpy: &str) -> String {
    format!("as_of = \"{as_of}\"\n[rates]\nEUR = \"1.16\"\nJPY = \"{jpy}\"\n")
}

/// Writes `rates.toml` and a config reading it (checked for changes every second) into `dir`;
/// returns the config's path. Rules only: the amounts here are about rules, not the model.
fn config_with_rates(dir: &Path) -> String {
    let rates_path = dir.join("rates.toml");
    write_rates(&rates_path, &rates("2026-12-01", "0.0066"));
    let config = dir.join("sentinel.toml");
    std::fs::write(
        &config,
        format!(
            "[currency]\nbase = \"USD\"\nrates_file = {:?}\nreload_secs = 1\n\
             [model]\nload_default = false\n",
            rates_path.display().to_string()
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_owned()
}

async fn node_with_rates(dir: &Path, extra: &[&str]) -> NodeProcess {
    let config = config_with_rates(dir);
    let mut args = vec!["--config", config.as_str()];
    args.extend_from_slice(extra);
    NodeProcess::start(&dir.join("data"), &args).await
}

fn in_currency(txn: &str, user: &str, amount: &str, currency: &str) -> Value {
    let mut e = event(txn, user, amount, 1, "JP");
    e["currency"] = json!(currency);
    e
}

async fn post(node: &NodeProcess, client: &reqwest::Client, body: &Value) -> (u16, Value) {
    let r = client
        .post(node.url("/v1/transactions"))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The counter's value for the series carrying every given label.
fn counter(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_compare_in_the_base_currency_and_rates_reload() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node_with_rates(dir.path(), &[]).await;
    let client = support::admin_client();

    // JPY 60,528 is about USD 400: no longer "large"; USD 12,000 is.
    let (status, yen) = post(
        &node,
        &client,
        &in_currency("fx-jpy", "fx-1", "60528", "JPY"),
    )
    .await;
    assert_eq!(status, 200, "{yen}");
    assert!(!fired_rules(&yen).contains(&"large_amount"), "{yen}");
    assert_eq!(yen["event"]["amount"], "60528");
    assert_eq!(yen["event"]["currency"], "JPY");
    assert_eq!(
        yen["event"]["base"],
        json!({"amount": "399.4848", "currency": "USD", "rate": "0.0066", "rate_date": "2026-12-01"})
    );
    let (_, usd) = post(
        &node,
        &client,
        &in_currency("fx-usd", "fx-2", "12000", "USD"),
    )
    .await;
    assert_eq!(usd["outcome"], "review");
    assert_eq!(usd["reasons"][0]["rule"], "large_amount");
    assert_eq!(
        usd["reasons"][0]["values"][0],
        json!(["amount_base", 12000.0])
    );
    let stored = node.decision(&client, "fx-jpy").await.unwrap();
    assert_eq!(stored["event"]["base"]["rate_date"], "2026-12-01");
    let sums: Value = client
        .get(node.url("/v1/aggregates?agg=sum&field=amount_base&group_by=outcome"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sums["groups"],
        json!({"approve": 399.4848, "review": 12000.0}),
        "{sums}"
    );

    // Rule tests see the amount as scoring would.
    let tried: Value = client
        .post(node.url("/v1/rules/test"))
        .json(
            &json!({"expression": "amount_base > 10000 or amount > 60000",
                      "transaction": in_currency("fx-try", "fx-1", "60528", "JPY")}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        tried,
        json!({"matches": true, "values": [["amount_base", 399.4848], ["amount", 60528.0]]})
    );

    // No rate for the currency: 422 naming `currency`, and the counter moves.
    let (status, err) = post(
        &node,
        &client,
        &in_currency("fx-xof", "fx-3", "5000", "XOF"),
    )
    .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["field"], "currency");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("XOF") && message.contains("no exchange rate"),
        "{message}"
    );
    assert!(node.decision(&client, "fx-xof").await.is_none());
    let metrics = node.metrics(&client).await;
    let unknown = "sentinel_currency_unknown_total";
    assert_eq!(
        counter(
            &metrics,
            unknown,
            &[r#"source="http""#, r#"action="rejected""#]
        ),
        1.0
    );
    assert_eq!(
        counter(
            &metrics,
            unknown,
            &[r#"source="kafka""#, r#"action="rejected""#]
        ),
        0.0
    );

    // A producer may not choose the base amount, in the node's shape or a flat one.
    for (field, value) in [
        ("base", json!({"amount": "1", "currency": "USD"})),
        ("amount_base", json!("1")),
    ] {
        let mut forged = in_currency("fx-forged", "fx-4", "60528", "JPY");
        forged[field] = value;
        let (status, err) = post(&node, &client, &forged).await;
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["field"], field);
    }
    assert!(node.decision(&client, "fx-forged").await.is_none());

    // A new table applies to the next events.
    write_rates(
        &dir.path().join("rates.toml"),
        &rates("2026-12-02", "0.007"),
    );
    let mut n = 0;
    let reloaded = support::eventually("the new rate table", Duration::from_secs(60), async || {
        n += 1;
        let (_, d) = post(
            &node,
            &client,
            &in_currency(&format!("fx-r{n}"), "fx-5", "1000", "JPY"),
        )
        .await;
        (d["event"]["base"]["rate_date"] == "2026-12-02").then_some(d)
    })
    .await;
    assert_eq!(reloaded["event"]["base"]["amount"], "7");
    let metrics = node.metrics(&client).await;
    assert!(
        counter(
            &metrics,
            "sentinel_currency_rates_reloads_total",
            &[r#"result="ok""#]
        ) >= 1.0
    );

    // A bad file is reported and counted; the table in force stays.
    write_rates(
        &dir.path().join("rates.toml"),
        "as_of = \"2026-12-03\"\n[rates]\nJPY = \"-1\"\n",
    );
    support::eventually(
        "the bad file to be counted",
        Duration::from_secs(60),
        async || {
            let metrics = node.metrics(&client).await;
            let errors = counter(
                &metrics,
                "sentinel_currency_rates_reloads_total",
                &[r#"result="error""#],
            );
            (errors >= 1.0).then_some(())
        },
    )
    .await;
    let (_, kept) = post(
        &node,
        &client,
        &in_currency("fx-kept", "fx-5", "1000", "JPY"),
    )
    .await;
    assert_eq!(kept["event"]["base"]["rate_date"], "2026-12-02", "{kept}");
    assert!(
        node.log_text().contains("bad rates file"),
        "{}",
        node.log_text()
    );

    assert_eq!(node.terminate(), Some(0), "{}", node.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_unknown_raw_an_unrated_currency_is_decided_on_its_raw_amount() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_rates(dir.path(), &["--currency-unknown", "raw"]).await;
    let client = support::admin_client();
    let (status, d) = post(
        &node,
        &client,
        &in_currency("raw-1", "raw-u", "20000", "XOF"),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    // No rate applied: the raw amount stands in, and the decision says so.
    assert_eq!(
        d["event"]["base"],
        json!({"amount": "20000", "currency": "USD"})
    );
    assert_eq!(d["reasons"][0]["rule"], "large_amount", "{d}");
    let metrics = node.metrics(&client).await;
    assert_eq!(
        counter(
            &metrics,
            "sentinel_currency_unknown_total",
            &[r#"source="http""#, r#"action="raw""#]
        ),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, r#"sentinel_decisions_total{outcome="review"}"#),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_converts_amounts_and_rejects_rows_without_a_rate() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_rates(dir.path());
    let data = dir.path().join("data");
    let file = dir.path().join("history.jsonl");
    let rows = [
        in_currency("imp-jpy", "imp-1", "60528", "JPY"),
        in_currency("imp-xof", "imp-2", "100", "XOF"),
        in_currency("imp-usd", "imp-3", "12000", "USD"),
    ];
    let lines: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args([
            "import",
            "--config",
            &config,
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("2 decided") && stdout.contains("1 rejected"),
        "{stdout}"
    );
    let rejects = std::fs::read_to_string(dir.path().join("history.jsonl.rejects.jsonl")).unwrap();
    let reject: Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(reject["line"], 2, "{rejects}");
    let reason = reject["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("currency: no exchange rate from XOF"),
        "{reason}"
    );

    let node = NodeProcess::start(&data, &["--config", &config]).await;
    let client = support::admin_client();
    let yen = node.decision(&client, "imp-jpy").await.unwrap();
    assert_eq!(yen["event"]["base"]["rate_date"], "2026-12-01");
    assert!(!fired_rules(&yen).contains(&"large_amount"), "{yen}");
    let usd = node.decision(&client, "imp-usd").await.unwrap();
    assert_eq!(fired_rules(&usd), ["large_amount"]);
}
