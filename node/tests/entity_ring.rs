//! The fraud ring across real node processes: three members of one ractor_cluster (one serves
//! the store), each deciding the events posted to it, so the ring's users are owned by
//! different nodes. The device's entity lives on one member; the third user's decision carries
//! the seed's `shared_device_ring` reason whichever node decides it. With the device's owner
//! frozen (SIGSTOP), decisions still come back, without the reason, and the failure is counted.

use sentinel_testkit as support;

use sentinel_engine::{EntityKey, EntityKind};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use support::{event, free_port, metric_value, NodeProcess};

const COOKIE: &str = "entity-test-cookie";

/// Starts member `name`; `host` is (cluster address, node name) of the store host, or `None`
/// for the host itself.
async fn member(
    name: &str,
    port: u16,
    host: Option<(&str, &str)>,
    dir: &tempfile::TempDir,
) -> NodeProcess {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "--node-name",
        name,
        "--cluster-listen",
        &listen,
        "--cluster-cookie",
        COOKIE,
    ];
    if let Some((seed, store_host)) = host {
        args.extend(["--cluster-seeds", seed, "--store-host", store_host]);
    }
    NodeProcess::start(&dir.path().join(name), &args).await
}

fn ring_event(txn: &str, user: &str, device: &str) -> Value {
    let mut e = event(txn, user, "40.00", 1, "FR");
    e["device_id"] = Value::from(device);
    e
}

fn ring_reason(decision: &Value) -> Option<&Value> {
    decision["reasons"]
        .as_array()?
        .iter()
        .find(|r| r["rule"] == "shared_device_ring")
}

/// A device id whose entity the member `owner` owns among `members`.
fn device_owned_by(owner: &str, members: [&str; 3], prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|d| EntityKey::new(EntityKind::Device, d).owner(members) == Some(owner))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_across_nodes_fires_and_a_frozen_owner_does_not_hang_decisions() {
    // An admin on the test nodes, with a bound so a hanging decision fails the test.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", support::token("admin"))
            .parse()
            .unwrap(),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let names = ["e1", "e2", "e3"];
    let ports = [free_port(), free_port(), free_port()];
    let seed = format!("127.0.0.1:{}", ports[0]);
    let e1 = member(names[0], ports[0], None, &dir).await;
    let e2 = member(names[1], ports[1], Some((&seed, names[0])), &dir).await;
    let mut e3 = member(names[2], ports[2], Some((&seed, names[0])), &dir).await;
    let nodes = [&e1, &e2, &e3];

    // Every member places entities on all three before any event is sent.
    for node in nodes {
        node.wait_for_metric(&client, "sentinel_entity_owners", 3.0)
            .await;
    }

    let decide = async |node: &NodeProcess, body: Value| node.decide(&client, &body).await;

    // Three users, each decided on a different node, on one device owned by e3: each of the
    // first two nodes must reach e3 to count the others.
    let device = device_owned_by("e3", names, "ring-dev");
    let ann = decide(&e1, ring_event("ring-1", "ann", &device)).await;
    assert!(ring_reason(&ann).is_none(), "{ann}");
    let bob = decide(&e2, ring_event("ring-2", "bob", &device)).await;
    assert!(ring_reason(&bob).is_none(), "{bob}");
    let cyd = decide(&e1, ring_event("ring-3", "cyd", &device)).await;
    let reason = ring_reason(&cyd).unwrap_or_else(|| panic!("no ring reason: {cyd}"));
    assert_eq!(
        reason["values"][0],
        serde_json::json!(["device.distinct_users(24h)", 3.0])
    );
    assert_eq!(cyd["outcome"], "review");

    // Freeze e3: it stays a member but answers nothing. Decisions on e1 and e2 come back;
    // the count is unknown, so the rule does not fire, and the failures are counted.
    let pid = e3.pid().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let frozen = device_owned_by("e3", names, "frozen-dev");
    for (i, (node, user)) in [(&e1, "dan"), (&e2, "eve"), (&e1, "fay")]
        .into_iter()
        .enumerate()
    {
        let d = decide(node, ring_event(&format!("frozen-{i}"), user, &frozen)).await;
        assert!(ring_reason(&d).is_none(), "{d}");
        assert_eq!(d["outcome"], "approve", "{d}");
    }
    let mut failures = 0.0;
    for node in [&e1, &e2] {
        let text = node.metrics(&client).await;
        failures += metric_value(&text, "sentinel_entity_lookup_failures_total");
    }
    assert!(failures >= 3.0, "{failures} lookups counted as failed");
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    e3.kill();
}
