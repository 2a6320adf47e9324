//! Which offsets may be committed: decisions finish out of order (users are independent), but
//! a partition's offset may only advance past events that are all stored and published.

use std::collections::{BTreeSet, HashMap};

#[derive(Default)]
struct Partition {
    pending: BTreeSet<i64>,
    highest_started: i64,
    committed: Option<i64>,
}

/// Per-partition offsets of events started and finished.
#[derive(Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, Partition>,
}

impl OffsetTracker {
    /// An event at `offset` of `partition` is being decided.
    pub fn start(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_default();
        // Nothing before the first offset this consumer saw is ours to commit.
        p.committed.get_or_insert(offset - 1);
        p.pending.insert(offset);
        p.highest_started = p.highest_started.max(offset);
    }

    /// The event is stored and published. Returns the last offset of the partition below which
    /// everything is done, when that moved forward: the offset to store for commit.
    pub fn finish(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&partition)?;
        p.pending.remove(&offset);
        let done_through = match p.pending.first() {
            Some(first) => first - 1,
            None => p.highest_started,
        };
        if p.committed.is_none_or(|c| done_through > c) {
            p.committed = Some(done_through);
            Some(done_through)
        } else {
            None
        }
    }

    /// Events being decided.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_contiguous_prefixes() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.start(0, o);
        }
        t.start(1, 3);
        assert_eq!(t.finish(0, 12), None, "10 and 11 are still pending");
        assert_eq!(t.finish(0, 10), Some(10));
        assert_eq!(t.finish(1, 3), Some(3), "partitions are independent");
        assert_eq!(
            t.finish(0, 11),
            Some(12),
            "11 closes the gap up to the finished 12"
        );
        assert_eq!(t.finish(0, 14), None);
        assert_eq!(t.finish(0, 13), Some(14));
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.finish(7, 1), None, "unknown partition");
    }
}
