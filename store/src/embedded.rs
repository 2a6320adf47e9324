//! The embedded backend: one redb file, ACID, fsync on every committed batch.

use crate::blocking::{BlockingWork, Lane};
use crate::chain::{self, Head, LogReport, VerifyOptions};
use crate::day_entry;
use crate::expiry::{check_cutoff, declare, expired_front, latest_per_user, Expired};
use crate::history::{user_key, History};
use crate::migrate::Row;
use crate::record::{self, decode};
use crate::{
    DayCursor, DecisionLog, EmbeddedOptions, RecordGuard, RecordKind, RecordWrite, RestorePoint,
    Store, StoreError, UserSnapshot, WriteOp, WriteResult,
};
use async_trait::async_trait;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition,
};
use sentinel_event::Decision;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

/// Decision by transaction id: the decision with its event, as JSON.
const DECISIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("decisions_by_txn");
/// (user_id, user_seq) -> transaction id.
const BY_USER: TableDefinition<(&str, u64), &str> = TableDefinition::new("decisions_by_user");
/// (yyyymmdd, decided_us, transaction id) -> nothing; a time-ordered index per day.
const BY_DAY: TableDefinition<(u32, i64, &str), ()> = TableDefinition::new("decisions_by_day");
/// seq -> tamper-evident log entry (see `chain`).
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("decision_log");
/// name -> value: the log's head.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const LOG_HEAD: &str = "decision_log_head";
/// Where retention left the log: the first kept position and the hash of the last pruned entry.
const LOG_ANCHOR: &str = "decision_log_anchor";
/// (record kind, key) -> value: the catalogue (rules, lists, audit, labels).
const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
/// user_id -> 8-byte big-endian seq followed by the serialized actor state.
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("user_snapshots");

/// The page cache the store may fill unless told otherwise (redb's own default).
pub const DEFAULT_CACHE_BYTES: usize = 1024 * 1024 * 1024;

/// The embedded store, a redb database file. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    /// Users with anything stored: a restore of anyone else is answered at once.
    history: Arc<History>,
    work: BlockingWork,
}

