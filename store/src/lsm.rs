//! The log-structured embedded backend: a fjall database directory with the same tables, the
//! same tamper-evident decision log and the same guarantees as the redb file
//! ([`crate::EmbeddedStore`]). A committed batch is one atomic write batch across the tables,
//! its journal synced to disk before it is acknowledged; sorting into tables happens later, in
//! one background worker. For the decision write path that is about half the CPU of redb's
//! in-place B-tree updates (BENCHMARKS.md, "A log-structured store engine").
//!
//! Keys are byte strings ordered like the redb tables' typed keys:
//! - `decisions_by_txn`: transaction id → the decision as JSON;
//! - `decisions_by_user`: user id length (u32 BE) ‖ user id ‖ user_seq (u64 BE) → transaction id;
//! - `decisions_by_day`: day (u32 BE) ‖ decision µs with the sign bit flipped (u64 BE) ‖
//!   transaction id → the event's entity fields ([`crate::day_entry`]; empty in entries
//!   written before them, and in entries migrated from redb whose decision was unreadable);
//! - `decision_log`: position (u64 BE) → log entry; `meta`: name → value;
//! - `records`: kind name ‖ 0 ‖ key → value; `user_snapshots`: user id → seq (u64 BE) ‖ state.

use crate::blocking::{BlockingWork, Lane};
use crate::chain::{self, Head, LogReport, VerifyOptions};
use crate::day_entry::{self, DayEntry};
use crate::expiry::{check_cutoff, declare, expired_front, latest_per_user, Expired};
use crate::history::{user_key, History};
use crate::migrate::Row;
use crate::record::{self, decode};
use crate::{
    DayCursor, DecisionLog, EmbeddedOptions, RecordGuard, RecordKind, RecordWrite, RestorePoint,
    Store, StoreError, UserSnapshot, WriteOp, WriteResult,
};
use async_trait::async_trait;
use fjall::{
    Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode, Readable, Snapshot,
};
use sentinel_event::Decision;
use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

const LOG_HEAD: &[u8] = b"decision_log_head";
/// Where retention left the log: the first kept position and the hash of the last pruned entry.
const LOG_ANCHOR: &[u8] = b"decision_log_anchor";
/// The number of stored decisions (u64 BE): an LSM tree has no cheap count of its own.
const DECISION_COUNT: &[u8] = b"decision_count";

/// The embedded store on fjall. Cheap to clone.
#[derive(Clone)]
pub struct LsmStore {
    inner: Arc<Inner>,
    work: BlockingWork,
}

struct Inner {
    db: Database,
    decisions: Keyspace,
    by_user: Keyspace,
    by_day: Keyspace,
    log: Keyspace,
    meta: Keyspace,
    records: Keyspace,
    snapshots: Keyspace,
    /// Users with anything stored: a restore of anyone else is answered at once.
    history: History,
    /// One writer at a time: a batch reads the log head, the count and the duplicate check
    /// and writes on top of them, and a compare-and-set reads and writes, as one step.
    writing: Mutex<Committed>,
}

/// Largest memtable of a table of small rows (indexes, the log, snapshots, records) before it
/// is flushed to disk. Memtables live outside the block cache; fjall's default of 64 MiB for
/// each of seven tables let the store hold ~220 MiB more than redb with a million users
/// (BENCHMARKS.md, "The log-structured engine by default"). Fixed when a table is created.
const SMALL_MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

/// Largest memtable of `decisions_by_txn`, which takes most of the bytes written: at 16 MiB it
/// flushed every ~2 s at 12,000 decisions/s and the HTTP p99 rose from 13 to 16–19 ms.
const DECISIONS_MEMTABLE_BYTES: u64 = 64 * 1024 * 1024;

/// What the last commit left, kept beside the write lock so a batch need not read it.
#[derive(Clone, Copy)]
struct Committed {
    head: Head,
    decisions: u64,
}

