//! The node's handle on its user actors.

use crate::dispatch::Dispatch;
use crate::entities::Entities;
use crate::shard::{ShardArgs, ShardMessage, UserFilter, UserShard};
use crate::user_actor::{Deps, ScoreRequest};
use arc_swap::ArcSwap;
use ractor::{Actor, ActorRef, RpcReplyPort, SpawnErr};
use sentinel_engine::{id_hash, Policy};
use sentinel_event::{DecisionError, Transaction};
use sentinel_store::{Stored, Writer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How the user actors behave.
#[derive(Debug, Clone, Copy)]
pub struct ScorerConfig {
    /// Shard supervisors; each owns a share of the user keys. One per core is plenty.
    pub shards: usize,
    /// A user actor idle this long is passivated (stopped, with a snapshot if one is due).
    pub passivate_after: Duration,
    /// Live user actors the node may hold (0: no limit), shared evenly by the shards (each
    /// share rounded up, so up to `shards - 1` more in all); past it the least recently active
    /// are passivated early. Bounds the actors' memory (about 15–20 KiB each, BENCHMARKS.md)
    /// whatever the population.
    pub max_live_users: usize,
    /// How far behind a user's latest event time an event may arrive and still enter windows.
    pub lateness: Duration,
    /// Events between background snapshots of a user that stays busy (never idle long enough
    /// to be passivated): taken at its next event once its decisions are stored, so a user
    /// whose events come back to back may reach twice as many. Bounds what a crash makes a
    /// user's actor replay; each snapshot costs an encode and a store write, so keep it large.
    pub snapshot_every: u64,
    /// A passivated user's state is snapshotted only when at least this many of its decisions
    /// are not in its stored snapshot; fewer are replayed from the store when the user comes
    /// back. A card holder paying a few times a day is then snapshotted every few payments
    /// instead of at each (BENCHMARKS.md, "Passivation without a snapshot"). 1 snapshots
    /// every passivated state that moved.
    pub passivation_snapshot_after: u64,
    /// The memory passivated users' states kept in memory may hold, by estimate, shared
    /// evenly by the shards (0: none kept). A user whose state is parked starts its next
    /// actor without reading the store. Set it to 0 where another node or process may decide
    /// for the same users (README, "Passivation").
    pub parked_state_bytes: usize,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            shards: std::thread::available_parallelism().map_or(2, |n| n.get()),
            passivate_after: Duration::from_secs(60),
            max_live_users: DEFAULT_MAX_LIVE_USERS,
            lateness: Duration::from_secs(300),
            snapshot_every: 1_000,
            passivation_snapshot_after: DEFAULT_PASSIVATION_SNAPSHOT_AFTER,
            parked_state_bytes: DEFAULT_PARKED_STATE_BYTES,
        }
    }
}

/// The default of [`ScorerConfig::passivation_snapshot_after`].
pub const DEFAULT_PASSIVATION_SNAPSHOT_AFTER: u64 = 4;

/// The default of [`ScorerConfig::parked_state_bytes`]: 512 MiB, about 1.5 million card
/// holders with a few payments each.
pub const DEFAULT_PARKED_STATE_BYTES: usize = 512 << 20;

/// The default of [`ScorerConfig::max_live_users`]: about 1 GiB of user actors.
pub const DEFAULT_MAX_LIVE_USERS: usize = 50_000;

/// Sends events to their user's actor and waits for the stored decision. Cheap to clone.
#[derive(Clone)]
pub struct Scorer {
    shards: Arc<[ActorRef<ShardMessage>]>,
    entities: Entities,
    /// What every user actor shares, for screening outside them.
    deps: Arc<Deps>,
    /// The policy last broadcast, for screening.
    policy: Arc<ArcSwap<Policy>>,
}

/// How often an event is re-sent when its user actor died before answering (the event that
/// killed it is answered with [`DecisionError::Poisoned`] instead).
const MAX_ATTEMPTS: usize = 3;

impl Scorer {
    /// Starts the shard supervisors.
    pub async fn start(
        writer: Writer,
        policy: Arc<Policy>,
        config: ScorerConfig,
    ) -> Result<Scorer, SpawnErr> {
        let entities = Entities::start(config.shards);
        let deps = Arc::new(Deps {
            restorer: crate::restorer::Restorer::start(Arc::clone(writer.store())),
            entities: entities.clone(),
            writer,
            lateness_ms: i64::try_from(config.lateness.as_millis()).unwrap_or(i64::MAX),
            snapshot_every: config.snapshot_every.max(1),
            passivation_snapshot_after: config.passivation_snapshot_after.max(1),
            park_only: std::sync::OnceLock::new(),
        });
        let shard_count = config.shards.max(1);
        let max_live = match config.max_live_users {
            0 => usize::MAX,
            limit => limit.div_ceil(shard_count),
        };
        let mut shards = Vec::with_capacity(shard_count);
        for _ in 0..shard_count {
            let args = ShardArgs {
                deps: Arc::clone(&deps),
                policy: Arc::clone(&policy),
                passivate_after: config.passivate_after,
                max_live,
                parked_bytes: config.parked_state_bytes / shard_count,
            };
            let (shard, _) = Actor::spawn(None, UserShard, args).await?;
            shards.push(shard);
        }
        Ok(Scorer {
            shards: shards.into(),
            entities,
            deps,
            policy: Arc::new(ArcSwap::new(policy)),
        })
    }

