//! How to reach ScyllaDB and how to write to it.

use serde::Deserialize;

/// The `[store.scylla]` section of the node's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScyllaConfig {
    /// Contact points, `host:port` (the driver discovers the rest of the cluster).
    pub nodes: Vec<String>,
    /// Keyspace holding SentinelStream's tables; created when missing.
    pub keyspace: String,
    /// The keyspace's replication map in CQL, used only when creating it.
    pub replication: String,
    /// Consistency of reads and writes: `one`, `local_quorum`, `quorum`, `all` …
    pub consistency: String,
    /// Consistency of the compare-and-set that writes a decision once: `local_serial` or
    /// `serial`.
    pub serial_consistency: String,
    /// Days a decision is kept in every decision table (0 keeps them forever). Set from the
    /// node's `[store] retention_days`, which both backends honour.
    #[serde(skip)]
    pub decision_retention_days: u32,
    /// Days an idle user's snapshot is kept (0 keeps them forever).
    pub snapshot_retention_days: u32,
    /// Requests in flight at once from this node; further writes wait (backpressure).
    pub max_in_flight: usize,
    /// Optional username for password authentication.
    pub username: Option<String>,
    /// Optional password for password authentication.
    pub password: Option<String>,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        ScyllaConfig {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "sentinel".into(),
            replication: "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}".into(),
            consistency: "local_quorum".into(),
            serial_consistency: "local_serial".into(),
            decision_retention_days: 0,
            snapshot_retention_days: 0,
            max_in_flight: 1024,
            username: None,
            password: None,
        }
    }
}

impl ScyllaConfig {
    /// Checks what the driver would only reject later, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("store.scylla.nodes: at least one contact point is needed".into());
        }
        let valid_name = !self.keyspace.is_empty()
            && self.keyspace.len() <= 48
            && self
                .keyspace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !self.keyspace.starts_with('_');
        if !valid_name {
            return Err(format!(
                "store.scylla.keyspace: `{}` is not a CQL identifier (letters, digits, _; at most 48)",
                self.keyspace
            ));
        }
        if self.max_in_flight == 0 {
            return Err("store.scylla.max_in_flight: must be at least 1".into());
        }
        crate::store::consistency(&self.consistency)
            .map_err(|e| format!("store.scylla.consistency: {e}"))?;
        crate::store::serial_consistency(&self.serial_consistency)
            .map_err(|e| format!("store.scylla.serial_consistency: {e}"))?;
        Ok(())
    }

    /// Retention of decisions as a CQL TTL in seconds (0 = none).
    pub(crate) fn decision_ttl(&self) -> i32 {
        days_to_ttl(self.decision_retention_days)
    }

    /// Retention of snapshots as a CQL TTL in seconds (0 = none).
    pub(crate) fn snapshot_ttl(&self) -> i32 {
        days_to_ttl(self.snapshot_retention_days)
    }
}

/// CQL refuses TTLs above 20 years.
const MAX_TTL_SECS: u64 = 630_720_000;

fn days_to_ttl(days: u32) -> i32 {
    (u64::from(days) * 86_400).min(MAX_TTL_SECS) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_mistakes_name_their_field() {
        assert!(ScyllaConfig::default().validate().is_ok());
        let bad = ScyllaConfig {
            keyspace: "drop table;".into(),
            ..ScyllaConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .starts_with("store.scylla.keyspace"));
        let bad = ScyllaConfig {
            consistency: "most".into(),
            ..ScyllaConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .starts_with("store.scylla.consistency"));
        let bad = ScyllaConfig {
            nodes: vec![],
            ..ScyllaConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .starts_with("store.scylla.nodes"));
    }

    #[test]
    fn retention_becomes_a_ttl() {
        let config = ScyllaConfig {
            decision_retention_days: 400,
            ..ScyllaConfig::default()
        };
        assert_eq!(config.decision_ttl(), 400 * 86_400);
        assert_eq!(config.snapshot_ttl(), 0);
        assert_eq!(days_to_ttl(u32::MAX), 630_720_000);
    }
}
