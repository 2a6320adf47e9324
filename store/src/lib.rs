//! Where SentinelStream keeps what it decided.
//!
//! - [`Store`]: the backend-neutral interface. Tables are shaped the way CQL wants them (a
//!   partition key and a clustering key per query) so that the ScyllaDB backend maps one to one:
//!   decision by transaction id, decisions by user in processing order, decisions by day in time
//!   order, and user snapshots.
//! - [`LsmStore`]: the zero-setup default for a new data directory, the store on a
//!   log-structured engine (fjall), a directory under the data directory.
//! - [`EmbeddedStore`]: the same store in one redb file, the default of earlier releases; the
//!   node spends 16–25% more CPU per event on it (BENCHMARKS.md). [`open_embedded`] opens
//!   either.
//! - [`Writer`]: the single ordered write path. Requests are batched into one transaction (group
//!   commit); a request is acknowledged only after its batch is durable.

pub mod base64_bytes;
mod blocking;
pub mod chain;
#[cfg(feature = "conformance")]
pub mod conformance;
mod day_entry;
mod embedded;
mod error;
mod expiry;
mod history;
mod lsm;
pub mod metrics;
mod migrate;
pub mod outbox;
pub mod record;
pub mod tagged;
mod writer;

pub use blocking::{default_max_concurrent_reads, on_read_lane};
pub use day_entry::DayEntry;
pub use embedded::{EmbeddedStore, DEFAULT_CACHE_BYTES};
pub use error::StoreError;
pub use lsm::LsmStore;
pub use migrate::{migrate, Migration};
pub use writer::{
    CommitObserver, DecisionAck, QueueMark, Stored, Writer, WriterConfig, WriterHooks,
};

use async_trait::async_trait;
use sentinel_event::Decision;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One write in a batch. Writes in a batch commit together, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WriteOp {
    /// Store a decision unless one exists for its transaction id (decisions are immutable).
    Decision(Arc<Decision>),
    /// Replace a user's snapshot.
    Snapshot(UserSnapshot),
    /// Store a decision like [`WriteOp::Decision`] and, only if it is new, these records with it
    /// (the alert outbox entries it owes).
    DecisionWithRecords(Arc<Decision>, Vec<RecordWrite>),
    /// Put or delete these records (the API's answers under an `Idempotency-Key`): they share
    /// the batch's commit with its decisions.
    Records(Vec<RecordWrite>),
}

/// What happened to one [`WriteOp`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WriteResult {
    /// Newly stored.
    Stored,
    /// A decision already existed for this transaction id; here it is, unchanged.
    AlreadyDecided(Arc<Decision>),
    /// [`WriteOp::Records`] not written, and why, on a backend that writes them apart from the
    /// batch's decisions (ScyllaDB): their failure fails only them, not the decisions beside.
    Failed(String),
}

/// A user actor's state at a point in its processing order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSnapshot {
    /// The user key.
    pub user_id: String,
    /// The last `user_seq` folded into `state`; decisions after it are replayed on restore.
    pub seq: u64,
    /// The actor's serialized state (opaque to the store).
    #[serde(with = "base64_bytes")]
    pub state: Vec<u8>,
}

