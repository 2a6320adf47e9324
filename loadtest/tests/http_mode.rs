//! HTTP mode against a real `sentinel` node process: every sent event is decided, the report
//! files are written, and the fraud labels never reach the node.

mod common;

use common::{labelled_ids, options, Node};
use sentinel_loadtest::loadgen::http::{Credential, HttpTarget};
use sentinel_loadtest::loadgen::{self, Interrupts, Target};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_against_a_real_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]).await;
    let opts = options(dir.path(), 200.0, 5, 0.05);
    let target = Target::Http(HttpTarget {
        url: node.base.clone(),
        concurrency: 16,
        credential: Some(Credential::ApiKey(common::INGEST_KEY.to_owned())),
    });
    let result = loadgen::run(&opts, &target, Interrupts::default())
        .await
        .unwrap();
    let report = &result.report;

    // The files exist and the JSON is the report.
    assert!(result.written.svg.is_file());
    let svg = std::fs::read_to_string(&result.written.svg).unwrap();
    assert!(svg.contains("<polyline"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&result.written.json).unwrap()).unwrap();
    assert_eq!(json["sent"], report.sent);
    assert_eq!(json["mode"], "http");

    // Every sent event got a decision.
    assert!(report.sent > 0);
    assert_eq!(report.decided, report.sent, "{:?}", report.failed);
    assert_eq!(report.undecided, 0);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.latency_ms.count, report.sent);
    let labelled_sent: u64 = report
        .detection
        .scenarios
        .iter()
        .map(|s| s.counts.sent)
        .sum();
    assert!(labelled_sent > 0, "fraud ratio 0.05 labels some events");

    // Labels never reached the node: the labelled events' stored events carry no metadata, and
    // nothing in them names a scenario (rule names in the reasons may coincide with scenario
    // names, so only the event is searched).
    let labelled = labelled_ids(&opts, report.sent);
    assert_eq!(
        labelled.len() as u64,
        labelled_sent,
        "the replay matches the run"
    );
    let client = common::admin_client();
    for (id, scenario) in &labelled {
        let decision = node.decision(&client, id).await;
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