    /// The shared entities (cards, devices, IPs, merchants) the user actors consult.
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    fn shard_of(&self, user_id: &str) -> &ActorRef<ShardMessage> {
        self.shard(self.shard_index(user_id))
    }

    /// The index of the shard that owns `user_id`.
    pub(crate) fn shard_index(&self, user_id: &str) -> usize {
        (id_hash(user_id) % self.shards.len() as u64) as usize
    }

    pub(crate) fn shard(&self, index: usize) -> &ActorRef<ShardMessage> {
        &self.shards[index]
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// A [`Dispatch`]: events sent to their users' actors one batch per shard.
    pub fn dispatch_batch(&self) -> Dispatch<'_> {
        Dispatch::new(self)
    }

    /// Decides one event; resolves once the decision is durably stored. A redelivered
    /// transaction id resolves to the decision stored the first time, marked `duplicate`.
    pub async fn score(
        &self,
        event: Arc<Transaction>,
        received: Instant,
    ) -> Result<Stored, DecisionError> {
        let shard = self.shard_of(&event.user_id);
        for _ in 0..MAX_ATTEMPTS {
            let (reply, answer) = oneshot::channel();
            let request = ScoreRequest {
                event: Arc::clone(&event),
                received,
                reply,
            };
            if shard.cast(ShardMessage::Route(request)).is_err() {
                return Err(DecisionError::Unavailable(
                    "the node is shutting down".into(),
                ));
            }
            match answer.await {
                Ok(result) => return result,
                // The user actor stopped with this event still queued; its supervisor has
                // restarted it, so send the event again.
                Err(_) => continue,
            }
        }
        Err(DecisionError::Unavailable(format!(
            "the actor of user {} failed {MAX_ATTEMPTS} times",
            event.user_id
        )))
    }

    /// Broadcasts a new policy to every user actor, live and future. Resolves when every
    /// shard has passed it on: any event scored after that is decided under the new policy.
    pub async fn set_policy(&self, policy: Arc<Policy>) {
        self.policy.store(Arc::clone(&policy));
        for shard in self.shards.iter() {
            let policy = Arc::clone(&policy);
            let _ = shard
                .call(|reply| ShardMessage::SetPolicy(policy, reply), None)
                .await;
        }
    }

    /// What live scoring would decide for each event now, storing nothing and changing no
    /// user's state or shared entity: each user's events are decided on a detached copy of its state rebuilt from the store. One answer per event,
    /// in order.
    pub async fn screen(
        &self,
        events: Vec<Arc<Transaction>>,
    ) -> Vec<Result<sentinel_engine::Screened, DecisionError>> {
        crate::screen::screen(&self.deps, self.policy.load_full(), events).await
    }

    /// A user's live state (the user's actor is started if needed, as for an event).
    pub async fn inspect(&self, user_id: &str) -> Option<sentinel_engine::UserView> {
        let shard = self.shard_of(user_id);
        let user = user_id.to_owned();
        match shard
            .call(
                |reply| ShardMessage::Inspect(user, reply),
                Some(Duration::from_secs(10)),
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(view)) => Some(view),
            _ => None,
        }
    }

    /// Number of live user actors on this node.
    pub async fn live_actors(&self) -> usize {
        self.sum_over_shards(ShardMessage::LiveActors).await
    }

    /// Parks only the states of the users `picks` picks, from now on (once per scorer; a
    /// second call changes nothing): with Kafka, those of the partitions this node owns. A
    /// state is checked when it would be parked and when a user's actor starts from it, so a
    /// user whose partition has left is never parked nor started from a parked state, even
    /// between the rebalance and [`Scorer::passivate_users`].
    pub fn park_only(&self, picks: UserFilter) {
        let _ = self.deps.park_only.set(picks);
    }

    /// Number of passivated users' states parked on this node ([`ScorerConfig::parked_state_bytes`]).
    pub async fn parked_states(&self) -> usize {
        self.sum_over_shards(ShardMessage::ParkedStates).await
    }

    /// The sum of every shard's answer to `ask` (a shard that does not answer counts 0).
    async fn sum_over_shards(&self, ask: fn(RpcReplyPort<usize>) -> ShardMessage) -> usize {
        let mut total = 0;
        for shard in self.shards.iter() {
            if let Ok(ractor::rpc::CallResult::Success(n)) = shard.call(ask, None).await {
                total += n;
            }
        }
        total
    }

    /// Passivates every live user actor (stopped once its state is stored: its decisions, and
    /// a snapshot if one is due), keeping the shards running, and forgets the parked states:
    /// the next event of a user restores it from the store. Returns how many were passivated.
    pub async fn passivate_all(&self) -> usize {
        self.passivate_users(Arc::new(|_| true)).await
    }

    /// Passivates the live user actors whose user id `picks` (a rebalance: those of
    /// partitions this node no longer owns, or did not own when they started). Returns how
    /// many were passivated.
    pub async fn passivate_users(&self, picks: UserFilter) -> usize {
        let mut passivated = 0;
        for shard in self.shards.iter() {
            let picks = Arc::clone(&picks);
            if let Ok(ractor::rpc::CallResult::Success(n)) = shard
                .call(|port| ShardMessage::Passivate(picks, port), None)
                .await
            {
                passivated += n;
            }
        }
        passivated
    }

    /// Passivates every live user and stops the shards. Call after the sources have drained.
    pub async fn shutdown(&self) -> usize {
        let passivated = self.passivate_all().await;
        for shard in self.shards.iter() {
            shard.stop(None);
        }
        passivated
    }
}
