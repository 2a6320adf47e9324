//! Three real node processes on loopback forming a ractor_cluster over one real Kafka-API
//! broker: one node hosts the store and serves it to the others. A non-host node is SIGKILLed
//! and restarted mid-stream, a node joins mid-stream, and a rule changed through one node
//! changes decisions on all; every transaction ends with exactly one stored decision that
//! equals what a single node computes over the same events.

use sentinel_testkit as support;

use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{event, eventually, free_port, metric_value, Broker, ClusterMember, NodeProcess};

const INPUT: &str = "transactions";
const PARTITIONS: i32 = 6;
const COOKIE: &str = "cluster-test-cookie";

/// `member`'s arguments; `host` is the store host and seed (None: this is the host).
fn member_args(
    member: &ClusterMember,
    broker: Option<&Broker>,
    host: Option<&ClusterMember>,
) -> Vec<String> {
    let mut args = member.cluster_args(COOKIE, host.as_slice(), host);
    if let Some(broker) = broker {
        // Static membership: a restarted node takes its old place in the consumer group.
        let config = member.dir.path().join("static-member.toml");
        std::fs::write(
            &config,
            format!(
                "[kafka.options]\n\"group.instance.id\" = \"{}\"\n",
                member.name
            ),
        )
        .unwrap();
        args.extend(["--config".into(), config.display().to_string()]);
        args.extend([
            "--kafka-brokers".into(),
            broker.address.clone(),
            "--kafka-group".into(),
            "sentinel-cluster-test".into(),
        ]);
    }
    args
}

/// Starts `member` with [`member_args`].
async fn start_node(
    member: &ClusterMember,
    broker: Option<&Broker>,
    host: Option<&ClusterMember>,
) -> NodeProcess {
    member.start(&member_args(member, broker, host)).await
}

async fn broker_with_topics() -> Broker {
    let broker = Broker::start().await;
    broker.create_topic(INPUT, PARTITIONS).await;
    for topic in [
        "transactions_approved",
        "transactions_fraud",
        "transactions_dlq",
    ] {
        broker.create_topic(topic, 2).await;
    }
    broker
}

/// A user's `i`-th event: 20 s apart (so the 5-minute velocity window fills and its rule
/// fires) with every fourth amount a spike over the user's average (so the 30-day averages
/// matter too). Any event counted twice or skipped changes later decisions.
fn stream_event(user: &str, i: usize, start: chrono::DateTime<chrono::Utc>) -> Value {
    let amount = if i % 4 == 3 { "180.00" } else { "20.00" };
    let mut e = event(&format!("{user}-{i}"), user, amount, 0, "FR");
    e["timestamp"] = json!((start + chrono::Duration::seconds(20 * i as i64)).to_rfc3339());
    e
}

/// Produces every user's `i`-th event, remembering it per user.
async fn produce_round(
    broker: &Broker,
    producer: &rdkafka::producer::FutureProducer,
    prefix: &str,
    users: usize,
    i: usize,
    start: chrono::DateTime<chrono::Utc>,
    produced: &mut BTreeMap<String, Vec<Value>>,
) {
    for u in 0..users {
        let user = format!("{prefix}-{u}");
        let e = stream_event(&user, i, start);
        broker
            .produce(producer, INPUT, &user, e.to_string().as_bytes())
            .await;
        produced.entry(user).or_default().push(e);
    }
}

/// A JSON answer from `GET path` on `node`.
async fn get_json(client: &reqwest::Client, node: &NodeProcess, path: &str) -> Value {
    let response = client.get(node.url(path)).send().await.unwrap();
    response.json().await.unwrap()
}

/// The cluster view as one node reports it.
async fn cluster_view(client: &reqwest::Client, node: &NodeProcess) -> Value {
    get_json(client, node, "/v1/cluster").await
}

/// Waits until `node`'s cluster view lists `count` members.
async fn members_seen(client: &reqwest::Client, node: &NodeProcess, count: usize) {
    eventually(
        &format!("{count} members seen"),
        Duration::from_secs(30),
        async || {
            let view = cluster_view(client, node).await;
            (view["members"].as_array()?.len() == count).then_some(())
        },
    )
    .await;
}

/// The partitions each member owns, by node name, once every partition has an owner.
async fn settled_ownership(
    client: &reqwest::Client,
    node: &NodeProcess,
    members: usize,
) -> BTreeMap<String, Vec<i64>> {
    eventually(
        "every partition owned",
        Duration::from_secs(90),
        async || {
            let view = cluster_view(client, node).await;
            let list = view["members"].as_array()?;
            let owned: BTreeMap<String, Vec<i64>> = list
                .iter()
                .map(|m| {
                    let parts = m["partitions"].as_array().unwrap();
                    (
                        m["node"].as_str().unwrap().to_owned(),
                        parts.iter().map(|p| p.as_i64().unwrap()).collect(),
                    )
                })
                .collect();
            let all: BTreeSet<i64> = owned.values().flatten().copied().collect();
            let total: usize = owned.values().map(Vec::len).sum();
            (list.len() == members
                && owned.values().all(|p| !p.is_empty())
                && total == PARTITIONS as usize
                && all.len() == PARTITIONS as usize)
                .then_some(owned)
        },
    )
    .await
}