impl EmbeddedStore {
    /// Opens or creates the store at `path` (a file) with the default page cache.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// Opens or creates the store at `path` with a page cache of at most
    /// `options.cache_bytes`: the store's share of the node's memory, which it fills as the
    /// file grows.
    pub fn open_with(path: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(StoreError::backend)?;
        }
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(path)
            .map_err(StoreError::backend)?;
        // Create every table up front so readers never meet a missing one.
        let txn = db.begin_write().map_err(StoreError::backend)?;
        txn.open_table(DECISIONS).map_err(StoreError::backend)?;
        txn.open_table(BY_USER).map_err(StoreError::backend)?;
        txn.open_table(BY_DAY).map_err(StoreError::backend)?;
        txn.open_table(SNAPSHOTS).map_err(StoreError::backend)?;
        txn.open_table(RECORDS).map_err(StoreError::backend)?;
        txn.open_table(LOG).map_err(StoreError::backend)?;
        txn.open_table(META).map_err(StoreError::backend)?;
        txn.commit().map_err(StoreError::backend)?;
        let history = users_with_history(&db)?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            history: Arc::new(history),
            work: BlockingWork::new(options.max_concurrent_reads)?,
        })
    }

    /// Rewrites the file without the free space deletions left; the node must be stopped.
    /// Returns the file size before and after.
    pub fn compact(path: &Path) -> Result<(u64, u64), StoreError> {
        let size = || {
            std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(StoreError::backend)
        };
        let before = size()?;
        let mut db = Database::open(path).map_err(StoreError::backend)?;
        db.compact().map_err(StoreError::backend)?;
        drop(db);
        Ok((before, size()?))
    }

    /// Visits every row of every table (for [`crate::migrate`]), in one read transaction.
    pub(crate) fn export_rows(
        &self,
        visit: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(StoreError::backend)?;
        for entry in txn
            .open_table(DECISIONS)
            .map_err(StoreError::backend)?
            .iter()
            .map_err(StoreError::backend)?
        {
            let (k, v) = entry.map_err(StoreError::backend)?;
            visit(Row::Decision(k.value().to_owned(), v.value().to_vec()))?;
        }
        for entry in txn
            .open_table(BY_USER)
            .map_err(StoreError::backend)?
            .iter()
            .map_err(StoreError::backend)?
        {
            let (k, v) = entry.map_err(StoreError::backend)?;
            let (user, seq) = k.value();
            visit(Row::ByUser(user.to_owned(), seq, v.value().to_owned()))?;
        }
        let decisions = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
        for entry in txn
            .open_table(BY_DAY)
            .map_err(StoreError::backend)?
            .iter()
            .map_err(StoreError::backend)?
        {
            let (k, _) = entry.map_err(StoreError::backend)?;
            let (day, micros, txn_id) = k.value();
            // This table keeps no entities; the fjall store keeps them in its day index
            // (`crate::day_entry`). Read from each decision once here, not at every start of
            // the migrated store. One that cannot be read keeps an empty entry (the new store
            // then reads the decision where it needs it, and reports it there).
            let mut entities = Vec::new();
            let stored = decisions.get(txn_id).map_err(StoreError::backend)?;
            if let Some(Ok(d)) = stored.map(|bytes| decode(bytes.value())) {
                day_entry::encode_into(&mut entities, &d);
            }
            visit(Row::ByDay(day, micros, txn_id.to_owned(), entities))?;
        }
        for entry in txn
            .open_table(LOG)
            .map_err(StoreError::backend)?
            .iter()
            .map_err(StoreError::backend)?
        {
            let (k, v) = entry.map_err(StoreError::backend)?;
            visit(Row::Log(k.value(), v.value().to_vec()))?;
        }
        for entry in txn
            .open_table(META)
            .map_err(StoreError::backend)?
            .iter()
            .map_err(StoreError::backend)?
        {
            let (k, v) = entry.map_err(StoreError::backend)?;
            visit(Row::Meta(k.value().to_owned(), v.value().to_vec()))?;
        }
        for entry in txn
            .open_table(RECORDS)
            .map_err(StoreError::backend)?
            .iter()
            .map_err(StoreError::backend)?
        {
            let (k, v) = entry.map_err(StoreError::backend)?;
            let (kind, key) = k.value();
            visit(Row::Record(
                kind.to_owned(),
                key.to_owned(),
                v.value().to_vec(),
            ))?;
        }
        for entry in txn
            .open_table(SNAPSHOTS)
            .map_err(StoreError::backend)?
            .iter()
            .map_err(StoreError::backend)?
        {
            let (k, v) = entry.map_err(StoreError::backend)?;
            visit(Row::Snapshot(k.value().to_owned(), v.value().to_vec()))?;
        }
        Ok(())
    }

    /// Writes rows exported from another engine, in one durable transaction (for
    /// [`crate::migrate`]). The users' history filter learns them at the next open.
    pub(crate) fn import_rows(&self, rows: Vec<Row>) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(StoreError::backend)?;
        {
            let mut decisions = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
            let mut by_user = txn.open_table(BY_USER).map_err(StoreError::backend)?;
            let mut by_day = txn.open_table(BY_DAY).map_err(StoreError::backend)?;
            let mut log = txn.open_table(LOG).map_err(StoreError::backend)?;
            let mut meta = txn.open_table(META).map_err(StoreError::backend)?;
            let mut records = txn.open_table(RECORDS).map_err(StoreError::backend)?;
            let mut snapshots = txn.open_table(SNAPSHOTS).map_err(StoreError::backend)?;
            for row in &rows {
                match row {
                    Row::Decision(txn_id, v) => {
                        decisions.insert(txn_id.as_str(), v.as_slice()).map(drop)
                    }
                    Row::ByUser(user, seq, txn_id) => by_user
                        .insert((user.as_str(), *seq), txn_id.as_str())
                        .map(drop),
                    Row::ByDay(day, micros, txn_id, _) => by_day
                        .insert((*day, *micros, txn_id.as_str()), ())
                        .map(drop),
                    Row::Log(seq, v) => log.insert(*seq, v.as_slice()).map(drop),
                    Row::Meta(name, v) => meta.insert(name.as_str(), v.as_slice()).map(drop),
                    Row::Record(kind, key, v) => records
                        .insert((kind.as_str(), key.as_str()), v.as_slice())
                        .map(drop),
                    Row::Snapshot(user, v) => {
                        snapshots.insert(user.as_str(), v.as_slice()).map(drop)
                    }
                }
                .map_err(StoreError::backend)?;
            }
        }
        txn.commit().map_err(StoreError::backend)
    }

    /// Runs blocking redb work off the async threads, in its lane ([`BlockingWork`]).
    async fn blocking<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        self.work.run(lane, move || f(&db)).await
    }
}

