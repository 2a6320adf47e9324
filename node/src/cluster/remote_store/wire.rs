//! The store host's wire format: JSON requests and replies, each kept well below
//! ractor_cluster's 16 MiB frame limit (a larger frame closes the session). Write batches are
//! split into several requests, lists of decisions and records come in pages cut by size, and
//! a record too large for one frame (a model artifact) is read in parts.

use sentinel_event::Decision;
use sentinel_store::{
    DayCursor, DayEntry, RecordGuard, RecordKind, RecordWrite, UserSnapshot, WriteOp, WriteResult,
};
use serde::{Deserialize, Serialize};

/// The most bytes one request or reply carries, a quarter of ractor_cluster's frame limit.
pub const FRAME_BUDGET: usize = 4 * 1024 * 1024;

/// Records up to this size travel inline; larger ones are read in parts of this size.
pub const INLINE_RECORD: usize = FRAME_BUDGET / 2;

/// One [`sentinel_store::Store`] method call (some split over several requests).
#[derive(Serialize, Deserialize)]
pub enum StoreRequest {
    WriteBatch(Vec<WriteOp>),
    Decision(String),
    /// The decisions of several transaction ids (see [`sentinel_store::Store::decisions`]),
    /// answered with [`StoreReply::Found`].
    DecisionsById(Vec<String>),
    DecisionsForUser {
        user_id: String,
        after_seq: u64,
        limit: usize,
    },
    DecisionsByDay {
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    },
    /// Positions of a day's decisions, without the decisions (see
    /// [`sentinel_store::Store::decision_keys_by_day`]).
    DecisionKeysByDay {
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    },
    /// A day's decisions' positions and event entities (see
    /// [`sentinel_store::Store::day_entries`]), answered with [`StoreReply::Entries`].
    DayEntries {
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    },
    Snapshot(String),
    RestorePoint {
        user_id: String,
        limit: usize,
    },
    DecisionCount,
    PutRecords(Vec<RecordWrite>),
    PutRecordsIf(RecordGuard, Vec<RecordWrite>),
    Record {
        kind: RecordKind,
        key: String,
    },
    /// `len` bytes of a record from `offset` (a record too large to travel inline).
    RecordPart {
        kind: RecordKind,
        key: String,
        offset: u64,
        len: u64,
    },
    ScanRecords {
        kind: RecordKind,
        prefix: String,
        after: Option<String>,
        limit: usize,
    },
}

/// The outcome of one [`StoreRequest`].
#[derive(Serialize, Deserialize)]
pub enum StoreReply {
    Written(Vec<WriteResult>),
    Decision(Option<Decision>),
    /// The answers to the first of a [`StoreRequest::DecisionsById`]'s ids, in order: as many
    /// as fit a frame (ask again for the rest).
    Found(Page<Option<Decision>>),
    Decisions(Page<Decision>),
    Positions(Page<DayCursor>),
    Entries(Page<DayEntry>),
    Snapshot(Option<UserSnapshot>),
    RestorePoint {
        snapshot: Option<UserSnapshot>,
        decisions: Page<Decision>,
    },
    Count(u64),
    Done,
    Applied(bool),
    Record(RecordValue),
    RecordPart(Bytes),
    Records(Page<(String, RecordValue)>),
    Failed(String),
    Refused(String),
}

impl StoreReply {
    /// The reply's kind, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreReply::Written(_) => "written",
            StoreReply::Decision(_) => "decision",
            StoreReply::Found(_) => "decisions by id",
            StoreReply::Decisions(_) => "decisions",
            StoreReply::Positions(_) => "positions",
            StoreReply::Entries(_) => "day entries",
            StoreReply::Snapshot(_) => "snapshot",
            StoreReply::RestorePoint { .. } => "restore point",
            StoreReply::Count(_) => "count",
            StoreReply::Done => "done",
            StoreReply::Applied(_) => "applied",
            StoreReply::Record(_) => "record",
            StoreReply::RecordPart(_) => "record part",
            StoreReply::Records(_) => "records",
            StoreReply::Failed(_) => "failed",
            StoreReply::Refused(_) => "refused",
        }
    }
}

/// Items in order; `more`: the page was cut by size, ask again after the last item.
#[derive(Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl<T: Serialize> Page<T> {
    /// The longest prefix of `items` whose encoding fits `budget` bytes (at least one item,
    /// so a page always moves on).
    pub fn cut(items: Vec<T>, budget: usize) -> Page<T> {
        let mut used = 0;
        let mut kept = 0;
        for item in &items {
            used += serde_json::to_vec(item).map_or(0, |b| b.len()) + 1;
            if used > budget && kept > 0 {
                break;
            }
            kept += 1;
        }
        let more = kept < items.len();
        let mut items = items;
        items.truncate(kept);
        Page { items, more }
    }
}