/// Waits for every produced event's decision, checks there is exactly one per transaction in
/// processing order, then replays the same events into a fresh single node over HTTP and checks
/// that every decision (outcome, score, reasons, sequence number) is the same.
async fn assert_exactly_once_and_equal_to_single_node(
    client: &reqwest::Client,
    reader: &NodeProcess,
    produced: &BTreeMap<String, Vec<Value>>,
) {
    let mut stored = BTreeMap::new();
    for (user, events) in produced {
        let decisions = eventually(
            &format!("all decisions of {user}"),
            Duration::from_secs(180),
            async || {
                let d = reader.user_decisions(client, user).await;
                (d.len() >= events.len()).then_some(d)
            },
        )
        .await;
        let ids: Vec<&str> = decisions
            .iter()
            .map(|d| d["transaction_id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = events
            .iter()
            .map(|e| e["transaction_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected, "{user}: one decision per event, in order");
        let seqs: Vec<u64> = decisions
            .iter()
            .map(|d| d["user_seq"].as_u64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "{user}"
        );
        stored.insert(user.clone(), decisions);
    }

    let dir = tempfile::tempdir().unwrap();
    let single = NodeProcess::start(dir.path(), &[]).await;
    let mut velocity_fired = 0;
    for (user, events) in produced {
        for (event, clustered) in events.iter().zip(&stored[user]) {
            let replayed: Value = client
                .post(single.url("/v1/transactions"))
                .json(event)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for field in ["outcome", "score", "reasons", "user_seq"] {
                assert_eq!(
                    clustered[field], replayed[field],
                    "{user}: {field} differs from a single-node replay\ncluster: {clustered}\nsingle: {replayed}"
                );
            }
            if replayed["reasons"].to_string().contains("velocity_5m") {
                velocity_fired += 1;
            }
        }
    }
    assert!(
        velocity_fired > 0,
        "the stream must exercise the windows for the comparison to mean anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transaction_is_decided_once_across_a_sigkill_of_a_scoring_node() {
    let broker = broker_with_topics().await;
    let client = support::admin_client();
    let [host, second, third] = ["n1", "n2", "n3"].map(ClusterMember::new);
    let n1 = start_node(&host, Some(&broker), None).await;
    let n2 = start_node(&second, Some(&broker), Some(&host)).await;
    let mut n3 = start_node(&third, Some(&broker), Some(&host)).await;
    let owned = settled_ownership(&client, &n1, 3).await;
    assert_eq!(owned.len(), 3, "{owned:?}");

    const USERS: usize = 24;
    const PER_USER: usize = 30;
    let start = chrono::Utc::now() - chrono::Duration::minutes(20);
    let producer = broker.producer();
    let mut produced: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for i in 0..PER_USER {
        produce_round(&broker, &producer, "user", USERS, i, start, &mut produced).await;
        if i == PER_USER / 3 {
            // n3 has been deciding (and holds decided-but-uncommitted events) when it dies.
            eventually("n3 deciding", Duration::from_secs(90), async || {
                let m = n3.metrics(&client).await;
                (metric_value(&m, "sentinel_store_decisions_stored_total") > 10.0).then_some(())
            })
            .await;
            n3.kill();
        }
        if i == 2 * PER_USER / 3 {
            n3 = start_node(&third, Some(&broker), Some(&host)).await;
        }
    }
    assert_exactly_once_and_equal_to_single_node(&client, &n1, &produced).await;
    let owned = settled_ownership(&client, &n1, 3).await;
    assert!(
        !owned["n3"].is_empty(),
        "the restarted node owns partitions"
    );

    // Any node answers a user's live state, fetched from the member owning the user's
    // partition: every node gives the same view, and no user gets a second live actor.
    for user in produced.keys() {
        let mut views = Vec::new();
        for node in [&n1, &n2, &n3] {
            let view = get_json(&client, node, &format!("/v1/users/{user}/profile")).await;
            assert_eq!(view["seq"], PER_USER as u64, "{user}: {view}");
            views.push(view);
        }
        assert!(views.windows(2).all(|w| w[0] == w[1]), "{user}: {views:?}");
    }
    // Each former owner passivates a moved partition's users after the rebalance, and the
    // killed member's session may expire (one more rebalance) after its successor joined: so
    // once the assignment settles, and never more live actors than users.
    eventually(
        "each user live on its owner only",
        Duration::from_secs(90),
        async || {
            settled_ownership(&client, &n1, 3).await;
            let view = cluster_view(&client, &n2).await;
            let live: u64 = view["members"]
                .as_array()?
                .iter()
                .map(|m| m["live_actors"].as_u64().unwrap())
                .sum();
            (live <= USERS as u64).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_mid_stream_takes_partitions_over_without_a_gap() {
    let broker = broker_with_topics().await;
    let client = support::admin_client();
    let [host, second, third] = ["n1", "n2", "n3"].map(ClusterMember::new);
    let n1 = start_node(&host, Some(&broker), None).await;
    let _n2 = start_node(&second, Some(&broker), Some(&host)).await;
    let before = settled_ownership(&client, &n1, 2).await;
    assert_eq!(before.len(), 2);

    const USERS: usize = 18;
    const PER_USER: usize = 24;
    let start = chrono::Utc::now() - chrono::Duration::minutes(20);
    let producer = broker.producer();
    let mut produced: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut n3 = None;
    for i in 0..PER_USER {
        produce_round(&broker, &producer, "joiner", USERS, i, start, &mut produced).await;
        if i == PER_USER / 2 {
            n3 = Some(start_node(&third, Some(&broker), Some(&host)).await);
            let after = settled_ownership(&client, &n1, 3).await;
            assert!(!after["n3"].is_empty(), "{after:?}");
        }
    }
    assert_exactly_once_and_equal_to_single_node(&client, &n1, &produced).await;
    let n3 = n3.expect("started mid-stream");
    let m = n3.metrics(&client).await;
    assert!(
        metric_value(&m, "sentinel_store_decisions_stored_total") > 0.0,
        "the joining node decided events of the partitions it took over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_changed_on_the_store_host_changes_decisions_on_every_node() {
    let client = support::admin_client();
    let [host, second, third] = ["r1", "r2", "r3"].map(ClusterMember::new);
    let r1 = start_node(&host, None, None).await;
    let r2 = start_node(&second, None, Some(&host)).await;
    let r3 = start_node(&third, None, Some(&host)).await;
    let nodes = [&r1, &r2, &r3];

    let decide = async |node: &NodeProcess, txn: &str| -> Value {
        client
            .post(node.url("/v1/transactions"))
            .json(&event(txn, &format!("u-{txn}"), "300.00", 1, "FR"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    for (i, node) in nodes.iter().enumerate() {
        let d = decide(node, &format!("before-{i}")).await;
        assert_eq!(
            (d["outcome"].as_str(), d["rule_set_version"].as_u64()),
            (Some("approve"), Some(1)),
            "{d}"
        );
    }

    // A scoring peer may not change what its store host holds: the change belongs on the host.
    let r = client
        .post(r2.url("/v1/rules"))
        .json(&json!({"name": "over_250", "expression": "amount > 250", "action": "decline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let refusal: Value = r.json().await.unwrap();
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("make this change on the store host"),
        "{refusal}"
    );
    let r = client
        .post(r1.url("/v1/rules"))
        .json(&json!({"name": "over_250", "expression": "amount > 250", "action": "decline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Every member applies the new version (gathered over the cluster from any node).
    eventually(
        "version 2 everywhere",
        Duration::from_secs(30),
        async || {
            let view = cluster_view(&client, &r3).await;
            let members = view["members"].as_array()?;
            (members.len() == 3 && members.iter().all(|m| m["rule_set_version"] == 2)).then_some(())
        },
    )
    .await;
    for (i, node) in nodes.iter().enumerate() {
        let d = decide(node, &format!("after-{i}")).await;
        assert_eq!(d["outcome"], "decline", "{d}");
        assert_eq!(d["reasons"][0]["rule"], "over_250");
        assert_eq!(d["rule_set_version"], 2);
    }
    // Decisions made on the scoring nodes are in the host's store, readable from any node.
    let stored = r1
        .decision(&client, "after-2")
        .await
        .expect("stored on the host");
    assert_eq!(stored["outcome"], "decline");
    let view = cluster_view(&client, &r2).await;
    let hosts: BTreeSet<&str> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["store_host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, BTreeSet::from(["r1"]));
    // Each node's membership gauge sees all three.
    for node in nodes {
        eventually(
            "three members on the gauge",
            Duration::from_secs(30),
            async || {
                let m = node.metrics(&client).await;
                (metric_value(&m, "sentinel_cluster_members") == 3.0).then_some(())
            },
        )
        .await;
    }
}

/// A member trusts a verified key for an hour here, so only the revocation notice can make it
/// refuse the key at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_the_store_host_is_refused_at_once_by_every_member() {
    let admin = support::admin_client();
    let [host, second] = ["k1", "k2"].map(ClusterMember::new);
    let k1 = start_node(&host, None, None).await;
    let config = second.dir.path().join("keys.toml");
    std::fs::write(&config, "[auth]\nstored_key_recheck_secs = 3600\n").unwrap();
    let mut args = member_args(&second, None, Some(&host));
    args.extend(["--config".into(), config.display().to_string()]);
    let k2 = second.start(&args).await;
    // The member joins the key listeners' group before it describes itself to the view.
    members_seen(&admin, &k1, 2).await;

    let created: Value = admin
        .post(k1.url("/v1/keys"))
        .json(&json!({"name": "checkout", "role": "ingest"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (key, id) = (
        created["key"].as_str().unwrap(),
        created["id"].as_str().unwrap(),
    );
    let producer = support::client_with(&format!("ApiKey {key}"));
    let score = async |node: &NodeProcess, txn: &str| {
        producer
            .post(node.url("/v1/transactions"))
            .json(&event(txn, "u-key", "20.00", 1, "FR"))
            .send()
            .await
            .unwrap()
            .status()
    };
    // The member reads the key from the host's store once and keeps it.
    for i in 0..3 {
        assert_eq!(score(&k2, &format!("key-before-{i}")).await, 200);
    }

    let revoked = admin
        .delete(k1.url(&format!("/v1/keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(score(&k2, "key-after-member").await, 401);
    assert_eq!(score(&k1, "key-after-host").await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_the_wrong_cookie_never_reaches_the_store() {
    let host = ClusterMember::new("c1");
    let _c1 = start_node(&host, None, None).await;
    let intruder = ClusterMember::new("c2");
    let mut args = member_args(&intruder, None, Some(&host));
    let cookie = args.iter().position(|a| a == COOKIE).unwrap();
    args[cookie] = "wrong-cookie".into();
    let log = intruder.refused(&args, 3);
    assert!(log.contains("did not join the cluster"), "{log}");
}

/// One node's count of a labelled owner-routing counter.
async fn routed(client: &reqwest::Client, node: &NodeProcess, metric: &str, result: &str) -> f64 {
    let m = node.metrics(client).await;
    metric_value(&m, &format!("{metric}{{result=\"{result}\"}}"))
}

/// Live user actors per member, by node name.
async fn live_actors(client: &reqwest::Client, node: &NodeProcess) -> BTreeMap<String, u64> {
    let view = cluster_view(client, node).await;
    view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["node"].as_str().unwrap().to_owned(),
                m["live_actors"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_scoring_on_any_node_is_decided_by_the_partition_owner_or_refused() {
    const FORWARDS: &str = "sentinel_owner_route_forwards_total";
    const RECEIVED: &str = "sentinel_owner_route_received_total";
    let broker = broker_with_topics().await;
    let client = support::admin_client();
    let [host, second, third] = ["h1", "h2", "h3"].map(ClusterMember::new);
    let h1 = start_node(&host, Some(&broker), None).await;
    let h2 = start_node(&second, Some(&broker), Some(&host)).await;
    let mut h3 = start_node(&third, Some(&broker), Some(&host)).await;
    settled_ownership(&client, &h1, 3).await;
    let nodes = [("h1", &h1), ("h2", &h2), ("h3", &h3)];

    // Every user's first event goes to h2; which member decided it shows on the counters:
    // h2's forwards (and the owner's received) grow unless h2 owns the user's partition.
    let post = async |node: &NodeProcess, body: &Value| {
        client
            .post(node.url("/v1/transactions"))
            .json(body)
            .send()
            .await
            .unwrap()
    };
    let mut decided_by: BTreeMap<String, &str> = BTreeMap::new();
    let mut u = 0;
    while ["h1", "h2", "h3"]
        .iter()
        .any(|n| !decided_by.values().any(|d| d == n))
    {
        assert!(u < 60, "users spread over every owner: {decided_by:?}");
        let user = format!("routed-{u}");
        let mut before = BTreeMap::new();
        for (name, node) in nodes {
            before.insert(name, routed(&client, node, RECEIVED, "decided").await);
        }
        let r = post(&h2, &event(&format!("{user}-0"), &user, "40.00", 3, "FR")).await;
        assert_eq!(r.status(), 200);
        let mut owner = "h2";
        for (name, node) in nodes {
            if routed(&client, node, RECEIVED, "decided").await > before[name] {
                owner = name;
            }
        }
        decided_by.insert(user, owner);
        u += 1;
    }
    let forwarded = decided_by.values().filter(|n| **n != "h2").count() as f64;
    assert_eq!(
        routed(&client, &h2, FORWARDS, "decided").await,
        forwarded,
        "{decided_by:?}"
    );
    // Exactly one actor per user in the whole cluster, on the node that decided it.
    let live = live_actors(&client, &h1).await;
    for name in ["h1", "h2", "h3"] {
        let owned = decided_by.values().filter(|n| **n == name).count() as u64;
        assert_eq!(live[name], owned, "{name}: {live:?} for {decided_by:?}");
    }

    // A second event of each user through another node continues the owner's actor.
    for (user, owner) in &decided_by {
        let via = if *owner == "h3" { &h1 } else { &h3 };
        let r = post(via, &event(&format!("{user}-1"), user, "45.00", 2, "FR")).await;
        assert_eq!(r.status(), 200);
        let d: Value = r.json().await.unwrap();
        assert_eq!(d["user_seq"], 2, "{user}: {d}");
        assert_eq!(d["duplicate"], false);
    }
    assert_eq!(live_actors(&client, &h2).await, live, "no new actors");
    // The same transaction again, through yet another node: the decision of record.
    let (user, _) = decided_by.iter().find(|(_, o)| **o == "h3").unwrap();
    let again: Value = post(&h2, &event(&format!("{user}-1"), user, "45.00", 2, "FR"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["duplicate"].as_bool(), again["user_seq"].as_u64()),
        (Some(true), Some(2))
    );
    // Idempotency-Key answers replay on the receiving node for a forwarded request.
    let keyed = event(&format!("{user}-keyed"), user, "46.00", 1, "FR");
    let post_keyed = async || {
        let r = client
            .post(h2.url("/v1/transactions"))
            .header("idempotency-key", "owner-route-key")
            .json(&keyed)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r
    };
    let first: Value = post_keyed().await.json().await.unwrap();
    let replay = post_keyed().await;
    assert!(replay.headers().contains_key("idempotent-replayed"));
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(first["user_seq"], 3);

    // The owner frozen: h2 forwards, gets no answer, refuses with 503 and decides nothing.
    let h2_actors = live_actors(&client, &h1).await["h2"];
    let stop = |signal: &str| {
        let status = std::process::Command::new("kill")
            .args([signal, &h3.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let frozen = event(&format!("{user}-frozen"), user, "47.00", 1, "FR");
    stop("-STOP");
    let r = post(&h2, &frozen).await;
    let refused = (r.status(), r.headers().get("retry-after").cloned());
    let body: Value = r.json().await.unwrap();
    let stored_meanwhile = h1.decision(&client, &format!("{user}-frozen")).await;
    let unreachable = routed(&client, &h2, FORWARDS, "unreachable").await;
    stop("-CONT");
    assert_eq!(refused.0, 503, "{body}");
    assert_eq!(refused.1.as_ref().map(|v| v.to_str().unwrap()), Some("1"));
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{body}"
    );
    assert_eq!(unreachable, 1.0);
    assert!(
        stored_meanwhile.is_none(),
        "decided while the owner was frozen"
    );
    // Once thawed, a retry with the same transaction is decided once, by the owner.
    let retried: Value = eventually("the retry decided", Duration::from_secs(30), async || {
        let r = post(&h2, &frozen).await;
        (r.status() == 200).then_some(())?;
        r.json().await.ok()
    })
    .await;
    assert_eq!(retried["user_seq"], 4, "{retried}");
    let live_after = live_actors(&client, &h1).await;
    assert_eq!(live_after["h2"], h2_actors, "{live_after:?}");
    assert_eq!(live_after, live, "still one actor per user");

    // The owner killed: nobody owns its partitions (tansu keeps them with the dead member), so
    // h2 answers 503 and decides nothing.
    h3.kill();
    let gone = event(&format!("{user}-gone"), user, "48.00", 1, "FR");
    let r = post(&h2, &gone).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("partition"),
        "{body}"
    );
    assert!(h1
        .decision(&client, &format!("{user}-gone"))
        .await
        .is_none());
    let live_after = live_actors(&client, &h1).await;
    assert_eq!(live_after.get("h2"), Some(&h2_actors), "{live_after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_listening_on_ipv6_reach_each_other_through_a_seed() {
    let client = support::admin_client();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let address = |i: usize| format!("[::1]:{}", ports[i]);
    let start = async |i: usize, seed: Option<usize>| {
        let name = format!("six{}", i + 1);
        let mut args = vec![
            "--node-name".to_owned(),
            name,
            "--cluster-listen".to_owned(),
            address(i),
            "--cluster-cookie".to_owned(),
            COOKIE.to_owned(),
        ];
        if let Some(seed) = seed {
            args.extend([
                "--cluster-seeds".to_owned(),
                address(seed),
                "--store-host".to_owned(),
                "six1".to_owned(),
            ]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        NodeProcess::start(dirs[i].path(), &args).await
    };
    let _host = start(0, None).await;
    let _second = start(1, Some(0)).await;
    // The third knows only the second: it meets the store host at the address the host
    // advertises (`[::1]:port`; the unit test in node/src/cluster.rs pins the brackets, which
    // Rust's resolver would forgive but other parsers of the address would not).
    let third = start(2, Some(1)).await;
    members_seen(&client, &third, 3).await;
    let r = client
        .post(third.url("/v1/transactions"))
        .json(&event("six-1", "six-user", "10.00", 1, "FR"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "decided and stored through the host");
}

/// A member whose session to the store host is lost (the host restarted) dials it again:
/// its decisions fail while the host is away and succeed again once it is back, without
/// restarting the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_redials_a_restarted_store_host() {
    let client = support::admin_client();
    let [host, member] = ["s1", "s2"].map(ClusterMember::new);
    let mut s1 = start_node(&host, None, None).await;
    let s2 = start_node(&member, None, Some(&host)).await;
    let decide = async |txn: &str| {
        client
            .post(s2.url("/v1/transactions"))
            .json(&event(txn, &format!("u-{txn}"), "20.00", 1, "FR"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(decide("before").await, 200);

    s1.kill();
    let s1 = start_node(&host, None, None).await;
    let mut attempt = 0;
    eventually(
        "decisions through the restarted host",
        Duration::from_secs(30),
        async || {
            attempt += 1;
            (decide(&format!("after-{attempt}")).await == 200).then_some(())
        },
    )
    .await;
    assert!(
        s1.decision(&client, &format!("after-{attempt}"))
            .await
            .is_some(),
        "stored by the restarted host"
    );
    assert!(s2
        .log_text()
        .contains("lost the cluster session; re-dialling"));
}

/// Decisions counted into `node`'s entity-risk index so far: (observed, read).
async fn entity_index_counts(client: &reqwest::Client, node: &NodeProcess) -> (f64, f64) {
    let metrics = node.metrics(client).await;
    let counted = |source: &str| {
        let series = format!("sentinel_entity_index_decisions_total{{source=\"{source}\"}}");
        metric_value(&metrics, &series)
    };
    (counted("observed"), counted("read"))
}

/// The store host's entity-risk index counts every decision a member stores through it, each
/// exactly once: told by the host's own store service as the write commits (not read back from
/// the store), and never again when later passes re-scan the recent decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_host_counts_each_members_decision_once_in_its_entity_index() {
    let client = support::admin_client();
    let [host, member] = ["e1", "e2"].map(ClusterMember::new);
    // A refresh pass every second, so that several re-scan the same decisions.
    let start = async |node: &ClusterMember, store_host: Option<&ClusterMember>| {
        let config = node.dir.path().join("refresh.toml");
        std::fs::write(&config, "[model]\nlabel_refresh_secs = 1\n").unwrap();
        let mut args = member_args(node, None, store_host);
        args.extend(["--config".into(), config.display().to_string()]);
        node.start(&args).await
    };
    let e1 = start(&host, None).await;
    let e2 = start(&member, Some(&host)).await;
    let decide = async |txn: &str| {
        let r = client
            .post(e2.url("/v1/transactions"))
            .json(&event(txn, &format!("u-{txn}"), "20.00", 1, "FR"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{txn}");
    };
    let counted_everything = async |node: &NodeProcess, total: f64| {
        eventually(
            &format!("{total} decisions counted"),
            Duration::from_secs(30),
            async || {
                let (observed, read) = entity_index_counts(&client, node).await;
                (observed + read >= total).then_some((observed, read))
            },
        )
        .await
    };

    const DECIDED: usize = 20;
    for i in 0..DECIDED {
        decide(&format!("member-{i}")).await;
    }
    counted_everything(&e1, DECIDED as f64).await;
    // One more, counted by a later pass: that pass and the ones before it re-scanned the first
    // twenty (the last two minutes of decisions) and must not have counted them again.
    decide("one-more").await;
    let (observed, read) = counted_everything(&e1, DECIDED as f64 + 1.0).await;
    assert_eq!(
        observed + read,
        DECIDED as f64 + 1.0,
        "counted more than once (observed {observed}, read {read})"
    );
    // Three more passes re-scan all of them again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (observed, read) = entity_index_counts(&client, &e1).await;
    assert_eq!(
        observed + read,
        DECIDED as f64 + 1.0,
        "counted again by a later pass (observed {observed}, read {read})"
    );
    // Told by its store service as they commit; reading back is only for a decision committed
    // while a pass was scanning.
    assert!(
        observed > read,
        "the host read back what its members stored (observed {observed}, read {read})"
    );
    // The member counts its own decisions from its writer, also once each.
    let (observed, read) = counted_everything(&e2, DECIDED as f64 + 1.0).await;
    assert_eq!(observed + read, DECIDED as f64 + 1.0);
    assert!(observed > read, "observed {observed}, read {read}");
}

/// Events at the documented payload maximum (64 KiB, nearly all of it `metadata`) cross the
/// cluster to the store host and back: 300 of them are ~18 MiB, more than one ractor_cluster
/// frame may carry (16 MiB, beyond which the session is closed), so writes and reads go in
/// pieces, and the session survives for the next decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_metadata_crosses_the_cluster_in_frames_below_the_limit() {
    let client = support::admin_client();
    let [host, member] = ["f1", "f2"].map(ClusterMember::new);
    let _f1 = start_node(&host, None, None).await;
    let f2 = start_node(&member, None, Some(&host)).await;
    let note = "m".repeat(60_000);
    let posts = (0..300).map(|i| {
        let mut body = event(&format!("big-{i}"), "heavy", "10.00", i, "FR");
        body["metadata"] = json!({ "note": note });
        let request = client.post(f2.url("/v1/transactions")).json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses: Vec<u16> = futures::stream::iter(posts)
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let listed = get_json(&client, &f2, "/v1/users/heavy/decisions?limit=1000").await;
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 300);
    assert_eq!(
        listed[299]["event"]["metadata"]["note"]
            .as_str()
            .unwrap()
            .len(),
        60_000
    );
    let r = client
        .post(f2.url("/v1/transactions"))
        .json(&event("after-big", "light", "10.00", 1, "FR"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the session to the store host is still there"
    );
}

/// A node that keeps partitions through a rebalance keeps their users' actors warm: after a
/// second node joins, the first decides the next event of every user it kept without a
/// restore from the store (only the users of partitions it gave away were passivated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_passivates_only_the_users_of_partitions_that_moved() {
    const STORED: &str = "sentinel_store_decisions_stored_total";
    const PASSIVATED: &str = "sentinel_user_actor_passivations_total";
    const RESTORED: &str = "sentinel_user_actor_restores_total";
    const USERS: usize = 24;
    let broker = broker_with_topics().await;
    let client = support::admin_client();
    let [host, second] = ["k1", "k2"].map(ClusterMember::new);
    let n1 = start_node(&host, Some(&broker), None).await;
    settled_ownership(&client, &n1, 1).await;

    let start = chrono::Utc::now() - chrono::Duration::minutes(20);
    let producer = broker.producer();
    let mut produced: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    produce_round(&broker, &producer, "keeper", USERS, 0, start, &mut produced).await;
    eventually(
        "the first round decided",
        Duration::from_secs(60),
        async || {
            let m = n1.metrics(&client).await;
            (metric_value(&m, STORED) == USERS as f64).then_some(())
        },
    )
    .await;

    let n2 = start_node(&second, Some(&broker), Some(&host)).await;
    settled_ownership(&client, &n1, 2).await;
    eventually(
        "k1 settled the rebalance",
        Duration::from_secs(60),
        async || {
            let m = n1.metrics(&client).await;
            (metric_value(&m, PASSIVATED) > 0.0).then_some(())
        },
    )
    .await;
    let restores_before = metric_value(&n1.metrics(&client).await, RESTORED);

    produce_round(&broker, &producer, "keeper", USERS, 1, start, &mut produced).await;
    let (m1, m2) = eventually(
        "the second round decided",
        Duration::from_secs(60),
        async || {
            let (m1, m2) = (n1.metrics(&client).await, n2.metrics(&client).await);
            let total = metric_value(&m1, STORED) + metric_value(&m2, STORED);
            (total == 2.0 * USERS as f64).then_some((m1, m2))
        },
    )
    .await;
    let kept_users = metric_value(&m1, STORED) - USERS as f64;
    assert!(kept_users > 0.0, "k1 kept partitions with users: {m2}");
    assert_eq!(
        metric_value(&m1, RESTORED),
        restores_before,
        "a user of a partition k1 kept was restored from the store: its actor had been passivated"
    );
    assert_eq!(
        metric_value(&m1, PASSIVATED),
        USERS as f64 - kept_users,
        "only the users of the partitions k1 gave away were passivated"
    );
}

/// Revoked partitions are handed over only once their in-flight events are decided and their
/// offsets committed: while a stream floods the first node, a second joins, and no event is
/// redelivered to either (before, the old owner's in-flight events were decided again by the
/// new owner, and their offset stores failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_hands_partitions_over_only_after_their_events_are_decided() {
    const STORED: &str = "sentinel_store_decisions_stored_total";
    const REDELIVERED: &str = "sentinel_redelivered_events_total";
    const DUPLICATES: &str = "sentinel_store_decisions_duplicate_total";
    const DRAIN_TIMEOUTS: &str = "sentinel_kafka_revoke_drain_timeouts_total";
    let broker = std::sync::Arc::new(broker_with_topics().await);
    let client = support::admin_client();
    let [host, second] = ["r1", "r2"].map(ClusterMember::new);
    let start_member = async |member: &ClusterMember, host: Option<&ClusterMember>| {
        let args = member_args(member, Some(&broker), host);
        // A bound on events in flight keeps each drain short.
        std::fs::write(
            member.dir.path().join("static-member.toml"),
            format!(
                "[kafka]\nmax_in_flight = 256\n[kafka.options]\n\"group.instance.id\" = \"{}\"\n",
                member.name
            ),
        )
        .unwrap();
        member.start(&args).await
    };
    let n1 = start_member(&host, None).await;
    settled_ownership(&client, &n1, 1).await;

    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flood = tokio::spawn({
        let (broker, flooding) = (
            std::sync::Arc::clone(&broker),
            std::sync::Arc::clone(&flooding),
        );
        async move {
            let producer = broker.producer();
            // Rounds are 20 s apart in event time: room for a thousand before the present.
            let start = chrono::Utc::now() - chrono::Duration::hours(6);
            let mut produced = BTreeMap::new();
            let mut round = 0;
            while flooding.load(std::sync::atomic::Ordering::SeqCst) || round < 5 {
                produce_round(
                    &broker,
                    &producer,
                    "flood",
                    200,
                    round,
                    start,
                    &mut produced,
                )
                .await;
                round += 1;
            }
            round * 200
        }
    });
    eventually(
        "r1 deciding the flood",
        Duration::from_secs(60),
        async || {
            let m = n1.metrics(&client).await;
            (metric_value(&m, STORED) > 100.0).then_some(())
        },
    )
    .await;
    let n2 = start_member(&second, Some(&host)).await;
    settled_ownership(&client, &n1, 2).await;
    flooding.store(false, std::sync::atomic::Ordering::SeqCst);
    let produced = flood.await.unwrap() as f64;

    let (m1, m2) = eventually(
        "every event decided",
        Duration::from_secs(120),
        async || {
            let (m1, m2) = (n1.metrics(&client).await, n2.metrics(&client).await);
            (metric_value(&m1, STORED) + metric_value(&m2, STORED) == produced).then_some((m1, m2))
        },
    )
    .await;
    assert!(metric_value(&m2, STORED) > 0.0, "r2 took partitions over");
    for (name, m) in [("r1", &m1), ("r2", &m2)] {
        assert_eq!(
            metric_value(m, DRAIN_TIMEOUTS),
            0.0,
            "{name} hit the drain limit"
        );
        assert_eq!(
            metric_value(m, REDELIVERED) + metric_value(m, DUPLICATES),
            0.0,
            "{name} was redelivered events another owner had already decided"
        );
    }
}

/// A revoke whose events do not finish within the drain limit is handed over anyway, counted,
/// and the held event still ends with exactly one decision.
///
/// Dynamic membership here: against tansu 0.6 a static member (`group.instance.id`) that
/// rejoins seconds late leaves the group rebalancing without end (seen 2026-12-04).
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_past_the_drain_limit_is_handed_over_and_counted() {
    const DRAIN_TIMEOUTS: &str = "sentinel_kafka_revoke_drain_timeouts_total";
    let broker = broker_with_topics().await;
    let client = support::admin_client();
    let [host, second] = ["s1", "s2"].map(ClusterMember::new);
    let dynamic = async |member: &ClusterMember, host: Option<&ClusterMember>| {
        let args = member_args(member, Some(&broker), host);
        std::fs::write(member.dir.path().join("static-member.toml"), "").unwrap();
        member.start(&args).await
    };
    let n1 = dynamic(&host, None).await;
    settled_ownership(&client, &n1, 1).await;
    let release = host.dir.path().join("release-stalled-event");
    let mut stalled = event("stall-0", "stall-user", "10", 5, "FR");
    stalled["metadata"] = json!({
        "sentinel_failpoint": "stall",
        "release_file": release.display().to_string(),
    });
    let producer = broker.producer();
    broker
        .produce(
            &producer,
            INPUT,
            "stall-user",
            stalled.to_string().as_bytes(),
        )
        .await;
    eventually(
        "the stalled event in flight",
        Duration::from_secs(60),
        async || {
            let m = n1.metrics(&client).await;
            (metric_value(&m, "sentinel_events_in_flight") >= 1.0).then_some(())
        },
    )
    .await;

    let _n2 = dynamic(&second, Some(&host)).await;
    eventually("the drain limit hit", Duration::from_secs(90), async || {
        let m = n1.metrics(&client).await;
        (metric_value(&m, DRAIN_TIMEOUTS) >= 1.0).then_some(())
    })
    .await;
    // Passivating the stalled user's actor waits for its decision, so release it now.
    std::fs::write(&release, b"").unwrap();
    settled_ownership(&client, &n1, 2).await;
    let decisions = eventually(
        "the stalled event decided",
        Duration::from_secs(60),
        async || {
            let d = n1.user_decisions(&client, "stall-user").await;
            (!d.is_empty()).then_some(d)
        },
    )
    .await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["transaction_id"], "stall-0");
}