/// The storage backend interface. Every backend must pass the same conformance tests.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies a batch atomically and durably; results are in request order.
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError>;
    /// The decision for one transaction id.
    async fn decision(&self, transaction_id: &str) -> Result<Option<Decision>, StoreError>;
    /// The decisions for several transaction ids, in the order asked, read together where the
    /// backend can: a topic replayed after an offset reset asks for thousands at once, and a
    /// blocking call (or a request to a cluster's store host) per id costs more than the read.
    /// By default, one [`Store::decision`] after another.
    async fn decisions(
        &self,
        transaction_ids: Vec<String>,
    ) -> Result<Vec<Option<Decision>>, StoreError> {
        let mut found = Vec::with_capacity(transaction_ids.len());
        for id in &transaction_ids {
            found.push(self.decision(id).await?);
        }
        Ok(found)
    }
    /// A user's decisions with `user_seq > after_seq`, in processing order.
    async fn decisions_for_user(
        &self,
        user_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError>;
    /// Decisions made on one UTC day (`yyyymmdd`), in decision-time order, starting after the
    /// cursor returned by a previous page.
    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError>;
    /// The positions (decision time, transaction id) of [`Store::decisions_by_day`]'s page,
    /// without the decisions: a reader that has already seen most of a range (the live
    /// entity index re-checking recent minutes for late commits) learns which ones are new
    /// without decoding any. The default reads the decisions and keeps their positions; a
    /// backend with a day index overrides it to read the index alone.
    async fn decision_keys_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayCursor>, StoreError> {
        Ok(self
            .decisions_by_day(day, after, limit)
            .await?
            .into_iter()
            .map(|d| DayCursor {
                decided_us: d.decided_at.timestamp_micros(),
                transaction_id: d.transaction_id,
            })
            .collect())
    }
    /// The entity fields (merchant, device, event time) of the decisions of one UTC day, with
    /// each one's position, in [`Store::decisions_by_day`]'s order and paging: what the live
    /// entity-risk index counts of the last 30 days at a node's start. The default reads the
    /// decisions; a backend that keeps these fields in its day index overrides it to read the
    /// index alone (and so answers from the index even for a decision record it has lost).
    async fn day_entries(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayEntry>, StoreError> {
        Ok(self
            .decisions_by_day(day, after, limit)
            .await?
            .iter()
            .map(DayEntry::of)
            .collect())
    }
    /// A user's latest snapshot.
    async fn snapshot(&self, user_id: &str) -> Result<Option<UserSnapshot>, StoreError>;
    /// A user's latest snapshot and up to `limit` decisions stored after it, read together
    /// (one round trip when an actor starts; most users have nothing stored at all).
    async fn restore_point(&self, user_id: &str, limit: usize) -> Result<RestorePoint, StoreError>;
    /// [`Store::restore_point`] of several users, in their order: user actors starting
    /// together share one call, which a backend may answer in one read. The default asks for
    /// each concurrently.
    async fn restore_points(
        &self,
        user_ids: &[String],
        limit: usize,
    ) -> Result<Vec<RestorePoint>, StoreError> {
        futures::future::try_join_all(user_ids.iter().map(|u| self.restore_point(u, limit))).await
    }
    /// Whether `user_id` may have a stored snapshot or decision: `false` only when it
    /// certainly has none, so that a caller can skip asking. The default: always maybe.
    fn may_have_history(&self, _user_id: &str) -> bool {
        true
    }
    /// Runs `work`, CPU work done for a reader with what this store returned (encoding a page
    /// of decisions into a response), where this store runs its reads: the embedded engines
    /// run it in their read lane (`[store] max_concurrent_reads` at once, on the blocking
    /// pool), so a flood of reads takes no more of the machine than their reads may, and the
    /// async workers that score are not the ones encoding. The default runs it in place.
    /// [`on_read_lane`] passes a result back.
    async fn run_read_work(&self, work: Box<dyn FnOnce() + Send>) -> Result<(), StoreError> {
        work();
        Ok(())
    }
    /// Total number of stored decisions.
    async fn decision_count(&self) -> Result<u64, StoreError>;
    /// Writes catalogue records (rules, lists, audit, labels …) atomically and durably.
    async fn put_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError>;
    /// Compare-and-set: writes `writes` like [`Store::put_records`] only if the record `guard`
    /// names holds exactly `guard.expected` (absent when `None`) at that moment, as one step
    /// no concurrent writer can interleave with. Returns `false`, writing nothing, when it
    /// holds something else. `writes` must set the guarded record itself (the claim, see
    /// [`RecordGuard::claim`]). Nodes sharing a store publish policy versions through it, so
    /// two of them never publish the same version.
    async fn put_records_if(
        &self,
        guard: RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError>;
    /// One record.
    async fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records of one kind, in the order of `keys`: the embedded engines read them in one
    /// blocking call (one thread hop for many requests' checks); elsewhere each is read
    /// concurrently with [`Store::record`].
    async fn records(
        &self,
        kind: RecordKind,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        futures::future::try_join_all(keys.iter().map(|key| self.record(kind, key))).await
    }
    /// Records of one kind whose key starts with `prefix`, after `after` (exclusive) in key
    /// order, at most `limit`.
    async fn scan_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}

/// What the embedded engines keep beyond [`Store`]: the tamper-evident decision log (see
/// [`chain`]) and retention's deletions from its front.
#[async_trait]
pub trait DecisionLog: Store {
    /// The decision log's head as last committed (export it; see [`chain`]).
    async fn log_head(&self) -> Result<chain::Head, StoreError>;
    /// Walks the tamper-evident decision log and reports the first record that was edited,
    /// reordered or removed, a head that is not the chain's end, a deletion at the start that
    /// no retention declaration covers, or a chain that misses the operator's kept head.
    async fn verify_log(
        &self,
        options: chain::VerifyOptions,
    ) -> Result<chain::LogReport, StoreError>;
    /// Retention: deletes up to `max` of the oldest decisions decided before `cutoff` — from
    /// the front of the decision log, with their index rows and log entries — and records where
    /// the log now starts so `verify_log` still checks everything kept. Stops at the first
    /// decision that is newer (the log is in storing order, so a late one may keep a few older
    /// ones a little longer) or whose entry does not check out (tampering stays for
    /// `verify_log` to report). Returns how many were deleted.
    async fn prune_decided_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<u64, StoreError>;
    /// The users with decisions among those [`DecisionLog::prune_decided_before`] with the
    /// same arguments would delete now, each with the highest `user_seq` among them, by user
    /// id: retention snapshots the users whose snapshot does not cover them yet, so their
    /// profile outlives the decisions it was built from.
    async fn users_expiring(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<Vec<(String, u64)>, StoreError>;
}

/// The engine under a node's embedded store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddedEngine {
    /// One redb file, `sentinel.redb`: a B-tree, every table updated in place at each commit.
    #[default]
    Redb,
    /// A fjall directory, `sentinel.lsm`: a log-structured merge tree; a commit appends to its
    /// journal and background compaction sorts the tables.
    Lsm,
}

impl EmbeddedEngine {
    /// Every engine.
    pub const ALL: [EmbeddedEngine; 2] = [EmbeddedEngine::Redb, EmbeddedEngine::Lsm];

    /// Where this engine keeps the store of `data_dir`.
    pub fn path(self, data_dir: &Path) -> PathBuf {
        data_dir.join(match self {
            EmbeddedEngine::Redb => "sentinel.redb",
            EmbeddedEngine::Lsm => "sentinel.lsm",
        })
    }

    /// The engines that have a store in `data_dir`.
    pub fn found_in(data_dir: &Path) -> Vec<EmbeddedEngine> {
        Self::ALL
            .into_iter()
            .filter(|engine| engine.path(data_dir).exists())
            .collect()
    }

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            EmbeddedEngine::Redb => "redb",
            EmbeddedEngine::Lsm => "lsm",
        }
    }
}