/// A record's value as it travels.
#[derive(Serialize, Deserialize)]
pub enum RecordValue {
    Absent,
    Inline(Bytes),
    /// Too large for a frame: this many bytes, read with [`StoreRequest::RecordPart`].
    TooLarge(u64),
}

impl RecordValue {
    /// How `value` travels.
    pub fn of(value: Option<Vec<u8>>) -> RecordValue {
        match value {
            None => RecordValue::Absent,
            Some(v) if v.len() > INLINE_RECORD => RecordValue::TooLarge(v.len() as u64),
            Some(v) => RecordValue::Inline(Bytes(v)),
        }
    }
}

/// Bytes as base64 on the wire (a JSON array of numbers would be three to four times larger).
#[derive(Serialize, Deserialize)]
pub struct Bytes(#[serde(with = "sentinel_store::base64_bytes")] pub Vec<u8>);

/// `ops` as [`StoreRequest::WriteBatch`] requests of at most [`FRAME_BUDGET`] bytes each
/// (one operation larger than that goes alone), with the number of operations in each.
/// Each operation is encoded once; the requests are assembled from the pieces.
pub fn write_batch_frames(ops: &[WriteOp]) -> Result<Vec<(Vec<u8>, usize)>, serde_json::Error> {
    const OPEN: &[u8] = b"{\"WriteBatch\":[";
    const CLOSE: &[u8] = b"]}";
    let mut frames = Vec::new();
    let mut frame = OPEN.to_vec();
    let mut count = 0;
    for op in ops {
        let encoded = serde_json::to_vec(op)?;
        if count > 0 && frame.len() + 1 + encoded.len() + CLOSE.len() > FRAME_BUDGET {
            frame.extend_from_slice(CLOSE);
            frames.push((std::mem::replace(&mut frame, OPEN.to_vec()), count));
            count = 0;
        }
        if count > 0 {
            frame.push(b',');
        }
        frame.extend_from_slice(&encoded);
        count += 1;
    }
    if count > 0 {
        frame.extend_from_slice(CLOSE);
        frames.push((frame, count));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A decision whose event carries `metadata_bytes` of metadata.
    fn heavy(i: u64, metadata_bytes: usize) -> WriteOp {
        let mut d = sentinel_store::conformance::decision(&format!("t{i}"), "u", i, 0);
        let mut event = (*d.event).clone();
        let mut metadata = serde_json::Map::new();
        metadata.insert("note".into(), "x".repeat(metadata_bytes).into());
        event.metadata = Some(metadata);
        d.event = Arc::new(event);
        WriteOp::Decision(Arc::new(d))
    }

    #[test]
    fn a_large_batch_travels_in_frames_under_the_budget_and_decodes_whole() {
        // 4,096 decisions (the writer's largest batch) with 60 KiB of metadata each: 240 MiB.
        let ops: Vec<WriteOp> = (0..4_096).map(|i| heavy(i, 60 * 1024)).collect();
        let frames = write_batch_frames(&ops).unwrap();
        assert!(frames.len() > 50, "{} frames", frames.len());
        let mut decoded = 0;
        for (bytes, count) in &frames {
            assert!(bytes.len() <= FRAME_BUDGET, "{} bytes", bytes.len());
            match serde_json::from_slice::<StoreRequest>(bytes).unwrap() {
                StoreRequest::WriteBatch(ops) => {
                    assert_eq!(ops.len(), *count);
                    decoded += ops.len();
                }
                _ => panic!("not a write batch"),
            }
        }
        assert_eq!(decoded, ops.len());
        assert!(write_batch_frames(&[]).unwrap().is_empty());
    }

    #[test]
    fn pages_are_cut_by_size_and_always_move_on() {
        let items: Vec<String> = (0..10).map(|_| "y".repeat(1_000)).collect();
        let page = Page::cut(items.clone(), 3_500);
        assert_eq!((page.items.len(), page.more), (3, true));
        let page = Page::cut(items.clone(), 10);
        assert_eq!(
            (page.items.len(), page.more),
            (1, true),
            "one item at least"
        );
        let page = Page::cut(items, usize::MAX);
        assert_eq!((page.items.len(), page.more), (10, false));
    }

    #[test]
    fn bytes_travel_as_base64_and_large_records_by_parts() {
        let json = serde_json::to_string(&Bytes(vec![0, 255, 7])).unwrap();
        assert_eq!(json, "\"AP8H\"");
        let back: Bytes = serde_json::from_str(&json).unwrap();
        assert_eq!(back.0, [0, 255, 7]);
        assert!(matches!(RecordValue::of(None), RecordValue::Absent));
        assert!(matches!(
            RecordValue::of(Some(vec![0; INLINE_RECORD + 1])),
            RecordValue::TooLarge(n) if n == INLINE_RECORD as u64 + 1
        ));
    }
}
