//! The live entity index saved to a file, and read back at start-up instead of recounted.
//!
//! A node's first pass counts every decision of the last 30 days plus the label delay (~2 µs
//! each: minutes for a busy issuer's month). So a node saves what its tail has counted — the
//! activity, the position of the last decision read, the event time before which it forgot,
//! and the ids of the decisions it counted in the overlap a pass re-reads — and at start-up
//! reads that back and tails the store from there. The index is then the one the node would
//! have had had it kept running from the save: decisions stored since (by this node before it
//! stopped, by an import, by other members) are counted by the first pass, once each. A save
//! takes in the decisions committed here that the index has not counted yet, and is held back
//! while a decision it counted is not readable in the store (whose ids the file must list).
//!
//! The file is untrusted input: a magic and format byte, a CRC-32 of the body (against damage;
//! whoever can write the data directory can change the store too), a MessagePack body whose
//! counts are checked ([`EntityActivity`]'s deserializer). It is used only when the store holds
//! the decision it was saved at, at the same time (another store's file is refused, and so is
//! a store restored from a backup older than that decision), when its activity reaches as far
//! back as this node's window needs, and when its last decision is still in the window;
//! otherwise the node counts from the store and logs why.

use super::{oldest_needed, second_of, MICROS_PER_SECOND, TAIL_OVERLAP_US};
use crate::catalog::Catalog;
use crate::decision_days::for_each_decision_key;
use crate::error::CatalogError;
use chrono::{DateTime, Utc};
use sentinel_engine::EntityActivity;
use sentinel_store::DayCursor;
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first bytes of a saved index: a name and the format (1).
const MAGIC: &[u8; 8] = b"SNTLEIX\x01";

/// What is written (borrowed from the live tail).
#[derive(Serialize)]
struct Saving<'a> {
    last_read: (i64, &'a str),
    kept_from_ms: i64,
    activity: &'a EntityActivity,
    overlap: &'a [(i64, String)],
}

/// What is read back ([`Saving`]'s fields in the same order).
#[derive(Deserialize)]
struct Saved {
    /// Decision time (µs) and transaction id of the last decision read.
    last_read: (i64, String),
    /// The event time (ms) before which the activity forgot its hours.
    kept_from_ms: i64,
    activity: EntityActivity,
    /// Decision time (µs) and transaction id of each decision counted in the overlap.
    overlap: Vec<(i64, String)>,
}

/// Figures of a saved or restored index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedIndex {
    /// Merchants and devices with activity.
    pub entities: usize,
    /// Decisions counted within the overlap the next pass re-reads (their ids are in the file).
    pub overlap: usize,
    /// Size of the file.
    pub bytes: u64,
}

/// What became of a saved index at start-up.
#[derive(Debug)]
pub enum RestoreOutcome {
    /// No file: the first pass counts from the store.
    Missing,
    /// The index was read back; the first pass counts only what was stored since.
    Restored(SavedIndex),
    /// The file was not used, for this reason; the first pass counts from the store.
    Refused(Refusal),
}

/// Why a saved index was not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// Not a saved index of this format, truncated, its checksum wrong, or its counts invalid.
    #[error("the file is damaged: {0}")]
    Damaged(String),
    /// The store does not hold the decision the file was saved at.
    #[error(
        "the store does not hold the decision it was saved at (another store's file, or a \
         store restored from an older backup)"
    )]
    OtherStore,
    /// Its activity forgot hours this node's window needs (a longer label delay than when it
    /// was saved, or a clock set back).
    #[error("it kept activity from {kept_from} on; this node's window needs it from {needed}")]
    TooShort {
        /// Where the saved activity starts.
        kept_from: DateTime<Utc>,
        /// Where this node's window starts.
        needed: DateTime<Utc>,
    },
    /// Its last decision is older than the window: counting from the store reads no more.
    #[error("its last decision ({0}) is older than the window")]
    Outdated(DateTime<Utc>),
    /// This process built its index already.
    #[error("the index was already built in this process")]
    AlreadyBuilt,
}