/// How an embedded store uses the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Largest page (redb) or block (fjall) cache, in bytes: the store's share of memory.
    pub cache_bytes: usize,
    /// Reads that run at once; more wait their turn, so that a burst of reads cannot take
    /// every thread and core from the decision writer (see `blocking.rs`).
    pub max_concurrent_reads: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_concurrent_reads: default_max_concurrent_reads(),
        }
    }
}

/// Opens (or creates) the embedded store of `data_dir` on `engine`.
pub fn open_embedded(
    data_dir: &Path,
    engine: EmbeddedEngine,
    options: EmbeddedOptions,
) -> Result<Arc<dyn DecisionLog>, StoreError> {
    let path = engine.path(data_dir);
    Ok(match engine {
        EmbeddedEngine::Redb => Arc::new(EmbeddedStore::open_with(&path, options)?),
        EmbeddedEngine::Lsm => Arc::new(LsmStore::open_with(&path, options)?),
    })
}

/// Opens the existing embedded store of a (stopped) node's `data_dir`, on whichever engine
/// holds it; an error names the directory when there is none, or when both engines have one
/// (an unfinished migration: which is current is for the operator to say).
pub fn open_existing_embedded(data_dir: &Path) -> Result<Arc<dyn DecisionLog>, StoreError> {
    match EmbeddedEngine::found_in(data_dir).as_slice() {
        [engine] => open_embedded(data_dir, *engine, EmbeddedOptions::default()),
        [] => Err(StoreError::Backend(format!(
            "no store in {} (neither sentinel.redb nor sentinel.lsm)",
            data_dir.display()
        ))),
        _ => Err(StoreError::Backend(format!(
            "{} holds both sentinel.redb and sentinel.lsm; move the one not in use away",
            data_dir.display()
        ))),
    }
}

