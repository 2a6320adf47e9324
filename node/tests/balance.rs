//! `GET /v1/users/{id}/balance` through the real binary: declined transactions move no money,
//! the opening balance is added, and the answer — the running total the user actors keep in
//! their snapshotted state — stays right after a crash, a clean restart and a second import of
//! the same history. The stored snapshot itself carries the total.

use sentinel_testkit as support;

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::io::Write;
use support::NodeProcess;

fn import(data: &std::path::Path, file: &std::path::Path) -> String {
    support::run_ok(
        support::sentinel()
            .args(["import", "--data-dir", data.to_str().unwrap()])
            .arg(file),
    )
}

/// One event of `user`, `minute` minutes into the history.
fn event(
    txn: String,
    user: &str,
    amount: &str,
    kind: &str,
    country: &str,
    minute: i64,
) -> serde_json::Value {
    let start = chrono::Utc::now() - chrono::Duration::days(20);
    serde_json::json!({
        "transaction_id": txn, "user_id": user, "amount": amount, "currency": "EUR",
        "type": kind, "location": {"country": country},
        "timestamp": (start + chrono::Duration::minutes(minute)).to_rfc3339(),
    })
}

/// What a user's stored decisions moved, by currency: (without declines, with them).
async fn moved(
    node: &NodeProcess,
    client: &reqwest::Client,
    user: &str,
) -> (BTreeMap<String, Decimal>, BTreeMap<String, Decimal>, usize) {
    let (mut counted, mut everything, mut declines) = (BTreeMap::new(), BTreeMap::new(), 0);
    for d in node.user_decisions(client, user).await {
        let e = &d["event"];
        let amount: Decimal = e["amount"].as_str().unwrap().parse().unwrap();
        let signed = if e["type"] == "credit" {
            amount
        } else {
            -amount
        };
        let currency = e["currency"].as_str().unwrap().to_owned();
        *everything.entry(currency.clone()).or_default() += signed;
        if d["outcome"] == "decline" {
            declines += 1;
        } else {
            *counted.entry(currency).or_default() += signed;
        }
    }
    (counted, everything, declines)
}

async fn balance(node: &NodeProcess, client: &reqwest::Client, user: &str) -> serde_json::Value {
    let r = client
        .get(node.url(&format!("/v1/users/{user}/balance")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn eur(balance: &serde_json::Value) -> Decimal {
    balance["balances"]["EUR"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_skips_declines_adds_the_opening_balance_and_survives_restarts_and_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let file = dir.path().join("history.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    // A short history whose third payment is in another country two minutes after the
    // second: impossible travel, declined.
    let short = [
        ("100.00", "debit", "FR", 0),
        ("250.50", "credit", "FR", 1),
        ("70.00", "debit", "DE", 3),
        ("19.99", "debit", "DE", 300),
    ];
    for (i, (amount, kind, country, minute)) in short.into_iter().enumerate() {
        let e = event(
            format!("bal-s-{i}"),
            "bal-short",
            amount,
            kind,
            country,
            minute,
        );
        writeln!(out, "{e}").unwrap();
    }
    // A long history: more decisions than one page of the store, one every ten minutes.
    const LONG: i64 = 2_500;
    for i in 0..LONG {
        let (amount, kind) = if i % 10 == 0 {
            ("500.00", "credit")
        } else {
            ("12.34", "debit")
        };
        let e = event(format!("bal-l-{i}"), "bal-long", amount, kind, "FR", i * 10);
        writeln!(out, "{e}").unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let total = short.len() as i64 + LONG;
    let printed = import(&data, &file);
    assert!(
        printed.contains(&format!("{total} decided, 0 already stored")),
        "{printed}"
    );

    let mut node = NodeProcess::start(&data, &[]).await;
    let client = support::admin_client();
    let (short_moved, short_all, declines) = moved(&node, &client, "bal-short").await;
    assert!(declines >= 1, "the impossible-travel payment is declined");
    assert_ne!(short_moved, short_all, "the decline would have moved money");
    let (long_moved, _, _) = moved(&node, &client, "bal-long").await;

    let before_opening = balance(&node, &client, "bal-short").await;
    assert_eq!(eur(&before_opening), short_moved["EUR"], "{before_opening}");
    let r = client
        .put(node.url("/v1/users/bal-short/opening-balance"))
        .json(&serde_json::json!({"currency": "EUR", "amount": "1000.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let opening = Decimal::from(1000);
    let expected_short = short_moved["EUR"] + opening;
    let expected_long = long_moved["EUR"];
    let check = |node: NodeProcess, client: reqwest::Client, when: &'static str| async move {
        let short = balance(&node, &client, "bal-short").await;
        assert_eq!(eur(&short), expected_short, "{when}: {short}");
        assert_eq!(short["opening"]["EUR"], "1000.00", "{when}: {short}");
        let long = balance(&node, &client, "bal-long").await;
        assert_eq!(eur(&long), expected_long, "{when}: {long}");
        node
    };
    node = check(node, client.clone(), "after the import").await;

    // A crash: no snapshot at exit; the actors restore from older snapshots and replay.
    node.kill();
    let node = NodeProcess::start(&data, &[]).await;
    let mut node = check(node, client.clone(), "after a crash").await;
    assert_eq!(node.terminate(), Some(0));

    // The same history again: every event is already stored, none counts twice.
    let printed = import(&data, &file);
    assert!(
        printed.contains(&format!("0 decided, {total} already stored")),
        "{printed}"
    );
    // The total lives in the user's stored snapshot: nothing needs to scan the history.
    {
        let store = sentinel_store::open_existing_embedded(&data).unwrap();
        let snapshot = store
            .snapshot("bal-long")
            .await
            .unwrap()
            .expect("a snapshot");
        let state = sentinel_actors::decode_snapshot(&snapshot.state).unwrap();
        let ledger = state
            .ledger
            .expect("the snapshot carries the running total");
        assert_eq!(ledger.totals["EUR"], expected_long);
        assert_eq!(snapshot.seq, LONG as u64);
    }
    let node = NodeProcess::start(&data, &[]).await;
    check(node, client, "after a clean restart and a second import").await;
}
