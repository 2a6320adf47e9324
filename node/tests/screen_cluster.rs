//! Batch screening in a cluster of real node processes: the shared device's entity lives on
//! the other member, so screening reads its users through the cluster route — it sees the real
//! users recorded there and records none of its own.

use sentinel_testkit as support;

use sentinel_engine::{EntityKey, EntityKind};
use serde_json::{json, Value};
use support::{event, free_port, post_text, NodeProcess};

const COOKIE: &str = "screen-cluster-cookie";

fn on_device(txn: &str, user: &str, device: &str) -> Value {
    let mut e = event(txn, user, "40.00", 1, "FR");
    e["device_id"] = Value::from(device);
    e
}

fn ring_users(decision: &Value) -> Option<f64> {
    decision["reasons"]
        .as_array()?
        .iter()
        .flat_map(|r| r["values"].as_array().into_iter().flatten())
        .find(|v| v[0] == "device.distinct_users(24h)")
        .and_then(|v| v[1].as_f64())
}

/// A device id whose entity `owner` owns among `members`.
fn device_owned_by(owner: &str, members: [&str; 2], prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|d| EntityKey::new(EntityKind::Device, d).owner(members) == Some(owner))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screening_reads_remote_entities_and_records_none() {
    let client = support::admin_client();
    let dir = tempfile::tempdir().unwrap();
    let names = ["s1", "s2"];
    let ports = [free_port(), free_port()];
    let seed = format!("127.0.0.1:{}", ports[0]);
    let cluster = |i: usize| {
        let listen = format!("127.0.0.1:{}", ports[i]);
        let mut args = vec![
            "--node-name".to_owned(),
            names[i].to_owned(),
            "--cluster-listen".to_owned(),
            listen,
            "--cluster-cookie".to_owned(),
            COOKIE.to_owned(),
        ];
        if i > 0 {
            args.extend(["--cluster-seeds".to_owned(), seed.clone()]);
            args.extend(["--store-host".to_owned(), names[0].to_owned()]);
        }
        args
    };
    let args0 = cluster(0);
    let s1 = NodeProcess::start(
        &dir.path().join("s1"),
        &args0.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let args1 = cluster(1);
    let s2 = NodeProcess::start(
        &dir.path().join("s2"),
        &args1.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    for node in [&s1, &s2] {
        node.wait_for_metric(&client, "sentinel_entity_owners", 2.0)
            .await;
    }
    let decide = async |node: &NodeProcess, body: Value| node.decide(&client, &body).await;
    let screen = async |node: &NodeProcess, items: Vec<Value>| -> Value {
        let body = json!({ "transactions": items }).to_string();
        let (status, answer) = post_text(&client, node.url("/v1/transactions/screen"), body).await;
        assert_eq!(status, 200, "{answer}");
        answer
    };

    // Two real users on a device s2 owns; a third, screened on s1, counts them over there.
    let device = device_owned_by("s2", names, "scr-ring");
    decide(&s2, on_device("scr-r-1", "ann", &device)).await;
    decide(&s1, on_device("scr-r-2", "bob", &device)).await;
    let answer = screen(&s1, vec![on_device("scr-r-3", "cyd", &device)]).await;
    let screened = &answer["results"][0]["decision"];
    assert_eq!(ring_users(screened), Some(3.0), "{answer}");
    let live = decide(&s1, on_device("scr-r-3", "cyd", &device)).await;
    assert_eq!(screened["outcome"], live["outcome"], "{live}");
    assert_eq!(screened["reasons"], live["reasons"], "{live}");

    // Two screened users on another device s2 owns leave no sighting there.
    let quiet = device_owned_by("s2", names, "scr-quiet");
    screen(
        &s1,
        vec![
            on_device("scr-q-1", "dan", &quiet),
            on_device("scr-q-2", "eve", &quiet),
        ],
    )
    .await;
    let real = decide(&s2, on_device("scr-q-3", "fay", &quiet)).await;
    assert_eq!(
        ring_users(&real),
        None,
        "screened users were recorded: {real}"
    );
}
