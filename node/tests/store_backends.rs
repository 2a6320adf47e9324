//! Choosing the store backend from the command line.

use std::process::Command;
use std::time::Duration;

mod support;

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
            .args(["--scylla-nodes", &nowhere]);
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
    assert!(
        !dir.path().join("sentinel.redb").exists(),
        "fell back to the embedded store"
    );
}
