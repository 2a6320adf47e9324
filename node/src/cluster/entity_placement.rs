//! Entities placed across the cluster: each card, device, IP and merchant key is owned by one
//! member, chosen by rendezvous hashing of the key over the members of the process group
//! [`ENTITIES_GROUP`], so users decided on different nodes count each other.
//!
//! Every node runs an [`EntityOwner`] actor named `sentinel.entities.<node>` in that group; it
//! answers "record and count" for the keys this node owns from its local entity tables. A
//! user actor's sightings go, grouped by owner, to the owners in parallel: local keys without
//! serialization, remote ones as one cluster message each with a JSON payload. An owner that
//! does not answer within [`ENTITY_TIMEOUT`] leaves its keys unknown (the rule does not fire;
//! `sentinel_entity_lookup_failures_total` counts it) instead of holding the decision.
//!
//! The members are read from the group when it changes (the owner monitors it), not per
//! event; while this node is the only member, sightings go straight to the local shards.

use futures::future::{join_all, BoxFuture};
use ractor::{pg, Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::RactorClusterMessage;
use sentinel_actors::metrics::ENTITY_OWNERS;
use sentinel_actors::{Entities, EntityRoute, ENTITY_TIMEOUT};
use sentinel_engine::{LookupMode, OtherUsers, Sighting};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The process group of every node's [`EntityOwner`].
pub const ENTITIES_GROUP: &str = "sentinel.entities";

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

/// Answers for the entities this node owns, and keeps this node's view of the members
/// current: it monitors [`ENTITIES_GROUP`] and re-reads it on every change.
pub struct EntityOwner;

/// The owner's state: the local shards it answers from, and the members view it refreshes.
pub struct EntityOwnerState {
    entities: Entities,
    placement: Arc<Placement>,
}

impl Actor for EntityOwner {
    type Msg = EntityOwnerMessage;
    type State = EntityOwnerState;
    type Arguments = (Entities, Arc<Placement>);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (entities, placement): (Entities, Arc<Placement>),
    ) -> Result<Self::State, ActorProcessingErr> {
        pg::monitor(ENTITIES_GROUP.to_owned(), myself.get_cell());
        Ok(EntityOwnerState {
            entities,
            placement,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: EntityOwnerMessage,
        state: &mut EntityOwnerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EntityOwnerMessage::RecordAndCount(payload, reply) => {
                answer(&state.entities, payload, LookupMode::Record, reply);
            }
            EntityOwnerMessage::Count(payload, reply) => {
                answer(&state.entities, payload, LookupMode::Peek, reply);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut EntityOwnerState,
    ) -> Result<(), ActorProcessingErr> {
        // The owner supervises nothing: the only events it gets are the group's changes.
        if let SupervisionEvent::ProcessGroupChanged(change) = event {
            if change.get_group() == ENTITIES_GROUP {
                state.placement.refresh();
            }
        }
        Ok(())
    }
}

/// Answers a member's sightings from this node's tables, recording them when `mode` says so.
fn answer(entities: &Entities, payload: Vec<u8>, mode: LookupMode, reply: RpcReplyPort<Vec<u8>>) {
    // A malformed payload is answered with "unknown" for nothing: an empty list.
    let sightings: Vec<Sighting> = serde_json::from_slice(&payload).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "unreadable entity sightings from a member");
        Vec::new()
    });
    let answer = entities.record_locally(&sightings, mode);
    if let Ok(bytes) = serde_json::to_vec(&answer) {
        let _ = reply.send(bytes);
    }
}

/// The members of [`ENTITIES_GROUP`] as last read, shared by the owner (which refreshes it)
/// and the route (which reads it per event).
pub struct Placement {
    members: RwLock<Arc<Members>>,
}

/// The owner actors by member name, sorted by name (one per name).
type Members = Vec<(String, ActorCell)>;

impl Placement {
    /// A view read from the group now.
    fn read() -> Placement {
        Placement {
            members: RwLock::new(Arc::new(Self::members())),
        }
    }

    fn members() -> Members {
        let members: BTreeMap<String, ActorCell> = pg::get_members(&ENTITIES_GROUP.to_owned())
            .into_iter()
            .filter_map(|cell| Some((member_name(&cell)?, cell)))
            .collect();
        members.into_iter().collect()
    }

    /// Re-reads the group (after a change) and updates the owner gauge.
    fn refresh(&self) {
        let members = Arc::new(Self::members());
        metrics::gauge!(ENTITY_OWNERS).set(members.len() as f64);
        *self.members.write().unwrap_or_else(PoisonError::into_inner) = members;
    }

    /// The members now (one reference count, no copy).
    fn current(&self) -> Arc<Members> {
        Arc::clone(&self.members.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Places entities on the members of [`ENTITIES_GROUP`].
struct ClusterRoute {
    local: Entities,
    placement: Arc<Placement>,
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
        let members = self.placement.current();
        let local = self.local.clone();
        // This node owns every entity: no placement, straight to the local shards.
        if let [(_, only)] = members.as_slice() {
            if only.get_id().is_local() {
                let answers = local.record_locally(&sightings, mode);
                return Box::pin(async move { answers });
            }
        }
        let names = || members.iter().map(|(name, _)| name.as_str());
        let mut by_owner: Vec<Vec<(usize, Sighting)>> = vec![Vec::new(); members.len()];
        for (i, s) in sightings.iter().enumerate() {
            // `owner` answers one of `names`, so the position is always found.
            if let Some(at) = s
                .key
                .owner(names())
                .and_then(|owner| names().position(|name| name == owner))
            {
                by_owner[at].push((i, *s));
            }
        }
        let calls: Vec<_> = by_owner
            .into_iter()
            .zip(members.iter())
            .filter(|(part, _)| !part.is_empty())
            .map(|(part, (_, cell))| {
                let cell = cell.clone();
                let local = local.clone();
                async move {
                    let (slots, batch): (Vec<usize>, Vec<Sighting>) = part.into_iter().unzip();
                    let answers = if cell.get_id().is_local() {
                        local.record_locally(&batch, mode)
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
    let placement = Arc::new(Placement::read());
    let (actor, _) = Actor::spawn(
        Some(name),
        EntityOwner,
        (entities.clone(), Arc::clone(&placement)),
    )
    .await
    .map_err(|e| anyhow::anyhow!("starting the entity owner: {e}"))?;
    pg::join(ENTITIES_GROUP.to_owned(), vec![actor.get_cell()]);
    // The owner refreshes on the join too; reading here makes the route right from the start.
    placement.refresh();
    entities.route_with(Arc::new(ClusterRoute {
        local: entities.clone(),
        placement,
    }));
    Ok(actor)
}
