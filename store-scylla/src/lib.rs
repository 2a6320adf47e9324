//! SentinelStream's ScyllaDB backend: the [`sentinel_store::Store`] contract over CQL, for
//! clusters whose nodes share one store.
//!
//! - [`ScyllaConfig`]: contact points, keyspace, replication, consistency, retention, and the
//!   bound on requests in flight.
//! - [`migrations`]: the CQL schema shipped in `schema/`, applied at start-up as versioned,
//!   idempotent migrations (several nodes may start at once).
//! - [`ScyllaStore`]: prepared statements only (so the driver routes each request to a replica
//!   owning its partition), decisions written once with lightweight transactions, per-query
//!   tables kept in step, and a semaphore bounding what is in flight.
//!
//! The same conformance suite as the embedded store runs against it with `--ignored` when
//! `SENTINEL_TEST_SCYLLA_URI` names a ScyllaDB node (see `tests/conformance.rs`).

mod config;
mod day;
pub mod migrations;
mod store;

pub use config::ScyllaConfig;
pub use store::ScyllaStore;