#[async_trait]
impl DecisionLog for EmbeddedStore {
    async fn log_head(&self) -> Result<Head, StoreError> {
        self.blocking(Lane::Read, |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            read_head(&meta)
        })
        .await
    }

    async fn verify_log(&self, options: VerifyOptions) -> Result<LogReport, StoreError> {
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let log = txn.open_table(LOG).map_err(StoreError::backend)?;
            let decisions = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            let recorded = meta
                .get(LOG_HEAD)
                .map_err(StoreError::backend)?
                .and_then(|v| Head::decode(v.value()))
                .unwrap_or_default();
            let start = meta
                .get(LOG_ANCHOR)
                .map_err(StoreError::backend)?
                .and_then(|v| Head::decode(v.value()))
                .unwrap_or_default();
            let entries = log
                .iter()
                .map_err(StoreError::backend)?
                .map_while(Result::ok)
                .map(|(k, v)| (k.value(), v.value().to_vec()));
            let decision = |txn_id: &str| {
                decisions
                    .get(txn_id)
                    .ok()
                    .flatten()
                    .map(|v| v.value().to_vec())
            };
            Ok(chain::verify(entries, start, recorded, decision, options))
        })
        .await
    }

    async fn prune_decided_before(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<u64, StoreError> {
        check_cutoff(cutoff, now)?;
        self.blocking(Lane::Write, move |db| prune(db, cutoff, now, max))
            .await
    }

    async fn users_expiring(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        check_cutoff(cutoff, now)?;
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            let log = txn.open_table(LOG).map_err(StoreError::backend)?;
            let decisions = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
            let (_, expired) = expired_in(&meta, &log, &decisions, cutoff, max)?;
            Ok(latest_per_user(expired))
        })
        .await
    }
}

/// Every user with a snapshot or a decision in `db`: one read of the snapshot keys, and one
/// range seek per user in the per-user decision index (never a walk over every decision).
fn users_with_history(db: &Database) -> Result<History, StoreError> {
    use std::ops::Bound;
    let txn = db.begin_read().map_err(StoreError::backend)?;
    let mut keys = Vec::new();
    let snapshots = txn.open_table(SNAPSHOTS).map_err(StoreError::backend)?;
    for entry in snapshots.iter().map_err(StoreError::backend)? {
        let (user, _) = entry.map_err(StoreError::backend)?;
        keys.push(user_key(user.value()));
    }
    let by_user = txn.open_table(BY_USER).map_err(StoreError::backend)?;
    let mut next = by_user
        .first()
        .map_err(StoreError::backend)?
        .map(|(k, _)| k.value().0.to_owned());
    while let Some(user) = next {
        keys.push(user_key(&user));
        let after_user = (Bound::Excluded((user.as_str(), u64::MAX)), Bound::Unbounded);
        next = match by_user
            .range(after_user)
            .map_err(StoreError::backend)?
            .next()
        {
            Some(entry) => Some(entry.map_err(StoreError::backend)?.0.value().0.to_owned()),
            None => None,
        };
    }
    let history = History::default();
    history.extend(keys);
    Ok(history)
}

/// Visits the day index's keys of `day` after `after` (exclusive), in decision-time order,
/// while `visit` (given decision time and transaction id) answers `true`.
fn for_day_keys(
    txn: &ReadTransaction,
    day: u32,
    after: Option<&DayCursor>,
    mut visit: impl FnMut(i64, &str) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let by_day = txn.open_table(BY_DAY).map_err(StoreError::backend)?;
    let (from_us, from_id) = after.map_or((i64::MIN, ""), |c| {
        (c.decided_us, c.transaction_id.as_str())
    });
    // A peer may ask for any u32 day: the last one has no next.
    let to = match day.checked_add(1) {
        Some(next) => Bound::Excluded((next, i64::MIN, "")),
        None => Bound::Unbounded,
    };
    let range = by_day
        .range::<(u32, i64, &str)>((Bound::Included((day, from_us, from_id)), to))
        .map_err(StoreError::backend)?;
    for entry in range {
        let (key, _) = entry.map_err(StoreError::backend)?;
        let (_, decided_us, id) = key.value();
        if after.is_some() && decided_us == from_us && id == from_id {
            continue;
        }
        if !visit(decided_us, id)? {
            break;
        }
    }
    Ok(())
}