impl LsmStore {
    /// Opens or creates the store at `path` (a directory) with the default cache.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// Opens or creates the store at `path` with a block cache of at most
    /// `options.cache_bytes`.
    pub fn open_with(path: &Path, options: EmbeddedOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(StoreError::backend)?;
        // One compaction worker: with fjall's default of two on a two-core machine, both spin
        // re-queuing compactions the other holds (BENCHMARKS.md); one keeps up with the writer.
        let db = Database::builder(path)
            .cache_size(options.cache_bytes as u64)
            .worker_threads(1)
            .open()
            .map_err(StoreError::backend)?;
        let keyspace_with = |name: &str, memtable_bytes: u64| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(memtable_bytes)
            })
            .map_err(StoreError::backend)
        };
        let keyspace = |name: &str| keyspace_with(name, SMALL_MEMTABLE_BYTES);
        let inner = Inner {
            decisions: keyspace_with("decisions_by_txn", DECISIONS_MEMTABLE_BYTES)?,
            by_user: keyspace("decisions_by_user")?,
            by_day: keyspace("decisions_by_day")?,
            log: keyspace("decision_log")?,
            meta: keyspace("meta")?,
            records: keyspace("records")?,
            snapshots: keyspace("user_snapshots")?,
            history: History::default(),
            writing: Mutex::new(Committed {
                head: Head::default(),
                decisions: 0,
            }),
            db,
        };
        let committed = Committed {
            head: read_head(&inner.meta.get(LOG_HEAD).map_err(StoreError::backend)?)?,
            decisions: match inner
                .meta
                .get(DECISION_COUNT)
                .map_err(StoreError::backend)?
            {
                Some(v) => u64_at(&v, "meta")?,
                None => 0,
            },
        };
        *inner.writing.lock().unwrap_or_else(PoisonError::into_inner) = committed;
        inner.history.extend(users_with_history(&inner)?);
        Ok(LsmStore {
            inner: Arc::new(inner),
            work: BlockingWork::new(options.max_concurrent_reads)?,
        })
    }

    /// Major-compacts every table of the (stopped) store at `path`, so deleted decisions stop
    /// taking space. Returns the disk space before and after.
    pub fn compact(path: &Path) -> Result<(u64, u64), StoreError> {
        let store = Self::open(path)?;
        let inner = &store.inner;
        let before = inner.db.disk_space().map_err(StoreError::backend)?;
        for keyspace in inner.tables() {
            keyspace.major_compact().map_err(StoreError::backend)?;
        }
        inner
            .db
            .persist(PersistMode::SyncAll)
            .map_err(StoreError::backend)?;
        let after = inner.db.disk_space().map_err(StoreError::backend)?;
        Ok((before, after))
    }

    /// Visits every row of every table (for [`crate::migrate`]), from one snapshot. The
    /// decision count is this engine's own and stays behind.
    pub(crate) fn export_rows(
        &self,
        visit: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let snapshot = inner.db.snapshot();
        let rows = |keyspace: &Keyspace| {
            snapshot.iter(keyspace).map(|guard| {
                let (k, v) = guard.into_inner().map_err(StoreError::backend)?;
                Ok::<_, StoreError>((k, v))
            })
        };
        for row in rows(&inner.decisions) {
            let (k, v) = row?;
            visit(Row::Decision(
                utf8(&k, "decisions_by_txn")?.to_owned(),
                v.to_vec(),
            ))?;
        }
        for row in rows(&inner.by_user) {
            let (k, v) = row?;
            let (user, seq) = split_user_seq(&k)?;
            let txn_id = utf8(&v, "decisions_by_user")?.to_owned();
            visit(Row::ByUser(user.to_owned(), seq, txn_id))?;
        }
        for row in rows(&inner.by_day) {
            let (k, v) = row?;
            let (day, micros, txn_id) = split_day_key(&k)?;
            visit(Row::ByDay(day, micros, txn_id.to_owned(), v.to_vec()))?;
        }
        for row in rows(&inner.log) {
            let (k, v) = row?;
            visit(Row::Log(u64_at(&k, "decision_log")?, v.to_vec()))?;
        }
        for row in rows(&inner.meta) {
            let (k, v) = row?;
            if *k != *DECISION_COUNT {
                visit(Row::Meta(utf8(&k, "meta")?.to_owned(), v.to_vec()))?;
            }
        }
        for row in rows(&inner.records) {
            let (k, v) = row?;
            let bad = || corrupt("records", "key without a kind");
            let at = k.iter().position(|&b| b == 0).ok_or_else(bad)?;
            let kind = utf8(&k[..at], "records")?.to_owned();
            let key = utf8(&k[at + 1..], "records")?.to_owned();
            visit(Row::Record(kind, key, v.to_vec()))?;
        }
        for row in rows(&inner.snapshots) {
            let (k, v) = row?;
            visit(Row::Snapshot(
                utf8(&k, "user_snapshots")?.to_owned(),
                v.to_vec(),
            ))?;
        }
        Ok(())
    }

    /// Writes rows exported from another engine in one batch, synced by [`Self::finish_import`]
    /// (for [`crate::migrate`]). The users' history filter learns them at the next open.
    pub(crate) fn import_rows(&self, rows: Vec<Row>) -> Result<(), StoreError> {
        let inner = &self.inner;
        let mut committed = inner.lock();
        let mut batch = inner.db.batch();
        for row in rows {
            match row {
                Row::Decision(txn_id, v) => {
                    committed.decisions += 1;
                    batch.insert(&inner.decisions, txn_id, v);
                }
                Row::ByUser(user, seq, txn_id) => {
                    batch.insert(&inner.by_user, user_seq_key(&user, seq), txn_id)
                }
                Row::ByDay(day, micros, txn_id, entry) => {
                    batch.insert(&inner.by_day, day_key(day, micros, &txn_id), entry)
                }
                Row::Log(seq, v) => batch.insert(&inner.log, seq.to_be_bytes(), v),
                Row::Meta(name, v) => batch.insert(&inner.meta, name, v),
                Row::Record(kind, key, v) => batch.insert(&inner.records, kind_key(&kind, &key), v),
                Row::Snapshot(user, v) => batch.insert(&inner.snapshots, user, v),
            }
        }
        batch.insert(
            &inner.meta,
            DECISION_COUNT,
            committed.decisions.to_be_bytes(),
        );
        batch.commit().map_err(StoreError::backend)
    }

    /// Makes everything imported durable.
    pub(crate) fn finish_import(&self) -> Result<(), StoreError> {
        self.inner
            .db
            .persist(PersistMode::SyncAll)
            .map_err(StoreError::backend)
    }

    /// Runs blocking fjall work off the async threads, in its lane ([`BlockingWork`]).
    async fn blocking<T: Send + 'static>(
        &self,
        lane: Lane,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        self.work.run(lane, move || f(&inner)).await
    }
}

