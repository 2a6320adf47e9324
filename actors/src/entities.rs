//! The actors that hold the entity tables ([`EntityShard`]) and this node's handle on them
//! ([`Entities`]): before deciding an event the user actor asks them, in one "record and
//! count" request, what the other users of the event's entities did (see
//! `sentinel_engine::EntityTable` for the counting itself).
//!
//! On one node, [`Entities::start`] spawns a few [`EntityShard`] actors, each owning the
//! entities whose key hashes to it. In a cluster the node installs an [`EntityRoute`] that
//! places each entity on a member (see the node crate).

use crate::metrics as m;
use futures::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use sentinel_engine::metrics::ENTITIES_EVICTED;
use sentinel_engine::{
    id_hash, EntityCounts, EntityKey, EntityKind, EntityTable, KindSet, LookupMode, OtherUsers,
    Sighting,
};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a decision waits for its entities' answer before treating the counts as unknown.
pub const ENTITY_TIMEOUT: Duration = Duration::from_secs(1);

/// Messages of an [`EntityShard`].
pub enum EntityShardMessage {
    /// Answer these sightings, for each in order, with the other users' latest times,
    /// recording them when the mode says so.
    RecordAndCount(Vec<Sighting>, LookupMode, RpcReplyPort<Vec<OtherUsers>>),
    /// Reply with the number of entities remembered.
    Len(RpcReplyPort<usize>),
}

impl ractor::Message for EntityShardMessage {}

/// The actor owning one [`EntityTable`]: it serialises the sightings of its entities.
pub struct EntityShard;

impl Actor for EntityShard {
    type Msg = EntityShardMessage;
    type State = EntityTable;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(EntityTable::default())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: EntityShardMessage,
        table: &mut EntityTable,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EntityShardMessage::RecordAndCount(sightings, mode, reply) => {
                let answer = sightings.iter().map(|s| table.answer(s, mode)).collect();
                let _ = reply.send(answer);
            }
            EntityShardMessage::Len(reply) => {
                let _ = reply.send(table.len());
            }
        }
        Ok(())
    }
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
    local: Arc<[ActorRef<EntityShardMessage>]>,
    route: Arc<OnceLock<Arc<dyn EntityRoute>>>,
}

impl Entities {
    /// Starts `shards` local entity shards.
    pub async fn start(shards: usize) -> Result<Entities, SpawnErr> {
        // Registered at zero, so dashboards and alerts have the series before the first one.
        metrics::counter!(m::ENTITY_LOOKUP_FAILURES).increment(0);
        metrics::counter!(ENTITIES_EVICTED).increment(0);
        let mut local = Vec::with_capacity(shards.max(1));
        for _ in 0..shards.max(1) {
            local.push(Actor::spawn(None, EntityShard, ()).await?.0);
        }
        Ok(Entities {
            local: local.into(),
            route: Arc::new(OnceLock::new()),
        })
    }

    /// From now on, place entities with `route` (the cluster) instead of the local shards.
    /// Only the first call takes effect.
    pub fn route_with(&self, route: Arc<dyn EntityRoute>) {
        let _ = self.route.set(route);
    }

    /// Answers the sightings from this node's own shards (the cluster's owner side), each in
    /// order, recording them when `mode` says so; `None` where a shard did not answer in time.
    pub async fn record_locally(
        &self,
        sightings: Vec<Sighting>,
        mode: LookupMode,
    ) -> Vec<Option<OtherUsers>> {
        let n = self.local.len() as u64;
        let mut by_shard: Vec<Vec<(usize, Sighting)>> = vec![Vec::new(); self.local.len()];
        for (i, s) in sightings.iter().enumerate() {
            by_shard[(s.key.placement_hash() % n) as usize].push((i, *s));
        }
        let mut answers = vec![None; sightings.len()];
        let calls = by_shard
            .into_iter()
            .enumerate()
            .filter(|(_, part)| !part.is_empty())
            .map(|(shard, part)| {
                let actor = self.local[shard].clone();
                async move {
                    let (slots, batch): (Vec<usize>, Vec<Sighting>) = part.into_iter().unzip();
                    let answer = actor
                        .call(
                            |reply| EntityShardMessage::RecordAndCount(batch, mode, reply),
                            Some(ENTITY_TIMEOUT),
                        )
                        .await;
                    match answer {
                        Ok(ractor::rpc::CallResult::Success(others)) => slots
                            .into_iter()
                            .zip(others.into_iter().map(Some))
                            .collect(),
                        _ => slots.into_iter().map(|i| (i, None)).collect::<Vec<_>>(),
                    }
                }
            });
        for (slot, others) in futures::future::join_all(calls).await.into_iter().flatten() {
            answers[slot] = others;
        }
        answers
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
        let call = async {
            match self.route.get() {
                Some(route) => route.record_and_count(sightings.clone(), mode).await,
                None => self.record_locally(sightings.clone(), mode).await,
            }
        };
        let answers = tokio::time::timeout(ENTITY_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| vec![None; sightings.len()]);
        metrics::histogram!(m::ENTITY_LOOKUP_SECONDS).record(started.elapsed().as_secs_f64());
        for (sighting, others) in sightings.iter().zip(answers) {
            match others {
                Some(others) => counts.set(sighting.key.kind, others),
                None => metrics::counter!(m::ENTITY_LOOKUP_FAILURES).increment(1),
            }
        }
        counts
    }

    /// Entities remembered by this node's shards.
    pub async fn local_len(&self) -> usize {
        let mut total = 0;
        for shard in self.local.iter() {
            if let Ok(ractor::rpc::CallResult::Success(n)) =
                shard.call(EntityShardMessage::Len, None).await
            {
                total += n;
            }
        }
        total
    }

    /// Stops the local shards.
    pub fn stop(&self) {
        for shard in self.local.iter() {
            shard.stop(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[tokio::test]
    async fn local_shards_answer_and_skip_events_without_entities() {
        let entities = Entities::start(2).await.unwrap();
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
        assert_eq!(entities.local_len().await, 1);
        let third = entities
            .lookup("carol", ids(42), 120_000, all, LookupMode::Record)
            .await;
        assert_eq!(
            third.distinct_users(EntityKind::Device, 120_000, H),
            Some(3)
        );
        entities.stop();
    }
}
