//! Choosing the store backend, and the maintenance commands on a stopped node's store.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use sentinel_testkit as support;

/// Runs `sentinel ARGS --data-dir DIR` to the end.
fn sentinel_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sentinel"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("SENTINEL_AUTH_JWT_SECRET", support::TEST_JWT_SECRET)
        .output()
        .unwrap()
}

/// Runs `sentinel run ARGS` on `dir`, expected to refuse to start: its output once it exits,
/// or a failure if it is still running after a minute.
async fn run_refused(dir: &Path, args: &[&str]) -> Output {
    let http = format!("127.0.0.1:{}", support::free_port());
    let mut run = tokio::process::Command::new(env!("CARGO_BIN_EXE_sentinel"));
    run.args(["run", "--http-listen", &http])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("SENTINEL_AUTH_JWT_SECRET", support::TEST_JWT_SECRET)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), run.output())
        .await
        .expect("the node started instead of refusing")
        .unwrap()
}

/// Posts one event of `user` for each of `events` (transaction ids `<user>-<i>`) and checks
/// each is decided.
async fn decide(
    client: &reqwest::Client,
    node: &support::NodeProcess,
    user: &str,
    events: std::ops::Range<i64>,
) {
    for i in events {
        let answer = client
            .post(node.url("/v1/transactions"))
            .json(&support::event(&format!("{user}-{i}"), user, "10", i, "FR"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
}

/// A node told to use a ScyllaDB that is not there stops at start-up with an error naming
/// the store and the address, instead of running without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scylla_store_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("127.0.0.1:{}", support::free_port());
    let http = format!("127.0.0.1:{}", support::free_port());
    let mut child = tokio::process::Command::from({
        let mut c = Command::new(env!("CARGO_BIN_EXE_sentinel"));
        c.arg("run")
            .args(["--http-listen", &http])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--scylla-nodes", &nowhere])
            .env("SENTINEL_AUTH_JWT_SECRET", support::TEST_JWT_SECRET);
        c
    });
    child.stdout(std::process::Stdio::piped());
    child.stderr(std::process::Stdio::piped());
    let output = tokio::time::timeout(Duration::from_secs(120), child.output())
        .await
        .expect("the node gave up on the unreachable store")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("opening the ScyllaDB store") && stderr.contains(&nowhere),
        "{stderr}"
    );
    for engine in ["sentinel.redb", "sentinel.lsm"] {
        assert!(
            !dir.path().join(engine).exists(),
            "fell back to the embedded store"
        );
    }
}

/// `sentinel compact` on a stopped node's store keeps every decision and the log intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacting_a_stopped_nodes_store_keeps_its_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = support::NodeProcess::start(dir.path(), &[]).await;
    let client = support::admin_client();
    decide(&client, &node, "c-user", 0..20).await;
    assert_eq!(node.terminate(), Some(0));

    let out = sentinel_in(dir.path(), &["compact"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("compacted") && stderr.contains("bytes"),
        "{stderr}"
    );
    let out = sentinel_in(dir.path(), &["verify-log"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert_eq!(report["verified"], 20);
    assert_eq!(report["first_seq"], 1);

    let node = support::NodeProcess::start(dir.path(), &["--log-format", "json"]).await;
    assert_eq!(node.user_decisions(&client, "c-user").await.len(), 20);

    // The node logs its head at start-up: the hash an operator keeps elsewhere, which
    // `verify-log --expect-head` then finds in the chain; a head the chain never had fails.
    let kept = report["head"].as_str().unwrap().to_owned();
    let log = node.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("decision log head"))
        .unwrap_or_else(|| panic!("no head line: {log}"));
    assert!(
        line.contains(&kept) && line.contains("\"position\":20"),
        "{line}"
    );
    let mut node = node;
    assert_eq!(node.terminate(), Some(0));
    let out = sentinel_in(dir.path(), &["verify-log", "--expect-head", &kept]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forged = "ab".repeat(32);
    let out = sentinel_in(dir.path(), &["verify-log", "--expect-head", &forged]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["problem"]["kind"], "expected_head_missing",
        "{report}"
    );
}

/// An operator moves a node from the redb file (the default of earlier releases) to the
/// log-structured engine: a node with no engine configured keeps using the redb store it
/// finds; one told to use `lsm` beside it refuses to start empty and says how to migrate;
/// `sentinel migrate-store` moves every decision with its log; the node, still with no engine
/// configured, then opens the `lsm` store, serves the history and decides on top of it, and
/// the maintenance commands find the new store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_moves_to_the_lsm_engine_with_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let client = support::admin_client();
    let mut node = support::NodeProcess::start(dir.path(), &["--store-engine", "redb"]).await;
    decide(&client, &node, "m-user", 0..10).await;
    assert_eq!(node.terminate(), Some(0));
    let mut node = support::NodeProcess::start(dir.path(), &[]).await;
    assert_eq!(node.user_decisions(&client, "m-user").await.len(), 10);
    decide(&client, &node, "m-user", 10..20).await;
    assert_eq!(node.terminate(), Some(0));
    assert!(!dir.path().join("sentinel.lsm").exists());

    let out = run_refused(dir.path(), &["--store-engine", "lsm"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started on an empty store: {stderr}");
    assert!(stderr.contains("migrate-store"), "{stderr}");
    assert!(!dir.path().join("sentinel.lsm").exists());

    let out = sentinel_in(dir.path(), &["migrate-store", "--to", "lsm"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("moved 20 decisions"), "{stderr}");
    assert!(dir.path().join("sentinel.redb.migrated").exists());

    let mut node = support::NodeProcess::start(dir.path(), &[]).await;
    assert_eq!(node.user_decisions(&client, "m-user").await.len(), 20);
    decide(&client, &node, "m-user", 20..21).await;
    assert_eq!(node.user_decisions(&client, "m-user").await.len(), 21);
    assert_eq!(node.terminate(), Some(0));

    let out = sentinel_in(dir.path(), &["verify-log"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{report}");
    assert_eq!(report["verified"], 21);
    let out = sentinel_in(dir.path(), &["compact"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stderr).contains("sentinel.lsm"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A store that comes back shorter than the node saw it is refused, not decided on afresh:
/// garbage over the start of the fjall journal (where every decision since the last flush
/// lives) makes fjall drop the journal as a torn tail and open an empty store without an
/// error of its own; the watermark beside it (`sentinel.head`) catches that. Deleting the
/// watermark is how an operator accepts an older store on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_lost_acknowledged_decisions_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let client = support::admin_client();
    let mut node = support::NodeProcess::start(dir.path(), &[]).await;
    decide(&client, &node, "w-user", 0..5).await;
    // The watermark follows the head every few seconds.
    let watermark = dir.path().join("sentinel.head");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&watermark).is_ok_and(|t| t.starts_with("5 ")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no watermark at position 5"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(node.terminate(), Some(0));

    let lsm = dir.path().join("sentinel.lsm");
    let mut journals = 0;
    for entry in std::fs::read_dir(&lsm).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jnl") {
            let mut bytes = std::fs::read(&path).unwrap();
            let end = bytes.len().min(4096);
            bytes[..end].fill(0xA5);
            std::fs::write(&path, bytes).unwrap();
            journals += 1;
        }
    }
    assert!(journals > 0, "no fjall journal in {}", lsm.display());

    let out = run_refused(dir.path(), &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("lost decisions") && stderr.contains("position 5"),
        "{stderr}"
    );

    // Accepted on purpose: the node starts on what the store holds.
    std::fs::remove_file(&watermark).unwrap();
    let mut node = support::NodeProcess::start(dir.path(), &[]).await;
    assert!(node.user_decisions(&client, "w-user").await.len() < 5);
    assert_eq!(node.terminate(), Some(0));
}
