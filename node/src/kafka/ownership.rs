//! Which partitions of the input topic this node owns, as the consumer group assigned them.
//!
//! Ownership is Kafka's: the consumer group rebalances partitions over the live nodes. On
//! every revoke the consumer finishes its in-flight events and passivates its user actors, so
//! that a partition coming back later restores from the shared store instead of resuming a
//! stale in-memory actor.

use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// This node's partition assignment and a revoke counter. Cheap to clone.
#[derive(Clone)]
pub struct PartitionOwnership {
    owned: Arc<Mutex<Vec<i32>>>,
    revokes: Arc<watch::Sender<u64>>,
}

impl Default for PartitionOwnership {
    fn default() -> Self {
        PartitionOwnership {
            owned: Arc::default(),
            revokes: Arc::new(watch::channel(0).0),
        }
    }
}

impl PartitionOwnership {
    /// The partitions this node owns now, ascending.
    pub fn owned(&self) -> Vec<i32> {
        self.owned.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Records a new assignment.
    pub(crate) fn assigned(&self, mut partitions: Vec<i32>) {
        partitions.sort_unstable();
        if let Ok(mut owned) = self.owned.lock() {
            *owned = partitions;
        }
    }

    /// Records that partitions were taken away; the consumer reacts through [`Self::revokes`].
    pub(crate) fn revoked(&self, partitions: &[i32]) {
        if let Ok(mut owned) = self.owned.lock() {
            owned.retain(|p| !partitions.contains(p));
        }
        self.revokes.send_modify(|n| *n += 1);
    }

    /// Fires after every revoke.
    pub(crate) fn revokes(&self) -> watch::Receiver<u64> {
        self.revokes.subscribe()
    }
}