/// Saving or reading a saved index failed.
#[derive(Debug, thiserror::Error)]
pub enum SavedIndexError {
    /// The file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Reading the overlap's decisions or the saved position from the store failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Some decisions counted within the overlap could not be read back from the store yet.
    #[error(
        "{found} of the {counted} decisions counted in the last two minutes are readable in \
         the store (its reads lag its writes?); not saved this time"
    )]
    Unreadable {
        /// Decisions counted within the overlap.
        counted: usize,
        /// Of those, the ones the store's day index listed.
        found: usize,
    },
    /// Encoding the index failed.
    #[error("encoding the entity index: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The blocking task writing or reading the file did not finish (the runtime is stopping).
    #[error("the entity index file task was interrupted")]
    Interrupted,
}

fn ms_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The file's bytes for `saving`.
fn encode(saving: &Saving<'_>) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let body = rmp_serde::to_vec(saving)?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + 4 + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Reads a file's bytes back; `Err` says what is wrong with them.
fn decode(bytes: &[u8]) -> Result<Saved, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a saved entity index of this format")?;
    let (checksum, body) = rest.split_first_chunk::<4>().ok_or("truncated")?;
    if u32::from_le_bytes(*checksum) != crc32fast::hash(body) {
        return Err("its checksum does not match its contents".into());
    }
    rmp_serde::from_slice(body).map_err(|e| e.to_string())
}

/// Writes `bytes` to `path` whole or not at all: a temporary file, synced, renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    // The rename itself survives a crash once the directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

impl Catalog {
    /// Saves the live entity index's counts to `path` (replacing the file whole), for
    /// [`Catalog::restore_entity_index`] at the next start. `None`: nothing to save yet (no
    /// pass has run, or it read no decision).
    ///
    /// Holds the index while it writes: the refresh waits, scoring does not.
    pub async fn save_entity_index(
        &self,
        path: &Path,
    ) -> Result<Option<SavedIndex>, SavedIndexError> {
        let mut sources = self.entity_sources.lock().await;
        let Some(tail) = sources.tail.as_mut() else {
            return Ok(None);
        };
        // Decisions committed here since the last pass are counted now: one committed late,
        // behind the overlap, would be counted by the next pass of this process but by none
        // after a restart. Dropped ones are still read by the next pass.
        tail.record_committed_here(&self.committed_here);
        let (Some(last), Some(kept_from_ms)) = (&tail.last_read, tail.kept_from_ms) else {
            return Ok(None);
        };
        if last.transaction_id.is_empty() {
            return Ok(None);
        }
        let last = last.clone();
        // The ids of the decisions counted that a later pass may meet again: from the overlap
        // before the last position (or the earliest still remembered) to now.
        let first_second = tail
            .recent_per_second
            .keys()
            .next()
            .copied()
            .unwrap_or(i64::MAX)
            .min(second_of(last.decided_us - TAIL_OVERLAP_US));
        let from = DayCursor {
            decided_us: first_second.saturating_mul(MICROS_PER_SECOND),
            transaction_id: String::new(),
        };
        let mut overlap = Vec::with_capacity(tail.recent.len());
        for_each_decision_key(&**self.store(), from, Utc::now(), |key| {
            if tail
                .recent
                .contains_key(&tail.ids.hash_one(&key.transaction_id))
            {
                overlap.push((key.decided_us, key.transaction_id.clone()));
            }
        })
        .await?;
        // Every decision counted is stored; on a store whose reads lag its writes (ScyllaDB
        // below quorum) some may not be readable yet, and a file without their ids would
        // count them again after a restart.
        if overlap.len() != tail.recent.len() {
            return Err(SavedIndexError::Unreadable {
                counted: tail.recent.len(),
                found: overlap.len(),
            });
        }
        // Encoding a busy month's activity takes a while: on a blocking thread, the tail
        // lent to it and put back.
        let tail = sources.tail.take().expect("checked above");
        let file = path.to_owned();
        let (tail, written) = tokio::task::spawn_blocking(move || {
            let saving = Saving {
                last_read: (last.decided_us, &last.transaction_id),
                kept_from_ms,
                activity: &tail.activity,
                overlap: &overlap,
            };
            let written = encode(&saving)
                .map_err(SavedIndexError::from)
                .and_then(|bytes| {
                    write_atomically(&file, &bytes)
                        .map(|()| bytes.len() as u64)
                        .map_err(|source| SavedIndexError::Io { path: file, source })
                });
            (tail, written.map(|bytes| (bytes, overlap.len())))
        })
        .await
        .map_err(|_| SavedIndexError::Interrupted)?;
        let entities = tail.activity.entities();
        sources.tail = Some(tail);
        let (bytes, overlap) = written?;
        Ok(Some(SavedIndex {
            entities,
            overlap,
            bytes,
        }))
    }

