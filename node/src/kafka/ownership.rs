//! Which partitions of the input topic this node owns, as the consumer group assigned them.
//!
//! Ownership is Kafka's: the consumer group rebalances partitions over the live nodes. On
//! every revoke or assignment the consumer finishes its in-flight events; once the new
//! assignment is known it passivates the user actors of every partition it did not keep, so
//! that a partition coming back later restores from the shared store instead of resuming a
//! stale in-memory actor. Users of kept partitions stay warm.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// This node's partition assignment and a counter of ownership changes. Cheap to clone.
#[derive(Clone)]
pub struct PartitionOwnership {
    owned: Arc<Mutex<Vec<i32>>>,
    revokes: Arc<watch::Sender<u64>>,
    /// Partitions of the input topic; 0 until the consumer has read the topic's metadata.
    partition_count: Arc<AtomicI32>,
    /// A revoke happened and its rebalance has not assigned partitions yet.
    awaiting_assignment: Arc<AtomicBool>,
    /// Partitions revoked whose hand-over waits for the consumer to drain them.
    pending_revoke: Arc<Mutex<Option<Vec<i32>>>>,
    /// The consume loop has ended: a revoke is handed over at once (closing the consumer).
    closed: Arc<AtomicBool>,
}

impl Default for PartitionOwnership {
    fn default() -> Self {
        PartitionOwnership {
            owned: Arc::default(),
            revokes: Arc::new(watch::channel(0).0),
            partition_count: Arc::default(),
            awaiting_assignment: Arc::default(),
            pending_revoke: Arc::default(),
            closed: Arc::default(),
        }
    }
}

impl PartitionOwnership {
    /// The partitions this node owns now, ascending.
    pub fn owned(&self) -> Vec<i32> {
        self.owned.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Whether this node owns the partition of `key` (false while the partition count is
    /// unknown).
    pub fn owns(&self, key: &str) -> bool {
        // `owned` is kept sorted.
        self.partition_of(key).is_some_and(|p| {
            self.owned
                .lock()
                .is_ok_and(|owned| owned.binary_search(&p).is_ok())
        })
    }

    /// The input partition of `key` under Kafka's default partitioner, once the size is known.
    pub fn partition_of(&self, key: &str) -> Option<i32> {
        let count = self.partition_count.load(Ordering::Relaxed);
        (count > 0).then(|| super::partition_of(key.as_bytes(), count))
    }

    /// Records how many partitions the input topic has.
    pub(crate) fn set_partition_count(&self, count: i32) {
        self.partition_count.store(count, Ordering::Relaxed);
    }

    /// Records a new assignment. It counts as a change too: an incremental (cooperative)
    /// assignment arrives without a revoke, and an actor started here for an API lookup
    /// before the partition was ours must not be resumed.
    pub(crate) fn assigned(&self, mut partitions: Vec<i32>) {
        partitions.sort_unstable();
        if let Ok(mut owned) = self.owned.lock() {
            *owned = partitions;
        }
        self.awaiting_assignment.store(false, Ordering::SeqCst);
        self.revokes.send_modify(|n| *n += 1);
    }

    /// Records that partitions were taken away; the consumer reacts through [`Self::revokes`].
    pub(crate) fn revoked(&self, partitions: &[i32]) {
        if let Ok(mut owned) = self.owned.lock() {
            owned.retain(|p| !partitions.contains(p));
        }
        self.awaiting_assignment.store(true, Ordering::SeqCst);
        self.revokes.send_modify(|n| *n += 1);
    }

    /// True between a revoke and the assignment that ends its rebalance: an eager rebalance
    /// revokes every partition, then assigns most of them back.
    pub(crate) fn awaiting_assignment(&self) -> bool {
        self.awaiting_assignment.load(Ordering::SeqCst)
    }

    /// Holds a revoke until the consumer has drained its partitions (see
    /// [`Self::take_pending_revoke`]); false once the consume loop has ended.
    pub(crate) fn defer_revoke(&self, partitions: Vec<i32>) -> bool {
        if self.closed.load(Ordering::SeqCst) {
            return false;
        }
        if let Ok(mut pending) = self.pending_revoke.lock() {
            pending.get_or_insert_with(Vec::new).extend(partitions);
        }
        true
    }

    /// The revoked partitions still to be handed over, if any.
    pub(crate) fn take_pending_revoke(&self) -> Option<Vec<i32>> {
        self.pending_revoke.lock().ok().and_then(|mut p| p.take())
    }

    /// The consume loop has ended: later revokes are handed over at once.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Fires after every revoke and assignment.
    pub(crate) fn revokes(&self) -> watch::Receiver<u64> {
        self.revokes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_owned_only_once_its_partition_is_known_and_assigned_here() {
        let ownership = PartitionOwnership::default();
        assert!(!ownership.owns("u"), "the partition count is unknown");
        ownership.set_partition_count(8);
        let p = ownership.partition_of("u").unwrap();
        ownership.assigned(vec![(p + 1) % 8, (p + 3) % 8]);
        assert!(!ownership.owns("u"));
        ownership.assigned(vec![(p + 1) % 8, p]);
        assert!(ownership.owns("u"));
        ownership.revoked(&[p]);
        assert!(!ownership.owns("u"));
    }
}
