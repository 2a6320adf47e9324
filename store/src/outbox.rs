//! The alert outbox: alerts owed to notification sinks, stored with the decision that caused
//! them (one write transaction) so that no acknowledged decision can lose its alerts.
//!
//! Each alert is one [`RecordKind::AlertOutbox`] record keyed `status/id`, so listing by status
//! is a prefix scan and a status change is one atomic delete + insert.

use crate::{RecordKind, RecordWrite, Store, StoreError};
use chrono::{DateTime, Utc};
use sentinel_event::Decision;
use serde::{Deserialize, Serialize};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AlertStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// The sink accepted it.
    Delivered,
    /// Dead-lettered after the configured number of attempts; `POST /v1/alerts/{id}/retry`
    /// makes it pending again.
    Failed,
}

impl AlertStatus {
    /// The lower-case name used in keys, JSON and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Delivered => "delivered",
            AlertStatus::Failed => "failed",
        }
    }

    /// Parses `pending`, `delivered` or `failed`.
    pub fn parse(text: &str) -> Option<AlertStatus> {
        match text {
            "pending" => Some(AlertStatus::Pending),
            "delivered" => Some(AlertStatus::Delivered),
            "failed" => Some(AlertStatus::Failed),
            _ => None,
        }
    }
}

/// One alert owed to one sink for one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRecord {
    /// The alert's id, also sent as the delivery id so receivers can deduplicate retries.
    pub id: String,
    /// The configured sink's name.
    pub sink: String,
    /// The decision that caused the alert.
    pub transaction_id: String,
    /// Pending, delivered or failed.
    pub status: AlertStatus,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending alerts).
    pub next_attempt_at: DateTime<Utc>,
    /// When the alert was queued.
    pub created_at: DateTime<Utc>,
    /// When the sink accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl AlertRecord {
    /// A new pending alert, due now.
    pub fn queued(id: String, sink: &str, decision: &Decision, now: DateTime<Utc>) -> Self {
        AlertRecord {
            id,
            sink: sink.to_owned(),
            transaction_id: decision.transaction_id.clone(),
            status: AlertStatus::Pending,
            attempts: 0,
            last_error: None,
            next_attempt_at: now,
            created_at: now,
            delivered_at: None,
        }
    }

    /// The record's key: `status/id`.
    pub fn key(&self) -> String {
        key(self.status, &self.id)
    }

    /// The write that stores this record under its current status.
    pub fn write(&self) -> RecordWrite {
        RecordWrite {
            kind: RecordKind::AlertOutbox,
            key: self.key(),
            // Serializing a struct of strings, numbers and timestamps cannot fail.
            value: Some(serde_json::to_vec(self).expect("alert record serializes")),
        }
    }
}

/// The key of alert `id` under `status`.
pub fn key(status: AlertStatus, id: &str) -> String {
    format!("{}/{id}", status.as_str())
}

/// Decides which alerts a new decision owes; the writer stores them in the decision's own
/// write transaction (and not at all when the decision turns out to be a duplicate).
pub trait AlertRouting: Send + Sync + 'static {
    /// The outbox records for `decision` (usually none).
    fn alerts_for(&self, decision: &Decision) -> Vec<RecordWrite>;

    /// Called after the batch holding a new `decision` and its `records` is durable (never
    /// for a duplicate, whose records were not written, nor for a failed batch).
    fn committed(&self, _decision: &Decision, _records: &[RecordWrite]) {}
}

/// Reads alert `id` under `status`.
pub async fn get(
    store: &dyn Store,
    status: AlertStatus,
    id: &str,
) -> Result<Option<AlertRecord>, StoreError> {
    store
        .record(RecordKind::AlertOutbox, &key(status, id))
        .await?
        .map(|bytes| decode(&bytes))
        .transpose()
}

/// Up to `limit` alerts with `status`, in id order, after alert id `after`.
pub async fn list(
    store: &dyn Store,
    status: AlertStatus,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<AlertRecord>, StoreError> {
    let prefix = key(status, "");
    let after = after.map(|id| key(status, id));
    store
        .scan_records(RecordKind::AlertOutbox, &prefix, after.as_deref(), limit)
        .await?
        .iter()
        .map(|(_, bytes)| decode(bytes))
        .collect()
}

/// Stores `record` (whose status may have changed from `previous`) in one atomic write.
pub async fn save(
    store: &dyn Store,
    previous: AlertStatus,
    record: &AlertRecord,
) -> Result<(), StoreError> {
    let mut writes = vec![record.write()];
    if previous != record.status {
        writes.push(RecordWrite {
            kind: RecordKind::AlertOutbox,
            key: key(previous, &record.id),
            value: None,
        });
    }
    store.put_records(writes).await
}

fn decode(bytes: &[u8]) -> Result<AlertRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table: "records/alert_outbox",
        reason: e.to_string(),
    })
}