/// The log's anchor and the entries at its front that retention may delete (see
/// [`expired_front`]).
fn expired_in(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    log: &impl ReadableTable<u64, &'static [u8]>,
    decisions: &impl ReadableTable<&'static str, &'static [u8]>,
    cutoff: chrono::DateTime<chrono::Utc>,
    max: usize,
) -> Result<(Head, Vec<Expired>), StoreError> {
    let anchor = meta
        .get(LOG_ANCHOR)
        .map_err(StoreError::backend)?
        .and_then(|v| Head::decode(v.value()))
        .unwrap_or_default();
    let entries = log
        .range(anchor.next_seq..)
        .map_err(StoreError::backend)?
        .map(|entry| {
            let (k, v) = entry.map_err(StoreError::backend)?;
            Ok((k.value(), v.value().to_vec()))
        });
    let expired = expired_front(entries, &anchor, cutoff, max, |txn_id| {
        Ok(decisions
            .get(txn_id)
            .map_err(StoreError::backend)?
            .map(|v| v.value().to_vec()))
    })?;
    Ok((anchor, expired))
}

fn prune(
    db: &Database,
    cutoff: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    max: usize,
) -> Result<u64, StoreError> {
    let txn = db.begin_write().map_err(StoreError::backend)?;
    let mut pruned = 0;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::backend)?;
        let mut log = txn.open_table(LOG).map_err(StoreError::backend)?;
        let mut decisions = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
        let mut by_user = txn.open_table(BY_USER).map_err(StoreError::backend)?;
        let mut by_day = txn.open_table(BY_DAY).map_err(StoreError::backend)?;
        let (anchor, expired) = expired_in(&meta, &log, &decisions, cutoff, max)?;
        for Expired { seq, decision, .. } in &expired {
            log.remove(*seq).map_err(StoreError::backend)?;
            let Some(d) = decision else { continue };
            let txn_id = d.transaction_id.as_str();
            decisions.remove(txn_id).map_err(StoreError::backend)?;
            let indexed = by_user
                .get((d.user_id.as_str(), d.user_seq))
                .map_err(StoreError::backend)?
                .is_some_and(|v| v.value() == txn_id);
            if indexed {
                by_user
                    .remove((d.user_id.as_str(), d.user_seq))
                    .map_err(StoreError::backend)?;
            }
            by_day
                .remove((
                    crate::day_of(d.decided_at),
                    d.decided_at.timestamp_micros(),
                    txn_id,
                ))
                .map_err(StoreError::backend)?;
            pruned += 1;
        }
        if let (anchor, Some(declaration)) = declare(anchor, &expired, cutoff, now) {
            // Declare the deletion in the chain itself, so the new start is provably retention's.
            let mut head = read_head(&meta)?;
            let (seq, entry) = declaration.append(&mut head);
            log.insert(seq, entry.as_slice())
                .map_err(StoreError::backend)?;
            meta.insert(LOG_HEAD, head.encode().as_slice())
                .map_err(StoreError::backend)?;
            meta.insert(LOG_ANCHOR, anchor.encode().as_slice())
                .map_err(StoreError::backend)?;
        }
    }
    txn.commit().map_err(StoreError::backend)?;
    Ok(pruned)
}

/// The tables a decision write touches, open in one write transaction.
struct DecisionTables<'txn> {
    decisions: Table<'txn, &'static str, &'static [u8]>,
    by_user: Table<'txn, (&'static str, u64), &'static str>,
    by_day: Table<'txn, (u32, i64, &'static str), ()>,
    log: Table<'txn, u64, &'static [u8]>,
    records: Table<'txn, (&'static str, &'static str), &'static [u8]>,
}

