//! This node's entity tables and its handle on them ([`Entities`]): before deciding an event
//! the user actor asks, in one "record and count" call, what the other users of the event's
//! entities did (see `sentinel_engine::EntityTable` for the counting itself).
//!
//! On one node, [`Entities::start`] makes a few tables, each owning the entities whose key
//! hashes to it and each behind its own lock: a lookup locks the tables of its entities for
//! the microsecond of the count, on the caller's thread. (They were actors; a message round
//! trip per table cost the user actor more than the counting, see BENCHMARKS.md, "Entity
//! tables without a message hop".) In a cluster the node installs an [`EntityRoute`] that
//! places each entity on a member (see the node crate), whose owner side answers from these
//! tables.

use crate::metrics as m;
use futures::future::BoxFuture;
use sentinel_engine::metrics::ENTITIES_EVICTED;
use sentinel_engine::{
    id_hash, EntityCounts, EntityKey, EntityKind, EntityTable, KindSet, LookupMode, OtherUsers,
    Sighting,
};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long a decision waits for its entities' answer before treating the counts as unknown.
pub const ENTITY_TIMEOUT: Duration = Duration::from_secs(1);

/// One table's lock. A panic while counting leaves the table as the panic found it, which is
/// still a table of sightings: go on with it rather than refuse every later lookup.
fn lock(table: &Mutex<EntityTable>) -> MutexGuard<'_, EntityTable> {
    table
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where entities live when they do not live on this node alone: the cluster installs one
/// (see [`Entities::route_with`]). `None` in the answer means "unknown" (owner unreachable).
pub trait EntityRoute: Send + Sync {
    /// Answers the sightings from their owners, each in order, recording them there when
    /// `mode` says so.
    fn record_and_count(
        &self,
        sightings: Vec<Sighting>,
        mode: LookupMode,
    ) -> BoxFuture<'static, Vec<Option<OtherUsers>>>;
}

/// This node's handle on the entities. Cheap to clone.
#[derive(Clone)]
pub struct Entities {
    local: Arc<[Mutex<EntityTable>]>,
    route: Arc<OnceLock<Arc<dyn EntityRoute>>>,
}

impl Entities {
    /// Makes `shards` local entity tables (at least one).
    pub fn start(shards: usize) -> Entities {
        // Registered at zero, so dashboards and alerts have the series before the first one.
        metrics::counter!(m::ENTITY_LOOKUP_FAILURES).increment(0);
        metrics::counter!(ENTITIES_EVICTED).increment(0);
        let local = (0..shards.max(1))
            .map(|_| Mutex::new(EntityTable::default()))
            .collect();
        Entities {
            local,
            route: Arc::new(OnceLock::new()),
        }
    }

    /// From now on, place entities with `route` (the cluster) instead of the local shards.
    /// Only the first call takes effect.
    pub fn route_with(&self, route: Arc<dyn EntityRoute>) {
        let _ = self.route.set(route);
    }

    /// Answers the sightings from this node's own tables (the cluster's owner side), each in
    /// order, recording them when `mode` says so. Every answer is known (`Some`): the `Option`
    /// is the route's, where an owner may not answer.
    pub fn record_locally(
        &self,
        sightings: &[Sighting],
        mode: LookupMode,
    ) -> Vec<Option<OtherUsers>> {
        let n = self.local.len() as u64;
        sightings
            .iter()
            .map(|s| {
                let table = &self.local[(s.key.placement_hash() % n) as usize];
                Some(lock(table).answer(s, mode))
            })
            .collect()
    }

    /// The counts for one event: records its card, device, merchant and IP among `kinds`
    /// (those the policy asks about) and returns what the other users did. Events with none
    /// of them skip the hop. Never waits longer than [`ENTITY_TIMEOUT`]: an entity whose owner
    /// does not answer is unknown, and rules comparing its count do not fire.
    pub async fn lookup(
        &self,
        user: &str,
        entities: [(EntityKind, u64); 4],
        time_ms: i64,
        kinds: KindSet,
        mode: LookupMode,
    ) -> EntityCounts {
        let user = id_hash(user);
        let sightings: Vec<Sighting> = entities
            .iter()
            .filter(|(kind, id)| *id != 0 && kinds.contains(*kind))
            .map(|&(kind, id)| Sighting {
                key: EntityKey { kind, id },
                user,
                time_ms,
            })
            .collect();
        let mut counts = EntityCounts::default();
        if sightings.is_empty() {
            return counts;
        }
        let started = Instant::now();
        let answers = match self.route.get() {
            Some(route) => {
                let call = route.record_and_count(sightings.clone(), mode);
                tokio::time::timeout(ENTITY_TIMEOUT, call)
                    .await
                    .unwrap_or_else(|_| vec![None; sightings.len()])
            }
            None => self.record_locally(&sightings, mode),
        };
        m::ACTOR
            .entity_lookup
            .record(started.elapsed().as_secs_f64());
        for (sighting, others) in sightings.iter().zip(answers) {
            match others {
                Some(others) => counts.set(sighting.key.kind, others),
                None => m::ACTOR.entity_lookup_failures.increment(1),
            }
        }
        counts
    }

    /// Entities remembered by this node's tables.
    pub fn local_len(&self) -> usize {
        self.local.iter().map(|table| lock(table).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[tokio::test]
    async fn local_shards_answer_and_skip_events_without_entities() {
        let entities = Entities::start(2);
        let all = EntityKind::ALL
            .iter()
            .fold(KindSet::default(), |s, k| s.with(*k));
        let ids = |device| {
            [
                (EntityKind::Card, 0),
                (EntityKind::Device, device),
                (EntityKind::Merchant, 0),
                (EntityKind::Ip, 0),
            ]
        };
        let first = entities
            .lookup("alice", ids(42), 0, all, LookupMode::Record)
            .await;
        assert_eq!(first.distinct_users(EntityKind::Device, 0, H), Some(1));
        assert_eq!(first.distinct_users(EntityKind::Card, 0, H), None);
        let second = entities
            .lookup("bob", ids(42), 60_000, all, LookupMode::Record)
            .await;
        assert_eq!(
            second.distinct_users(EntityKind::Device, 60_000, H),
            Some(2)
        );
        // Not asked about devices: nothing recorded, nothing known.
        let skipped = entities
            .lookup(
                "carol",
                ids(42),
                60_000,
                KindSet::default(),
                LookupMode::Record,
            )
            .await;
        assert_eq!(skipped, EntityCounts::default());
        assert_eq!(entities.local_len(), 1);
        let third = entities
            .lookup("carol", ids(42), 120_000, all, LookupMode::Record)
            .await;
        assert_eq!(
            third.distinct_users(EntityKind::Device, 120_000, H),
            Some(3)
        );
    }
}