/// The kinds of catalogue record; each is its own partition (table) in CQL terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordKind {
    /// `rule_id/version` → one immutable rule version.
    RuleVersion,
    /// `rule_id` → the rule's current version number.
    RuleHead,
    /// `version` (zero-padded) → the full policy that version stood for.
    PolicyVersion,
    /// `name` → a named list with its items.
    List,
    /// `time/sequence` → one audit entry.
    Audit,
    /// `transaction_id` → an analyst's label.
    Label,
    /// `status/alert_id` → one alert owed to a notification sink (see [`outbox`]).
    AlertOutbox,
    /// `model_id` → an uploaded model artifact with who uploaded it.
    Model,
    /// `current` → which models are champion and challenger, and the champions before.
    ModelDeployment,
    /// `key id` → an API key's role and the SHA-256 of its secret (never the secret).
    ApiKey,
    /// `hash of caller and Idempotency-Key` → the first answer to that request, for replay.
    Idempotency,
    /// `user_id␟currency` → what the user's account held before its first decided transaction.
    OpeningBalance,
}

impl RecordKind {
    /// The stable name used as the partition key.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::RuleVersion => "rule_version",
            RecordKind::RuleHead => "rule_head",
            RecordKind::PolicyVersion => "policy_version",
            RecordKind::List => "list",
            RecordKind::Audit => "audit",
            RecordKind::Label => "label",
            RecordKind::AlertOutbox => "alert_outbox",
            RecordKind::Model => "model",
            RecordKind::ModelDeployment => "model_deployment",
            RecordKind::ApiKey => "api_key",
            RecordKind::Idempotency => "idempotency",
            RecordKind::OpeningBalance => "opening_balance",
        }
    }

    /// The kind named by [`RecordKind::as_str`].
    pub fn parse(name: &str) -> Option<RecordKind> {
        [
            RecordKind::RuleVersion,
            RecordKind::RuleHead,
            RecordKind::PolicyVersion,
            RecordKind::List,
            RecordKind::Audit,
            RecordKind::Label,
            RecordKind::AlertOutbox,
            RecordKind::Model,
            RecordKind::ModelDeployment,
            RecordKind::ApiKey,
            RecordKind::Idempotency,
            RecordKind::OpeningBalance,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// Writes or deletes one record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordWrite {
    /// Which table.
    pub kind: RecordKind,
    /// The record's key within the kind.
    pub key: String,
    /// The new value; `None` deletes.
    #[serde(default, with = "base64_bytes::option")]
    pub value: Option<Vec<u8>>,
}

/// The condition of [`Store::put_records_if`]: what one record must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordGuard {
    /// The record's table.
    pub kind: RecordKind,
    /// The record's key within the kind.
    pub key: String,
    /// The bytes it must hold; `None`: it must not exist.
    #[serde(default, with = "base64_bytes::option")]
    pub expected: Option<Vec<u8>>,
}

impl RecordGuard {
    /// The new value `writes` give the guarded record, which they must set: that write is what
    /// makes a compare-and-set claim something (a backend without multi-partition
    /// transactions checks and writes that record as one step and the rest after it).
    pub fn claim<'a>(&self, writes: &'a [RecordWrite]) -> Result<&'a [u8], StoreError> {
        writes
            .iter()
            .rev()
            .find(|w| w.kind == self.kind && w.key == self.key)
            .and_then(|w| w.value.as_deref())
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "a compare-and-set on {}/{} must set that record",
                    self.kind.as_str(),
                    self.key
                ))
            })
    }
}

/// Where a user actor starts from: its snapshot and the decisions stored after it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestorePoint {
    /// The latest snapshot, if any.
    pub snapshot: Option<UserSnapshot>,
    /// Decisions with `user_seq` after the snapshot's, in processing order, at most the limit.
    pub decisions: Vec<Decision>,
}

/// Position in a day's decision list: decision time in microseconds and transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCursor {
    /// Decision time, microseconds since the epoch.
    pub decided_us: i64,
    /// Transaction id, breaking ties.
    pub transaction_id: String,
}

/// The `yyyymmdd` day bucket of a timestamp.
pub fn day_of(t: chrono::DateTime<chrono::Utc>) -> u32 {
    use chrono::Datelike;
    t.year() as u32 * 10_000 + t.month() * 100 + t.day()
}
