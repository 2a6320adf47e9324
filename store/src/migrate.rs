//! Moving a data directory's store from one embedded engine to the other: every row of every
//! table copied as stored (decision bytes, log entries and head unchanged, so the tamper-evident
//! chain carries over and still verifies), then checked, then the old store set aside.

use crate::chain::{self, Head};
use crate::{EmbeddedEngine, EmbeddedStore, LsmStore, StoreError};
use std::path::{Path, PathBuf};

/// One row of an embedded table, engine-neutral.
pub(crate) enum Row {
    /// `decisions_by_txn`: transaction id → stored decision.
    Decision(String, Vec<u8>),
    /// `decisions_by_user`: (user id, user_seq) → transaction id.
    ByUser(String, u64, String),
    /// `decisions_by_day`: (day, decision µs, transaction id) → the entry's entity fields
    /// ([`crate::day_entry`]: redb's table keeps none, so its export reads them from the
    /// decision; empty where that cannot be read, and the new store reads the decision).
    ByDay(u32, i64, String, Vec<u8>),
    /// `decision_log`: position → entry.
    Log(u64, Vec<u8>),
    /// `meta`: name → value (the log's head and anchor).
    Meta(String, Vec<u8>),
    /// `records`: (kind name, key) → value.
    Record(String, String, Vec<u8>),
    /// `user_snapshots`: user id → seq ‖ state.
    Snapshot(String, Vec<u8>),
}

/// Rows copied per write (one transaction or batch).
pub(crate) const CHUNK: usize = 10_000;

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Rows copied, over every table.
    pub rows: u64,
    /// Decisions in the new store (equal to the old one's).
    pub decisions: u64,
    /// The decision log's head, the same in both.
    pub head: Head,
    /// Where the old store now is.
    pub set_aside: PathBuf,
}

/// Copies the store of a stopped node's `data_dir` to `to`, verifies the copy (same decision
/// count, same log head, the log intact) and renames the old store with a `.migrated` suffix
/// (kept for a rollback, deleted by the operator). Calls `progress` with the rows copied so
/// far. Refuses when `data_dir` has no store on the other engine, or already has one on `to`.
pub async fn migrate(
    data_dir: &Path,
    to: EmbeddedEngine,
    mut progress: impl FnMut(u64) + Send,
) -> Result<Migration, StoreError> {
    let from = match to {
        EmbeddedEngine::Redb => EmbeddedEngine::Lsm,
        EmbeddedEngine::Lsm => EmbeddedEngine::Redb,
    };
    let (source, target) = (from.path(data_dir), to.path(data_dir));
    if !source.exists() {
        return Err(StoreError::Backend(format!(
            "no {} store to migrate at {}",
            from.as_str(),
            source.display()
        )));
    }
    if target.exists() {
        return Err(StoreError::Backend(format!(
            "{} already exists; move it away to migrate into a fresh one",
            target.display()
        )));
    }
    let old = crate::open_embedded(data_dir, from, crate::EmbeddedOptions::default())?;
    let (head, decisions) = (old.log_head().await?, old.decision_count().await?);
    drop(old);
    let copied = tokio::task::block_in_place(|| copy(&source, &target, from, &mut progress));
    let rows = match copied {
        Ok(rows) => rows,
        Err(e) => {
            remove(&target);
            return Err(e);
        }
    };
    if let Err(e) = check(data_dir, to, head, decisions).await {
        remove(&target);
        return Err(e);
    }
    let mut set_aside = source.clone().into_os_string();
    set_aside.push(".migrated");
    let set_aside = PathBuf::from(set_aside);
    std::fs::rename(&source, &set_aside).map_err(StoreError::backend)?;
    Ok(Migration {
        rows,
        decisions,
        head,
        set_aside,
    })
}

/// Copies every row from the store at `source` (on `from`) into a new store at `target`.
fn copy(
    source: &Path,
    target: &Path,
    from: EmbeddedEngine,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    match from {
        EmbeddedEngine::Redb => {
            let (old, new) = (EmbeddedStore::open(source)?, LsmStore::open(target)?);
            let rows = pump(|v| old.export_rows(v), |c| new.import_rows(c), progress)?;
            new.finish_import()?;
            Ok(rows)
        }
        EmbeddedEngine::Lsm => {
            let (old, new) = (LsmStore::open(source)?, EmbeddedStore::open(target)?);
            pump(|v| old.export_rows(v), |c| new.import_rows(c), progress)
        }
    }
}

/// A visitor of exported rows.
type Visit<'a> = &'a mut dyn FnMut(Row) -> Result<(), StoreError>;

/// Streams the rows `export` visits into `import`, [`CHUNK`] at a time; returns how many.
fn pump(
    export: impl FnOnce(Visit) -> Result<(), StoreError>,
    import: impl Fn(Vec<Row>) -> Result<(), StoreError>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, StoreError> {
    let mut rows = 0u64;
    let mut chunk = Vec::with_capacity(CHUNK);
    export(&mut |row| {
        chunk.push(row);
        if chunk.len() == CHUNK {
            rows += CHUNK as u64;
            import(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))?;
            progress(rows);
        }
        Ok(())
    })?;
    rows += chunk.len() as u64;
    import(chunk)?;
    progress(rows);
    Ok(rows)
}

/// Opens the new store afresh and checks it holds what the old one did, and that its log
/// verifies end to end.
async fn check(
    data_dir: &Path,
    to: EmbeddedEngine,
    head: Head,
    decisions: u64,
) -> Result<(), StoreError> {
    let new = crate::open_embedded(data_dir, to, crate::EmbeddedOptions::default())?;
    let (new_head, new_decisions) = (new.log_head().await?, new.decision_count().await?);
    if (new_head, new_decisions) != (head, decisions) {
        return Err(StoreError::Backend(format!(
            "the copy differs: {new_decisions} decisions, log head at {} (the old store: \
             {decisions}, at {})",
            new_head.next_seq, head.next_seq
        )));
    }
    let report = new
        .verify_log(chain::VerifyOptions {
            expect_head: Some(head.hash).filter(|_| head != Head::default()),
            now: chrono::Utc::now(),
        })
        .await?;
    match report.problem {
        None => Ok(()),
        Some(p) => Err(StoreError::Backend(format!(
            "the copy's decision log does not verify at position {}: {:?}",
            p.seq, p.kind
        ))),
    }
}

/// Removes a half-made copy (a file for redb, a directory for fjall).
fn remove(target: &Path) {
    let _ = if target.is_dir() {
        std::fs::remove_dir_all(target)
    } else {
        std::fs::remove_file(target)
    };
}

#[cfg(test)]
mod tests;
