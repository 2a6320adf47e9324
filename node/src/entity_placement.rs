//! Entities placed across the cluster: each card, device, IP and merchant key is owned by one
//! member, chosen by rendezvous hashing of the key over the members of the process group
//! [`ENTITIES_GROUP`], so users decided on different nodes count each other.
//!
//! Every node runs an [`EntityOwner`] actor named `sentinel.entities.<node>` in that group; it
//! answers "record and count" for the keys this node owns from its local entity shards. A
//! user actor's sightings go, grouped by owner, to the owners in parallel: local keys without
//! serialization, remote ones as one cluster message each with a JSON payload. An owner that
//! does not answer within [`ENTITY_TIMEOUT`] leaves its keys unknown (the rule does not fire;
//! `sentinel_entity_lookup_failures_total` counts it) instead of holding the decision.

use futures::future::{join_all, BoxFuture};
use ractor::{pg, Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use sentinel_actors::metrics::ENTITY_OWNERS;
use sentinel_actors::{Entities, EntityRoute, ENTITY_TIMEOUT};
use sentinel_engine::{LookupMode, OtherUsers, Sighting};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The process group of every node's [`EntityOwner`].
pub const ENTITIES_GROUP: &str = "sentinel.entities";

/// How often the owner gauge is refreshed.
const GAUGE_EVERY: Duration = Duration::from_secs(1);

/// Messages of the entity owner (serializable: they cross nodes).
#[derive(RactorClusterMessage)]
pub enum EntityOwnerMessage {
    /// Record the JSON-encoded `Vec<Sighting>` on this node's shards and reply with the JSON
    /// `Vec<Option<OtherUsers>>` answering each in order.
    #[rpc]
    RecordAndCount(Vec<u8>, RpcReplyPort<Vec<u8>>),
    /// Like `RecordAndCount`, recording nothing (batch screening).
    #[rpc]
    Count(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// Answers for the entities this node owns.
pub struct EntityOwner;

impl Actor for EntityOwner {
    type Msg = EntityOwnerMessage;
    type State = Entities;
    type Arguments = Entities;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        entities: Entities,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(entities)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: EntityOwnerMessage,
        entities: &mut Entities,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EntityOwnerMessage::RecordAndCount(payload, reply) => {
                answer(entities, payload, LookupMode::Record, reply);
            }
            EntityOwnerMessage::Count(payload, reply) => {
                answer(entities, payload, LookupMode::Peek, reply);
            }
        }
        Ok(())
    }
}

/// Answers a member's sightings from this node's shards, recording them when `mode` says so.
fn answer(entities: &Entities, payload: Vec<u8>, mode: LookupMode, reply: RpcReplyPort<Vec<u8>>) {
    // A malformed payload is answered with "unknown" for nothing: an empty list.
    let sightings: Vec<Sighting> = serde_json::from_slice(&payload).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "unreadable entity sightings from a member");
        Vec::new()
    });
    // Answered off the actor's queue, so one slow shard does not hold other keys.
    let entities = entities.clone();
    tokio::spawn(async move {
        let answer = entities.record_locally(sightings, mode).await;
        if let Ok(bytes) = serde_json::to_vec(&answer) {
            let _ = reply.send(bytes);
        }
    });
}

/// Places entities on the members of [`ENTITIES_GROUP`].
struct ClusterRoute {
    local: Entities,
}

/// The member name of an owner actor: its name without the group prefix.
fn member_name(cell: &ActorCell) -> Option<String> {
    cell.get_name()?
        .strip_prefix(&format!("{ENTITIES_GROUP}."))
        .map(str::to_owned)
}

impl EntityRoute for ClusterRoute {
    fn record_and_count(
        &self,
        sightings: Vec<Sighting>,
        mode: LookupMode,
    ) -> BoxFuture<'static, Vec<Option<OtherUsers>>> {
        let members: BTreeMap<String, ActorCell> = pg::get_members(&ENTITIES_GROUP.to_owned())
            .into_iter()
            .filter_map(|cell| Some((member_name(&cell)?, cell)))
            .collect();
        let mut by_owner: BTreeMap<&str, Vec<(usize, Sighting)>> = BTreeMap::new();
        for (i, s) in sightings.iter().enumerate() {
            if let Some(owner) = s.key.owner(members.keys().map(String::as_str)) {
                by_owner.entry(owner).or_default().push((i, *s));
            }
        }
        let calls: Vec<_> = by_owner
            .into_iter()
            .map(|(owner, part)| {
                let cell = members[owner].clone();
                let local = self.local.clone();
                async move {
                    let (slots, batch): (Vec<usize>, Vec<Sighting>) = part.into_iter().unzip();
                    let answers = if cell.get_id().is_local() {
                        local.record_locally(batch, mode).await
                    } else {
                        ask(cell, &batch, mode).await
                    };
                    slots.into_iter().zip(answers).collect::<Vec<_>>()
                }
            })
            .collect();
        let n = sightings.len();
        Box::pin(async move {
            let mut answers = vec![None; n];
            for (slot, others) in join_all(calls).await.into_iter().flatten() {
                answers[slot] = others;
            }
            answers
        })
    }
}

/// One remote owner's answers for `batch`, every one `None` when it does not answer in time.
async fn ask(cell: ActorCell, batch: &[Sighting], mode: LookupMode) -> Vec<Option<OtherUsers>> {
    let unknown = || vec![None; batch.len()];
    let Ok(payload) = serde_json::to_vec(batch) else {
        return unknown();
    };
    let owner: ActorRef<EntityOwnerMessage> = cell.into();
    let answer = owner
        .call(
            |reply| match mode {
                LookupMode::Record => EntityOwnerMessage::RecordAndCount(payload, reply),
                LookupMode::Peek => EntityOwnerMessage::Count(payload, reply),
            },
            Some(ENTITY_TIMEOUT),
        )
        .await;
    match answer {
        Ok(ractor::rpc::CallResult::Success(bytes)) => {
            match serde_json::from_slice::<Vec<Option<OtherUsers>>>(&bytes) {
                Ok(answers) if answers.len() == batch.len() => answers,
                _ => unknown(),
            }
        }
        _ => unknown(),
    }
}

/// Starts this node's entity owner, joins it to [`ENTITIES_GROUP`] and routes the user actors'
/// entity lookups over the cluster from now on.
pub async fn start(
    node_name: &str,
    entities: Entities,
) -> anyhow::Result<ActorRef<EntityOwnerMessage>> {
    let name = format!("{ENTITIES_GROUP}.{node_name}");
    let (actor, _) = Actor::spawn(Some(name), EntityOwner, entities.clone())
        .await
        .map_err(|e| anyhow::anyhow!("starting the entity owner: {e}"))?;
    pg::join(ENTITIES_GROUP.to_owned(), vec![actor.get_cell()]);
    entities.route_with(Arc::new(ClusterRoute {
        local: entities.clone(),
    }));
    tokio::spawn(async {
        let mut tick = tokio::time::interval(GAUGE_EVERY);
        loop {
            tick.tick().await;
            let owners = pg::get_members(&ENTITIES_GROUP.to_owned()).len();
            metrics::gauge!(ENTITY_OWNERS).set(owners as f64);
        }
    });
    Ok(actor)
}