impl Inner {
    fn tables(&self) -> [&Keyspace; 7] {
        [
            &self.decisions,
            &self.by_user,
            &self.by_day,
            &self.log,
            &self.meta,
            &self.records,
            &self.snapshots,
        ]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Committed> {
        self.writing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A write batch with room for `items` writes that is durable (journal synced) when
    /// `commit` returns.
    fn batch(&self, items: usize) -> OwnedWriteBatch {
        OwnedWriteBatch::with_capacity(self.db.clone(), items)
            .durability(Some(PersistMode::SyncData))
    }

    fn write_all(&self, ops: &[WriteOp]) -> Result<Vec<WriteResult>, StoreError> {
        let mut committed = self.lock();
        let mut next = *committed;
        // A decision is four writes (record, log entry, user and day indexes), plus the head.
        let mut batch = self.batch(ops.len() * 4 + 2);
        let mut results = Vec::with_capacity(ops.len());
        let mut users = Vec::with_capacity(ops.len());
        // Decisions new in this batch: a second one for the same transaction is a duplicate
        // the store's own lookup cannot see yet.
        let mut fresh: HashMap<&str, &Arc<Decision>> = HashMap::with_capacity(ops.len());
        // Each decision's record is encoded here; the batch keeps its own copy.
        let mut buf = Vec::with_capacity(1024);
        for op in ops {
            match op {
                WriteOp::Decision(d) => {
                    users.push(user_key(&d.user_id));
                    results.push(self.decision(&mut batch, d, &mut next, &mut fresh, &mut buf)?);
                }
                WriteOp::DecisionWithRecords(d, writes) => {
                    users.push(user_key(&d.user_id));
                    let result = self.decision(&mut batch, d, &mut next, &mut fresh, &mut buf)?;
                    if matches!(result, WriteResult::Stored) {
                        for w in writes {
                            self.put_record(&mut batch, w);
                        }
                    }
                    results.push(result);
                }
                WriteOp::Records(writes) => {
                    for w in writes {
                        self.put_record(&mut batch, w);
                    }
                    results.push(WriteResult::Stored);
                }
                WriteOp::Snapshot(s) => {
                    users.push(user_key(&s.user_id));
                    let mut value = Vec::with_capacity(8 + s.state.len());
                    value.extend_from_slice(&s.seq.to_be_bytes());
                    value.extend_from_slice(&s.state);
                    batch.insert(&self.snapshots, s.user_id.as_str(), value);
                    results.push(WriteResult::Stored);
                }
            }
        }
        if next.head != committed.head {
            batch.insert(&self.meta, LOG_HEAD, next.head.encode());
            batch.insert(&self.meta, DECISION_COUNT, next.decisions.to_be_bytes());
        }
        // Before the commit, so no reader meets committed history the filter lacks.
        self.history.extend(users);
        batch.commit().map_err(StoreError::backend)?;
        *committed = next;
        Ok(results)
    }

    /// Adds `d` to `batch` unless its transaction id is already decided, extending the chain.
    fn decision<'a>(
        &self,
        batch: &mut OwnedWriteBatch,
        d: &'a Arc<Decision>,
        next: &mut Committed,
        fresh: &mut HashMap<&'a str, &'a Arc<Decision>>,
        buf: &mut Vec<u8>,
    ) -> Result<WriteResult, StoreError> {
        let txn_id = d.transaction_id.as_str();
        if let Some(earlier) = fresh.get(txn_id) {
            return Ok(WriteResult::AlreadyDecided(Arc::clone(earlier)));
        }
        if let Some(earlier) = self.decisions.get(txn_id).map_err(StoreError::backend)? {
            return Ok(WriteResult::AlreadyDecided(Arc::new(decode(&earlier)?)));
        }
        buf.clear();
        record::encode_into(buf, d)?;
        let (seq, entry) = next.head.append(txn_id, buf);
        batch.insert(&self.decisions, txn_id, buf.as_slice());
        batch.insert(&self.log, seq.to_be_bytes(), entry);
        batch.insert(&self.by_user, user_seq_key(&d.user_id, d.user_seq), txn_id);
        buf.clear();
        day_entry::encode_into(buf, d);
        batch.insert(&self.by_day, day_key_of(d), buf.as_slice());
        next.decisions += 1;
        fresh.insert(txn_id, d);
        Ok(WriteResult::Stored)
    }

    fn put_record(&self, batch: &mut OwnedWriteBatch, w: &RecordWrite) {
        let key = record_key(w.kind, &w.key);
        match &w.value {
            Some(v) => batch.insert(&self.records, key, v.as_slice()),
            None => batch.remove(&self.records, key),
        }
    }

    /// The log's anchor and the entries at its front that retention may delete (see
    /// [`expired_front`]).
    fn expired(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<(Head, Vec<Expired>), StoreError> {
        let anchor = match self.meta.get(LOG_ANCHOR).map_err(StoreError::backend)? {
            Some(v) => Head::decode(&v).ok_or_else(|| corrupt("meta", "unreadable log anchor"))?,
            None => Head::default(),
        };
        let entries = self
            .log
            .range(anchor.next_seq.to_be_bytes()..)
            .map(|guard| {
                let (k, v) = guard.into_inner().map_err(StoreError::backend)?;
                Ok((u64_at(&k, "decision_log")?, v.to_vec()))
            });
        let expired = expired_front(entries, &anchor, cutoff, max, |txn_id| {
            Ok(self
                .decisions
                .get(txn_id)
                .map_err(StoreError::backend)?
                .map(|v| v.to_vec()))
        })?;
        Ok((anchor, expired))
    }

    fn prune(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<u64, StoreError> {
        let mut committed = self.lock();
        let (anchor, expired) = self.expired(cutoff, max)?;
        let (anchor, Some(declaration)) = declare(anchor, &expired, cutoff, now) else {
            return Ok(0);
        };
        // Up to four removals per expired entry, then the declaration and three meta keys.
        let mut batch = self.batch(expired.len() * 4 + 4);
        let mut next = *committed;
        let mut pruned = 0;
        for Expired { seq, decision, .. } in &expired {
            batch.remove(&self.log, seq.to_be_bytes());
            let Some(d) = decision else { continue };
            let txn_id = d.transaction_id.as_str();
            batch.remove(&self.decisions, txn_id);
            let user_seq = user_seq_key(&d.user_id, d.user_seq);
            let indexed = self
                .by_user
                .get(&user_seq)
                .map_err(StoreError::backend)?
                .is_some_and(|v| *v == *txn_id.as_bytes());
            if indexed {
                batch.remove(&self.by_user, user_seq);
            }
            batch.remove(&self.by_day, day_key_of(d));
            pruned += 1;
        }
        // Declare the deletion in the chain itself, so the new start is provably retention's.
        let (seq, entry) = declaration.append(&mut next.head);
        next.decisions -= pruned;
        batch.insert(&self.log, seq.to_be_bytes(), entry);
        batch.insert(&self.meta, LOG_HEAD, next.head.encode());
        batch.insert(&self.meta, LOG_ANCHOR, anchor.encode());
        batch.insert(&self.meta, DECISION_COUNT, next.decisions.to_be_bytes());
        batch.commit().map_err(StoreError::backend)?;
        *committed = next;
        Ok(pruned)
    }
}

/// Every user with a snapshot or a decision: the snapshot keys, and one seek per user in the
/// per-user decision index (never a walk over every decision).
fn users_with_history(inner: &Inner) -> Result<Vec<u64>, StoreError> {
    let mut keys = Vec::new();
    for guard in inner.snapshots.iter() {
        let user = guard.key().map_err(StoreError::backend)?;
        keys.push(user_key(utf8(&user, "user_snapshots")?));
    }
    let mut from: Bound<Vec<u8>> = Bound::Unbounded;
    loop {
        let Some(guard) = inner.by_user.range((from, Bound::Unbounded)).next() else {
            break;
        };
        let key = guard.key().map_err(StoreError::backend)?;
        let (user, _) = split_user_seq(&key)?;
        keys.push(user_key(user));
        // Past this user's last possible position.
        let mut past = user_prefix(user);
        past.extend_from_slice(&u64::MAX.to_be_bytes());
        from = Bound::Excluded(past);
    }
    Ok(keys)
}

/// `len ‖ user`: every key of one user in `decisions_by_user` starts with it.
fn user_prefix(user: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + user.len() + 8);
    key.extend_from_slice(&(user.len() as u32).to_be_bytes());
    key.extend_from_slice(user.as_bytes());
    key
}

fn user_seq_key(user: &str, seq: u64) -> Vec<u8> {
    let mut key = user_prefix(user);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The user id and position of a `decisions_by_user` key.
fn split_user_seq(key: &[u8]) -> Result<(&str, u64), StoreError> {
    let bad = || corrupt("decisions_by_user", "malformed key");
    let len = u32::from_be_bytes(
        key.get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let end = 4 + len as usize;
    let user = utf8(key.get(4..end).ok_or_else(bad)?, "decisions_by_user")?;
    let seq = u64_at(key.get(end..).ok_or_else(bad)?, "decisions_by_user")?;
    Ok((user, seq))
}

/// `day ‖ µs ‖ txn`, with the sign bit of µs flipped so that byte order is time order.
fn day_key(day: u32, decided_us: i64, txn_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(12 + txn_id.len());
    key.extend_from_slice(&day.to_be_bytes());
    key.extend_from_slice(&((decided_us as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(txn_id.as_bytes());
    key
}

/// The parts of a `decisions_by_day` key.
fn split_day_key(key: &[u8]) -> Result<(u32, i64, &str), StoreError> {
    let bad = || corrupt("decisions_by_day", "malformed key");
    let day = u32::from_be_bytes(
        key.get(..4)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let micros = u64_at(key.get(4..12).ok_or_else(bad)?, "decisions_by_day")?;
    let txn_id = utf8(&key[12..], "decisions_by_day")?;
    Ok((day, (micros ^ (1 << 63)) as i64, txn_id))
}

/// The keys of `day` after `after` (exclusive).
fn day_range(day: u32, after: Option<&DayCursor>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let from = match after {
        Some(c) => Bound::Excluded(day_key(day, c.decided_us, &c.transaction_id)),
        None => Bound::Included(day.to_be_bytes().to_vec()),
    };
    // A peer may ask for any u32 day: the last one has no next.
    let to = day.checked_add(1).map_or(Bound::Unbounded, |next| {
        Bound::Excluded(next.to_be_bytes().to_vec())
    });
    (from, to)
}

fn day_key_of(d: &Decision) -> Vec<u8> {
    day_key(
        crate::day_of(d.decided_at),
        d.decided_at.timestamp_micros(),
        &d.transaction_id,
    )
}

fn record_key(kind: RecordKind, key: &str) -> Vec<u8> {
    kind_key(kind.as_str(), key)
}

/// `kind ‖ 0 ‖ key` (kind names hold no NUL).
fn kind_key(kind: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(kind.len() + 1 + key.len());
    out.extend_from_slice(kind.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

fn read_head(value: &Option<fjall::Slice>) -> Result<Head, StoreError> {
    match value {
        Some(v) => Head::decode(v).ok_or_else(|| corrupt("meta", "unreadable decision log head")),
        None => Ok(Head::default()),
    }
}

fn u64_at(bytes: &[u8], table: &'static str) -> Result<u64, StoreError> {
    Ok(u64::from_be_bytes(bytes.try_into().map_err(|_| {
        corrupt(
            table,
            &format!("{} bytes where 8 were expected", bytes.len()),
        )
    })?))
}

fn utf8<'a>(bytes: &'a [u8], table: &'static str) -> Result<&'a str, StoreError> {
    std::str::from_utf8(bytes).map_err(|e| corrupt(table, &e.to_string()))
}

fn corrupt(table: &'static str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.to_owned(),
    }
}

/// Reads of one consistent snapshot of the store.
struct View<'a> {
    inner: &'a Inner,
    snapshot: Snapshot,
}

impl<'a> View<'a> {
    fn new(inner: &'a Inner) -> Self {
        View {
            inner,
            snapshot: inner.db.snapshot(),
        }
    }

    fn decision(&self, txn_id: &str) -> Result<Option<Decision>, StoreError> {
        self.snapshot
            .get(&self.inner.decisions, txn_id)
            .map_err(StoreError::backend)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn snapshot_of(&self, user: &str) -> Result<Option<UserSnapshot>, StoreError> {
        let Some(bytes) = self
            .snapshot
            .get(&self.inner.snapshots, user)
            .map_err(StoreError::backend)?
        else {
            return Ok(None);
        };
        if bytes.len() < 8 {
            return Err(corrupt(
                "user_snapshots",
                &format!("{} bytes is shorter than the sequence header", bytes.len()),
            ));
        }
        let (seq, state) = bytes.split_at(8);
        Ok(Some(UserSnapshot {
            user_id: user.to_owned(),
            seq: u64_at(seq, "user_snapshots")?,
            state: state.to_vec(),
        }))
    }

    fn decisions_of(
        &self,
        user: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        let Some(start) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let from = user_seq_key(user, start);
        let to = user_seq_key(user, u64::MAX);
        let mut out = Vec::new();
        for guard in self
            .snapshot
            .range(&self.inner.by_user, from..=to)
            .take(limit)
        {
            let txn_id = guard.value().map_err(StoreError::backend)?;
            if let Some(d) = self.decision(utf8(&txn_id, "decisions_by_user")?)? {
                out.push(d);
            }
        }
        Ok(out)
    }

    fn restore_point(&self, user: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        let snapshot = self.snapshot_of(user)?;
        let after = snapshot.as_ref().map_or(0, |s| s.seq);
        let decisions = self.decisions_of(user, after, limit)?;
        Ok(RestorePoint {
            snapshot,
            decisions,
        })
    }

    /// Visits the day index's keys of `day` after `after` (exclusive), in decision-time order,
    /// while `visit` (given decision time and transaction id) answers `true`.
    fn for_day_keys(
        &self,
        day: u32,
        after: Option<&DayCursor>,
        mut visit: impl FnMut(i64, &str) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        for guard in self
            .snapshot
            .range(&self.inner.by_day, day_range(day, after))
        {
            let key = guard.key().map_err(StoreError::backend)?;
            let (_, decided_us, txn_id) = split_day_key(&key)?;
            if !visit(decided_us, txn_id)? {
                break;
            }
        }
        Ok(())
    }

    /// Up to `limit` entries of `day`'s index after `after` (exclusive), in decision-time
    /// order, from the index alone except where an entry predates its entity fields (or is
    /// damaged): then from its decision.
    fn day_entries(
        &self,
        day: u32,
        after: Option<&DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayEntry>, StoreError> {
        let mut out = Vec::new();
        for guard in self
            .snapshot
            .range(&self.inner.by_day, day_range(day, after))
        {
            // Counted in entries, not keys: a key whose decision is gone (none should be)
            // must not end a page early, which would read as the end of the day.
            if out.len() >= limit {
                break;
            }
            let (key, value) = guard.into_inner().map_err(StoreError::backend)?;
            let (_, decided_us, txn_id) = split_day_key(&key)?;
            // A damaged entry does not stop a start-up: its decision says the same.
            let entities = day_entry::decode(&value).unwrap_or_else(|e| {
                tracing::warn!(transaction_id = txn_id, error = %e, "reading a decision for its damaged day-index entry");
                None
            });
            match entities {
                Some(entities) => out.push(DayEntry {
                    position: DayCursor {
                        decided_us,
                        transaction_id: txn_id.to_owned(),
                    },
                    merchant_id: entities.merchant.map(str::to_owned),
                    device_id: entities.device.map(str::to_owned),
                    event_ms: entities.event_ms,
                }),
                None => {
                    if let Some(d) = self.decision(txn_id)? {
                        out.push(DayEntry::of(&d));
                    }
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for LsmStore {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        self.blocking(Lane::Commit, move |inner| inner.write_all(&ops))
            .await
    }

    async fn decision(&self, transaction_id: &str) -> Result<Option<Decision>, StoreError> {
        let id = transaction_id.to_owned();
        self.blocking(Lane::Read, move |inner| View::new(inner).decision(&id))
            .await
    }

    async fn decisions(
        &self,
        transaction_ids: Vec<String>,
    ) -> Result<Vec<Option<Decision>>, StoreError> {
        self.blocking(Lane::Read, move |inner| {
            let view = View::new(inner);
            transaction_ids.iter().map(|id| view.decision(id)).collect()
        })
        .await
    }

    async fn decisions_for_user(
        &self,
        user_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        if !self.inner.history.may_have(user_id) {
            return Ok(Vec::new());
        }
        let user = user_id.to_owned();
        self.blocking(Lane::Read, move |inner| {
            View::new(inner).decisions_of(&user, after_seq, limit)
        })
        .await
    }

    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.blocking(Lane::Read, move |inner| {
            let view = View::new(inner);
            let mut out = Vec::new();
            view.for_day_keys(day, after.as_ref(), |_, id| {
                if let Some(d) = view.decision(id)? {
                    out.push(d);
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
        self.blocking(Lane::Read, move |inner| {
            let mut out = Vec::new();
            View::new(inner).for_day_keys(day, after.as_ref(), |decided_us, id| {
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

    async fn day_entries(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayEntry>, StoreError> {
        self.blocking(Lane::Read, move |inner| {
            View::new(inner).day_entries(day, after.as_ref(), limit)
        })
        .await
    }

    async fn snapshot(&self, user_id: &str) -> Result<Option<UserSnapshot>, StoreError> {
        if !self.inner.history.may_have(user_id) {
            return Ok(None);
        }
        let user = user_id.to_owned();
        self.blocking(Lane::Read, move |inner| View::new(inner).snapshot_of(&user))
            .await
    }

    async fn restore_point(&self, user_id: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        if !self.inner.history.may_have(user_id) {
            return Ok(RestorePoint::default());
        }
        let user = user_id.to_owned();
        self.blocking(Lane::Scoring, move |inner| {
            View::new(inner).restore_point(&user, limit)
        })
        .await
    }

    async fn restore_points(
        &self,
        user_ids: &[String],
        limit: usize,
    ) -> Result<Vec<RestorePoint>, StoreError> {
        let wanted: Vec<bool> = user_ids
            .iter()
            .map(|u| self.inner.history.may_have(u))
            .collect();
        if !wanted.contains(&true) {
            return Ok(vec![RestorePoint::default(); user_ids.len()]);
        }
        let users = user_ids.to_vec();
        // One blocking call and one snapshot for the batch.
        self.blocking(Lane::Scoring, move |inner| {
            let view = View::new(inner);
            users
                .iter()
                .zip(wanted)
                .map(|(user, wanted)| {
                    if !wanted {
                        return Ok(RestorePoint::default());
                    }
                    view.restore_point(user, limit)
                })
                .collect()
        })
        .await
    }

    fn may_have_history(&self, user_id: &str) -> bool {
        self.inner.history.may_have(user_id)
    }

    async fn run_read_work(&self, work: Box<dyn FnOnce() + Send>) -> Result<(), StoreError> {
        self.work.read_work(work).await
    }

    async fn decision_count(&self) -> Result<u64, StoreError> {
        Ok(self.inner.lock().decisions)
    }

    async fn put_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.blocking(Lane::Write, move |inner| {
            let _one_writer = inner.lock();
            let mut batch = inner.batch(writes.len());
            for w in &writes {
                inner.put_record(&mut batch, w);
            }
            batch.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn put_records_if(
        &self,
        guard: RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        guard.claim(&writes)?;
        self.blocking(Lane::Write, move |inner| {
            // The read and the writes are one step: every writer holds this lock.
            let _one_writer = inner.lock();
            let current = inner
                .records
                .get(record_key(guard.kind, &guard.key))
                .map_err(StoreError::backend)?;
            if current.as_deref() != guard.expected.as_deref() {
                return Ok(false);
            }
            let mut batch = inner.batch(writes.len());
            for w in &writes {
                inner.put_record(&mut batch, w);
            }
            batch.commit().map_err(StoreError::backend)?;
            Ok(true)
        })
        .await
    }

    async fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = record_key(kind, key);
        self.blocking(Lane::of_record(kind), move |inner| {
            Ok(inner
                .records
                .get(key)
                .map_err(StoreError::backend)?
                .map(|v| v.to_vec()))
        })
        .await
    }

    async fn records(
        &self,
        kind: RecordKind,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.blocking(Lane::of_record(kind), move |inner| {
            keys.iter()
                .map(|key| {
                    let value = inner.records.get(record_key(kind, key));
                    Ok(value.map_err(StoreError::backend)?.map(|v| v.to_vec()))
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
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(record_key(kind, a)),
            _ => Bound::Included(record_key(kind, prefix)),
        };
        let prefix = record_key(kind, prefix);
        let skip = kind.as_str().len() + 1;
        self.blocking(Lane::Read, move |inner| {
            let mut out = Vec::new();
            for guard in inner.records.range((start, Bound::Unbounded)) {
                let (k, v) = guard.into_inner().map_err(StoreError::backend)?;
                if !k.starts_with(&prefix) {
                    break;
                }
                out.push((utf8(&k[skip..], "records")?.to_owned(), v.to_vec()));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl DecisionLog for LsmStore {
    async fn log_head(&self) -> Result<Head, StoreError> {
        Ok(self.inner.lock().head)
    }

    async fn verify_log(&self, options: VerifyOptions) -> Result<LogReport, StoreError> {
        self.blocking(Lane::Read, move |inner| {
            let view = View::new(inner);
            let meta = |name: &[u8]| -> Result<Head, StoreError> {
                Ok(view
                    .snapshot
                    .get(&inner.meta, name)
                    .map_err(StoreError::backend)?
                    .and_then(|v| Head::decode(&v))
                    .unwrap_or_default())
            };
            let recorded = meta(LOG_HEAD)?;
            let start = meta(LOG_ANCHOR)?;
            let entries = view
                .snapshot
                .iter(&inner.log)
                .map_while(|guard| guard.into_inner().ok())
                .map_while(|(k, v)| Some((u64_at(&k, "decision_log").ok()?, v.to_vec())));
            let decision = |txn_id: &str| {
                view.snapshot
                    .get(&inner.decisions, txn_id)
                    .ok()
                    .flatten()
                    .map(|v| v.to_vec())
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
        self.blocking(Lane::Write, move |inner| inner.prune(cutoff, now, max))
            .await
    }

    async fn users_expiring(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
        max: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        check_cutoff(cutoff, now)?;
        self.blocking(Lane::Read, move |inner| {
            let (_, expired) = inner.expired(cutoff, max)?;
            Ok(latest_per_user(expired))
        })
        .await
    }
}

#[cfg(test)]
mod tests;