impl DecisionTables<'_> {
    /// Stores `d` unless its transaction id is already decided, extending the log chain.
    fn decision(
        &mut self,
        d: &Decision,
        next: &mut Head,
        buf: &mut Vec<u8>,
    ) -> Result<WriteResult, StoreError> {
        buf.clear();
        record::encode_into(buf, d)?;
        let txn_id = d.transaction_id.as_str();
        // Insert first and put the earlier decision back in the rare duplicate case: one
        // B-tree descent per new decision instead of a lookup followed by an insert.
        let earlier = self
            .decisions
            .insert(txn_id, buf.as_slice())
            .map_err(StoreError::backend)?
            .map(|v| v.value().to_vec());
        if let Some(earlier) = earlier {
            self.decisions
                .insert(txn_id, earlier.as_slice())
                .map_err(StoreError::backend)?;
            return Ok(WriteResult::AlreadyDecided(Arc::new(decode(&earlier)?)));
        }
        let (seq, entry) = next.append(txn_id, buf);
        self.log
            .insert(seq, entry.as_slice())
            .map_err(StoreError::backend)?;
        self.by_user
            .insert((d.user_id.as_str(), d.user_seq), txn_id)
            .map_err(StoreError::backend)?;
        let day = crate::day_of(d.decided_at);
        self.by_day
            .insert((day, d.decided_at.timestamp_micros(), txn_id), ())
            .map_err(StoreError::backend)?;
        Ok(WriteResult::Stored)
    }
}

/// Applies one catalogue record write.
fn put_record(
    table: &mut Table<'_, (&'static str, &'static str), &'static [u8]>,
    w: &RecordWrite,
) -> Result<(), StoreError> {
    let key = (w.kind.as_str(), w.key.as_str());
    match &w.value {
        Some(v) => table.insert(key, v.as_slice()).map(drop),
        None => table.remove(key).map(drop),
    }
    .map_err(StoreError::backend)
}

