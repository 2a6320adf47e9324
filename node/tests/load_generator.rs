//! The load generator (`sentinel-loadtest`, driven as a library) against a real `sentinel`
//! node: over HTTP every sent event is decided and the report files are written; over Kafka,
//! through a real tansu broker, events go to `transactions` with the load generator's headers
//! and every one comes back decided on the output topics. Either way the fraud labels never
//! reach the node.
//!
//! These tests belong to the load generator but live here: Cargo builds the node binary only
//! for the integration tests of its own package, with the features of the test build.

use sentinel_testkit as support;

use sentinel_loadtest::loadgen::http::{Credential, HttpTarget};
use sentinel_loadtest::loadgen::kafka::KafkaTarget;
use sentinel_loadtest::loadgen::{self, Interrupts, Population, RateSchedule, Target};
use sentinel_loadtest::loadgen::{RunResult, TrafficOptions};
use sentinel_simulator::{Scenario, TransactionIds};
use std::path::Path;
use support::{Broker, NodeProcess, NODE_TOPICS};

/// Five seconds of 200 events/s, 5 % of user turns fraudulent, the report under `dir`.
fn options(dir: &Path) -> TrafficOptions {
    TrafficOptions {
        schedule: RateSchedule::Steady { rate: 200.0 },
        duration_secs: 5,
        drain_secs: 60,
        seed: 7,
        users: 10_000,
        population: Population::Dense,
        fraud_ratio: 0.05,
        transaction_ids: TransactionIds::Sequential,
        p99_objective_ms: 200.0,
        report_dir: dir.join("report"),
        progress: true,
    }
}

/// The first `n` events the run sent, replayed from the same simulator configuration: the
/// ids of the labelled ones, with their scenarios.
fn labelled_ids(opts: &TrafficOptions, n: u64) -> Vec<(String, Scenario)> {
    let mut sim = opts.simulator(chrono::Utc::now());
    (0..n)
        .filter_map(|_| {
            let e = sim.next_event();
            e.label.map(|s| (e.txn.transaction_id, s))
        })
        .collect()
}

/// Runs `opts` through `broker`'s node topics; with `echo`, the load generator stands in for
/// the node.
async fn run_kafka(opts: &TrafficOptions, broker: &Broker, echo: bool) -> RunResult {
    let target = Target::Kafka(KafkaTarget {
        brokers: broker.address.clone(),
        topic: "transactions".into(),
        approved_topic: "transactions_approved".into(),
        fraud_topic: "transactions_fraud".into(),
        options: Vec::new(),
        echo,
    });
    loadgen::run(opts, &target, Interrupts::default())
        .await
        .unwrap()
}

/// Every sent event was decided, the report files exist, and the node stored every labelled
/// event without a trace of its label (rule names in the reasons may coincide with scenario
/// names, so only the event is searched).
async fn assert_decided_without_labels(
    result: &RunResult,
    opts: &TrafficOptions,
    node: &NodeProcess,
) {
    let report = &result.report;
    assert!(result.written.json.is_file());
    assert!(result.written.svg.is_file());
    assert!(report.sent > 0);
    assert_eq!(report.decided, report.sent, "{:?}", report.failed);
    assert_eq!(report.undecided, 0);
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let labelled = labelled_ids(opts, report.sent);
    let labelled_sent: u64 = report
        .detection
        .scenarios
        .iter()
        .map(|s| s.counts.sent)
        .sum();
    assert!(labelled_sent > 0, "fraud ratio 0.05 labels some events");
    assert_eq!(
        labelled.len() as u64,
        labelled_sent,
        "the replay matches the run"
    );
    let client = support::admin_client();
    for (id, scenario) in &labelled {
        let decision = node
            .decision(&client, id)
            .await
            .unwrap_or_else(|| panic!("no decision for {id}"));
        assert!(
            decision["event"].get("metadata").is_none(),
            "{id}: {decision}"
        );
        assert!(
            !decision["event"].to_string().contains(scenario.as_str()),
            "{id}: {decision}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_against_a_real_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&dir.path().join("node"), &[]).await;
    let opts = options(dir.path());
    let target = Target::Http(HttpTarget {
        url: node.url(""),
        concurrency: 16,
        credential: Some(Credential::ApiKey(support::TEST_INGEST_KEY.to_owned())),
    });
    let result = loadgen::run(&opts, &target, Interrupts::default())
        .await
        .unwrap();
    let report = &result.report;

    // The JSON file is the report.
    let svg = std::fs::read_to_string(&result.written.svg).unwrap();
    assert!(svg.contains("<polyline"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&result.written.json).unwrap()).unwrap();
    assert_eq!(json["sent"], report.sent);
    assert_eq!(json["mode"], "http");
    assert_eq!(report.latency_ms.count, report.sent);

    assert_decided_without_labels(&result, &opts, &node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_mode_against_a_real_broker_and_node() {
    let broker = Broker::start().await;
    broker.create_topics(&NODE_TOPICS, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(
        &dir.path().join("node"),
        &["--kafka-brokers", &broker.address],
    )
    .await;
    let opts = options(dir.path());
    let result = run_kafka(&opts, &broker, false).await;
    let report = &result.report;

    assert_eq!(report.mode, "kafka");
    let flagged_labelled: u64 = report
        .detection
        .scenarios
        .iter()
        .map(|s| s.counts.flagged)
        .sum();
    assert_eq!(flagged_labelled, report.detection.labelled_flagged);

    assert_decided_without_labels(&result, &opts, &node).await;
}

/// `--echo`: no node at all, the load generator republishes each event itself through the real
/// broker with the node's client settings; every event comes back (as an approval), its
/// latency is measured, and the report says no node decided anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_echo_measures_the_broker_without_a_node() {
    let broker = Broker::start().await;
    broker.create_topics(&NODE_TOPICS, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let result = run_kafka(&opts, &broker, true).await;
    let report = &result.report;

    assert_eq!(report.mode, "kafka-echo");
    assert!(report.sent > 0);
    assert_eq!(report.decided, report.sent, "{:?}", report.failed);
    assert_eq!(report.latency_ms.count, report.sent);
    assert_eq!(report.detection.labelled_flagged, 0, "an echo approves all");
    assert!(
        report.notes.iter().any(|n| n.contains("No node decided")),
        "{:?}",
        report.notes
    );
}