    /// Reads back the index [`Catalog::save_entity_index`] wrote to `path`, before the first
    /// [`Catalog::refresh_entity_risk`] (which then counts only the decisions stored since),
    /// if it fits this store and a window of `delay_ms` at `now`; see [`RestoreOutcome`].
    pub async fn restore_entity_index(
        &self,
        path: &Path,
        delay_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<RestoreOutcome, SavedIndexError> {
        let file = path.to_owned();
        let read = tokio::task::spawn_blocking(move || match std::fs::read(&file) {
            Ok(bytes) => Ok(Some((bytes.len() as u64, decode(&bytes)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SavedIndexError::Io { path: file, source }),
        })
        .await
        .map_err(|_| SavedIndexError::Interrupted)??;
        let (bytes, saved) = match read {
            None => return Ok(RestoreOutcome::Missing),
            Some((_, Err(why))) => return Ok(RestoreOutcome::Refused(Refusal::Damaged(why))),
            Some((bytes, Ok(saved))) => (bytes, saved),
        };
        let needed = oldest_needed(now, delay_ms);
        let refused = if saved.kept_from_ms > needed.timestamp_millis() {
            Some(Refusal::TooShort {
                kept_from: ms_time(saved.kept_from_ms),
                needed,
            })
        } else if saved.last_read.0 < needed.timestamp_micros() {
            let last = DateTime::from_timestamp_micros(saved.last_read.0);
            Some(Refusal::Outdated(last.unwrap_or(DateTime::<Utc>::MIN_UTC)))
        } else {
            let stored = self.store().decision(&saved.last_read.1).await;
            let stored = stored.map_err(CatalogError::from)?;
            let same = stored.is_some_and(|d| d.decided_at.timestamp_micros() == saved.last_read.0);
            (!same).then_some(Refusal::OtherStore)
        };
        if let Some(refusal) = refused {
            return Ok(RestoreOutcome::Refused(refusal));
        }
        let mut sources = self.entity_sources.lock().await;
        if sources.tail.is_some() {
            return Ok(RestoreOutcome::Refused(Refusal::AlreadyBuilt));
        }
        let mut tail = self.new_tail(saved.activity);
        for (decided_us, id) in &saved.overlap {
            let id = tail.ids.hash_one(id.as_str());
            // A repeated id (the file is untrusted) must not count its second twice.
            if !tail.recent.contains_key(&id) {
                tail.remember(id, *decided_us);
            }
        }
        let (decided_us, transaction_id) = saved.last_read;
        tail.last_read = Some(DayCursor {
            decided_us,
            transaction_id,
        });
        tail.kept_from_ms = Some(saved.kept_from_ms);
        tail.read_back = true;
        let restored = SavedIndex {
            entities: tail.activity.entities(),
            overlap: tail.recent.len(),
            bytes,
        };
        sources.tail = Some(tail);
        Ok(RestoreOutcome::Restored(restored))
    }
}

#[cfg(test)]
mod tests;
