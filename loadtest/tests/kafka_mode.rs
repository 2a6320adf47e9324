//! Kafka mode against a real tansu broker and a real `sentinel` node: events go to
//! `transactions` with the load generator's headers, every one comes back decided on the
//! output topics, and the labels stay out of the events.

mod common;

use common::{labelled_ids, options, Broker, Node};
use sentinel_loadtest::loadgen::kafka::KafkaTarget;
use sentinel_loadtest::loadgen::{self, Interrupts, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_mode_against_a_real_broker_and_node() {
    let broker = Broker::start().await;
    broker
        .create_topics(
            &[
                "transactions",
                "transactions_approved",
                "transactions_fraud",
                "transactions_dlq",
            ],
            4,
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--kafka-brokers", &broker.address]).await;
    let opts = options(dir.path(), 200.0, 5, 0.05);
    let target = Target::Kafka(KafkaTarget {
        brokers: broker.address.clone(),
        topic: "transactions".into(),
        approved_topic: "transactions_approved".into(),
        fraud_topic: "transactions_fraud".into(),
        options: Vec::new(),
    });
    let result = loadgen::run(&opts, &target, Interrupts::default())
        .await
        .unwrap();
    let report = &result.report;

    assert!(result.written.json.is_file());
    assert!(result.written.svg.is_file());
    assert_eq!(report.mode, "kafka");
    assert!(report.sent > 0);
    assert_eq!(report.decided, report.sent, "{:?}", report.failed);
    assert_eq!(report.undecided, 0);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let flagged_labelled: u64 = report
        .detection
        .scenarios
        .iter()
        .map(|s| s.counts.flagged)
        .sum();
    assert_eq!(flagged_labelled, report.detection.labelled_flagged);

    // The node stored every labelled event without a trace of its label.
    let labelled = labelled_ids(&opts, report.sent);
    assert!(!labelled.is_empty());
    let client = common::admin_client();
    for (id, scenario) in &labelled {
        let decision = node.decision(&client, id).await;
        assert!(decision["event"].get("metadata").is_none(), "{decision}");
        assert!(
            !decision["event"].to_string().contains(scenario.as_str()),
            "{decision}"
        );
    }
}