/// The decision log's head as `txn` sees it. Read inside the write transaction (redb runs one
/// at a time), so concurrent batches chain one after the other, never from the same head.
fn read_head(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Head, StoreError> {
    match meta.get(LOG_HEAD).map_err(StoreError::backend)? {
        Some(v) => Head::decode(v.value()).ok_or(StoreError::Corrupt {
            table: "meta",
            reason: "unreadable decision log head".into(),
        }),
        None => Ok(Head::default()),
    }
}

fn write_all(
    db: &Database,
    history: &History,
    ops: Vec<WriteOp>,
) -> Result<Vec<WriteResult>, StoreError> {
    let txn = db.begin_write().map_err(StoreError::backend)?;
    let mut meta = txn.open_table(META).map_err(StoreError::backend)?;
    let mut next = read_head(&meta)?;
    let before = next;
    let mut results = Vec::with_capacity(ops.len());
    let mut users = Vec::with_capacity(ops.len());
    {
        let mut tables = DecisionTables {
            decisions: txn.open_table(DECISIONS).map_err(StoreError::backend)?,
            by_user: txn.open_table(BY_USER).map_err(StoreError::backend)?,
            by_day: txn.open_table(BY_DAY).map_err(StoreError::backend)?,
            log: txn.open_table(LOG).map_err(StoreError::backend)?,
            records: txn.open_table(RECORDS).map_err(StoreError::backend)?,
        };
        let mut snapshots = txn.open_table(SNAPSHOTS).map_err(StoreError::backend)?;
        let mut buf = Vec::with_capacity(1024);
        for op in ops {
            match op {
                WriteOp::Decision(d) => {
                    users.push(user_key(&d.user_id));
                    results.push(tables.decision(&d, &mut next, &mut buf)?);
                }
                WriteOp::DecisionWithRecords(d, writes) => {
                    users.push(user_key(&d.user_id));
                    let result = tables.decision(&d, &mut next, &mut buf)?;
                    if matches!(result, WriteResult::Stored) {
                        for w in &writes {
                            put_record(&mut tables.records, w)?;
                        }
                    }
                    results.push(result);
                }
                WriteOp::Records(writes) => {
                    for w in &writes {
                        put_record(&mut tables.records, w)?;
                    }
                    results.push(WriteResult::Stored);
                }
                WriteOp::Snapshot(s) => {
                    users.push(user_key(&s.user_id));
                    buf.clear();
                    buf.extend_from_slice(&s.seq.to_be_bytes());
                    buf.extend_from_slice(&s.state);
                    snapshots
                        .insert(s.user_id.as_str(), buf.as_slice())
                        .map_err(StoreError::backend)?;
                    results.push(WriteResult::Stored);
                }
            }
        }
        if next != before {
            meta.insert(LOG_HEAD, next.encode().as_slice())
                .map_err(StoreError::backend)?;
        }
    }
    drop(meta);
    history.extend(users);
    txn.commit().map_err(StoreError::backend)?;
    Ok(results)
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        let history = Arc::clone(&self.history);
        self.blocking(Lane::Commit, move |db| write_all(db, &history, ops))
            .await
    }

    async fn decision(&self, transaction_id: &str) -> Result<Option<Decision>, StoreError> {
        let id = transaction_id.to_owned();
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let table = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
            let value = table.get(id.as_str()).map_err(StoreError::backend)?;
            value.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn decisions(
        &self,
        transaction_ids: Vec<String>,
    ) -> Result<Vec<Option<Decision>>, StoreError> {
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let table = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
            transaction_ids
                .iter()
                .map(|id| {
                    let value = table.get(id.as_str()).map_err(StoreError::backend)?;
                    value.map(|v| decode(v.value())).transpose()
                })
                .collect()
        })
        .await
    }

    async fn decisions_for_user(
        &self,
        user_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        if !self.history.may_have(user_id) {
            return Ok(Vec::new());
        }
        let user = user_id.to_owned();
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            UserTables::open(&txn)?.decisions(&user, after_seq, limit)
        })
        .await
    }

    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let decisions = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
            let mut out = Vec::new();
            for_day_keys(&txn, day, after.as_ref(), |_, id| {
                if let Some(v) = decisions.get(id).map_err(StoreError::backend)? {
                    out.push(decode(v.value())?);
                }
                Ok(out.len() < limit)
            })?;
            Ok(out)
        })
        .await
    }

    async fn decision_keys_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayCursor>, StoreError> {
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let mut out = Vec::new();
            for_day_keys(&txn, day, after.as_ref(), |decided_us, id| {
                out.push(DayCursor {
                    decided_us,
                    transaction_id: id.to_owned(),
                });
                Ok(out.len() < limit)
            })?;
            Ok(out)
        })
        .await
    }

    async fn snapshot(&self, user_id: &str) -> Result<Option<UserSnapshot>, StoreError> {
        if !self.history.may_have(user_id) {
            return Ok(None);
        }
        let user = user_id.to_owned();
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            UserTables::open(&txn)?.snapshot(&user)
        })
        .await
    }

    async fn restore_point(&self, user_id: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        if !self.history.may_have(user_id) {
            // Most users of card traffic on their first payment: no blocking thread, no read.
            return Ok(RestorePoint::default());
        }
        let user = user_id.to_owned();
        self.blocking(Lane::Scoring, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            UserTables::open(&txn)?.restore_point(&user, limit)
        })
        .await
    }

    async fn restore_points(
        &self,
        user_ids: &[String],
        limit: usize,
    ) -> Result<Vec<RestorePoint>, StoreError> {
        let wanted: Vec<bool> = user_ids.iter().map(|u| self.history.may_have(u)).collect();
        if !wanted.contains(&true) {
            return Ok(vec![RestorePoint::default(); user_ids.len()]);
        }
        let users = user_ids.to_vec();
        // One blocking call, one read transaction and one opening of each table for the batch.
        self.blocking(Lane::Scoring, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let tables = UserTables::open(&txn)?;
            users
                .iter()
                .zip(wanted)
                .map(|(user, wanted)| {
                    if !wanted {
                        return Ok(RestorePoint::default());
                    }
                    tables.restore_point(user, limit)
                })
                .collect()
        })
        .await
    }

    fn may_have_history(&self, user_id: &str) -> bool {
        self.history.may_have(user_id)
    }

    async fn put_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.blocking(Lane::Write, move |db| {
            let txn = db.begin_write().map_err(StoreError::backend)?;
            {
                let mut table = txn.open_table(RECORDS).map_err(StoreError::backend)?;
                for w in &writes {
                    put_record(&mut table, w)?;
                }
            }
            txn.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn put_records_if(
        &self,
        guard: RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        guard.claim(&writes)?;
        // redb has one write transaction at a time: the read and the writes below are one step.
        self.blocking(Lane::Write, move |db| {
            let txn = db.begin_write().map_err(StoreError::backend)?;
            {
                let mut table = txn.open_table(RECORDS).map_err(StoreError::backend)?;
                let current = table
                    .get((guard.kind.as_str(), guard.key.as_str()))
                    .map_err(StoreError::backend)?
                    .map(|v| v.value().to_vec());
                if current != guard.expected {
                    return Ok(false);
                }
                for w in &writes {
                    put_record(&mut table, w)?;
                }
            }
            txn.commit().map_err(StoreError::backend)?;
            Ok(true)
        })
        .await
    }

    async fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.blocking(Lane::of_record(kind), move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let table = txn.open_table(RECORDS).map_err(StoreError::backend)?;
            let value = table
                .get((kind.as_str(), key.as_str()))
                .map_err(StoreError::backend)?;
            Ok(value.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn records(
        &self,
        kind: RecordKind,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.blocking(Lane::of_record(kind), move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let table = txn.open_table(RECORDS).map_err(StoreError::backend)?;
            keys.iter()
                .map(|key| {
                    let value = table.get((kind.as_str(), key.as_str()));
                    Ok(value
                        .map_err(StoreError::backend)?
                        .map(|v| v.value().to_vec()))
                })
                .collect()
        })
        .await
    }

    async fn scan_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        self.blocking(Lane::Read, move |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let table = txn.open_table(RECORDS).map_err(StoreError::backend)?;
            let start = match &after {
                Some(a) if a.as_str() >= prefix.as_str() => a.as_str(),
                _ => prefix.as_str(),
            };
            let mut out = Vec::new();
            let range = table
                .range((kind.as_str(), start)..)
                .map_err(StoreError::backend)?;
            for entry in range {
                let (k, v) = entry.map_err(StoreError::backend)?;
                let (k_kind, k_key) = k.value();
                if k_kind != kind.as_str() || !k_key.starts_with(prefix.as_str()) {
                    break;
                }
                if after.as_deref() == Some(k_key) {
                    continue;
                }
                out.push((k_key.to_owned(), v.value().to_vec()));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn run_read_work(&self, work: Box<dyn FnOnce() + Send>) -> Result<(), StoreError> {
        self.work.read_work(work).await
    }

    async fn decision_count(&self) -> Result<u64, StoreError> {
        self.blocking(Lane::Read, |db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            let table = txn.open_table(DECISIONS).map_err(StoreError::backend)?;
            table.len().map_err(StoreError::backend)
        })
        .await
    }
}

/// The tables a user's restore reads, opened once per read transaction (a batch of restores
/// shares them).
struct UserTables {
    snapshots: ReadOnlyTable<&'static str, &'static [u8]>,
    by_user: ReadOnlyTable<(&'static str, u64), &'static str>,
    decisions: ReadOnlyTable<&'static str, &'static [u8]>,
}

impl UserTables {
    fn open(txn: &ReadTransaction) -> Result<Self, StoreError> {
        Ok(UserTables {
            snapshots: txn.open_table(SNAPSHOTS).map_err(StoreError::backend)?,
            by_user: txn.open_table(BY_USER).map_err(StoreError::backend)?,
            decisions: txn.open_table(DECISIONS).map_err(StoreError::backend)?,
        })
    }

    /// A user's snapshot and up to `limit` decisions after it.
    fn restore_point(&self, user: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        let snapshot = self.snapshot(user)?;
        let after = snapshot.as_ref().map_or(0, |s| s.seq);
        let decisions = self.decisions(user, after, limit)?;
        Ok(RestorePoint {
            snapshot,
            decisions,
        })
    }

    fn snapshot(&self, user: &str) -> Result<Option<UserSnapshot>, StoreError> {
        let Some(v) = self.snapshots.get(user).map_err(StoreError::backend)? else {
            return Ok(None);
        };
        let bytes = v.value();
        if bytes.len() < 8 {
            return Err(StoreError::Corrupt {
                table: "user_snapshots",
                reason: format!("{} bytes is shorter than the sequence header", bytes.len()),
            });
        }
        let (seq, state) = bytes.split_at(8);
        Ok(Some(UserSnapshot {
            user_id: user.to_owned(),
            seq: u64::from_be_bytes(seq.try_into().expect("split at 8")),
            state: state.to_vec(),
        }))
    }

    fn decisions(
        &self,
        user: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        let Some(start) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let range = self
            .by_user
            .range((user, start)..=(user, u64::MAX))
            .map_err(StoreError::backend)?;
        for entry in range.take(limit) {
            let (_, txn_id) = entry.map_err(StoreError::backend)?;
            if let Some(v) = self
                .decisions
                .get(txn_id.value())
                .map_err(StoreError::backend)?
            {
                out.push(decode(v.value())?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
