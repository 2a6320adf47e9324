//! The storage conformance suite (the same one the embedded store passes in CI), against a live
//! ScyllaDB when `SENTINEL_TEST_SCYLLA_URI` names a node, e.g.
//!
//! ```sh
//! ./scripts/compose-secrets   # the compose file needs its .env even for one service
//! docker compose up -d scylla
//! SENTINEL_TEST_SCYLLA_URI=127.0.0.1:9042 cargo test -p sentinel-store-scylla -- --ignored
//! ```
//!
//! Each check gets a fresh keyspace. The test is ignored unless asked for (`--ignored`): no
//! ScyllaDB can run on the project's CI machines, and the runner then reports it as ignored
//! rather than passed.

use sentinel_store::Store;
use sentinel_store_scylla::{ScyllaConfig, ScyllaStore};
use std::sync::Arc;

const URI_VARIABLE: &str = "SENTINEL_TEST_SCYLLA_URI";

async fn fresh_store(uri: String) -> Arc<dyn Store> {
    let keyspace = format!("sentinel_test_{}", uuid::Uuid::now_v7().simple());
    let config = ScyllaConfig {
        nodes: vec![uri],
        keyspace,
        replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}".into(),
        consistency: "one".into(),
        ..ScyllaConfig::default()
    };
    Arc::new(
        ScyllaStore::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("connecting to ScyllaDB at {:?}: {e}", config.nodes)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a live ScyllaDB node: SENTINEL_TEST_SCYLLA_URI=host:9042, run with --ignored"]
async fn scylla_passes_the_store_conformance_suite() {
    let uri = std::env::var(URI_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "the ScyllaDB conformance suite needs a live node: set {URI_VARIABLE}=host:9042 \
             (./scripts/compose-secrets && docker compose up -d scylla)"
        )
    });
    sentinel_store::conformance::run_all(|| fresh_store(uri.clone())).await;

    // Migrations are idempotent: connecting again to a migrated keyspace applies nothing
    // and fails nothing.
    let config = ScyllaConfig {
        nodes: vec![uri.clone()],
        keyspace: "sentinel_test_migrations".into(),
        replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}".into(),
        consistency: "one".into(),
        ..ScyllaConfig::default()
    };
    let (a, b) = tokio::join!(ScyllaStore::connect(&config), ScyllaStore::connect(&config));
    a.unwrap();
    b.unwrap();
    ScyllaStore::connect(&config).await.unwrap();
}
