//! Supervisor of one share of the user key space.
//!
//! The shard routes each event to its user's actor, spawning it on first use; passivates
//! actors idle for longer than the configured time (they snapshot and stop; events arriving
//! meanwhile wait in the shard, so a user never has two actors); passivates the least recently
//! active ones early when it holds more live actors than its limit, so memory is bounded by the
//! limit whatever the population (Akka's sharding calls this an active entity limit); and
//! restarts a failed actor at once, from its last snapshot plus the decisions stored after it.

use crate::metrics as m;
use crate::user_actor::{Deps, ScoreRequest, UserActor, UserArgs, UserMessage};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use sentinel_engine::Policy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Picks users by id (see [`ShardMessage::Passivate`]).
pub type UserFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Messages a shard understands.
pub enum ShardMessage {
    /// Deliver an event to its user's actor.
    Route(ScoreRequest),
    /// Use this policy for every live and future user actor of the shard. The reply comes
    /// once every live actor has the policy queued ahead of any later event.
    SetPolicy(Arc<Policy>, RpcReplyPort<()>),
    /// Timer tick: passivate actors idle for too long.
    PassivateIdle,
    /// Passivate every live actor whose user the filter picks (all at shutdown, those of
    /// partitions lost on a rebalance); replies with how many were passivated.
    Passivate(UserFilter, RpcReplyPort<usize>),
    /// Reply with a user's live state, starting the user's actor if it is not live (after a
    /// passivating one has stopped).
    Inspect(String, RpcReplyPort<sentinel_engine::UserView>),
    /// Reply with the number of live user actors.
    LiveActors(RpcReplyPort<usize>),
}

impl ractor::Message for ShardMessage {}

/// The shard actor.
pub struct UserShard;

/// Start-up arguments of a [`UserShard`].
pub struct ShardArgs {
    pub deps: Arc<Deps>,
    pub policy: Arc<Policy>,
    pub passivate_after: Duration,
    /// Live user actors this shard may hold before it passivates the least recently active
    /// ones (`usize::MAX`: no limit).
    pub max_live: usize,
}

enum Slot {
    Live {
        actor: ActorRef<UserMessage>,
        last_active: Instant,
    },
    /// Passivating: the actor is writing its snapshot. Events and looks at the user wait here
    /// until it has stopped, then go to the user's next actor, which restores from that
    /// snapshot.
    Stopping { buffered: Vec<UserMessage> },
}

/// A shard's state: its live users and which actor serves each.
pub struct ShardState {
    deps: Arc<Deps>,
    policy: Arc<Policy>,
    passivate_after: Duration,
    max_live: usize,
    users: HashMap<Arc<str>, Slot>,
    by_actor: HashMap<ActorId, Arc<str>>,
    /// How many of `users` are [`Slot::Live`].
    live: usize,
}

impl Actor for UserShard {
    type Msg = ShardMessage;
    type State = ShardState;
    type Arguments = ShardArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ShardArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let tick = (args.passivate_after / 4).max(Duration::from_millis(50));
        myself.send_interval(tick, || ShardMessage::PassivateIdle);
        Ok(ShardState {
            deps: args.deps,
            policy: args.policy,
            passivate_after: args.passivate_after,
            max_live: args.max_live.max(1),
            users: HashMap::new(),
            by_actor: HashMap::new(),
            live: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: ShardMessage,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ShardMessage::Route(request) => state.route(&myself, request).await?,
            ShardMessage::SetPolicy(policy, reply) => {
                for slot in state.users.values() {
                    if let Slot::Live { actor, .. } = slot {
                        let _ = actor.cast(UserMessage::SetPolicy(Arc::clone(&policy)));
                    }
                }
                state.policy = policy;
                let _ = reply.send(());
            }
            ShardMessage::PassivateIdle => state.passivate_idle(),
            ShardMessage::Passivate(picks, reply) => {
                let mut waits = Vec::new();
                let mut stopped = 0;
                for (user, slot) in state.users.iter_mut() {
                    if !picks(user) {
                        continue;
                    }
                    if let Slot::Live { actor, .. } = slot {
                        let actor = actor.clone();
                        *slot = Slot::Stopping {
                            buffered: Vec::new(),
                        };
                        stopped += 1;
                        waits.push(async move {
                            actor
                                .call(|port| UserMessage::Passivate(Some(port)), None)
                                .await
                        });
                    }
                }
                state.live -= stopped;
                let count = waits.len();
                futures::future::join_all(waits).await;
                let _ = reply.send(count);
            }
            ShardMessage::Inspect(user, reply) => {
                let (actor, started) = match state.users.get_mut(user.as_str()) {
                    Some(Slot::Live { actor, last_active }) => {
                        *last_active = Instant::now();
                        (actor.clone(), false)
                    }
                    // Passivating: the user's next actor answers, once the snapshot in
                    // flight is stored.
                    Some(Slot::Stopping { buffered }) => {
                        buffered.push(UserMessage::Inspect(reply));
                        return Ok(());
                    }
                    None => {
                        let user: Arc<str> = Arc::from(user.as_str());
                        (state.spawn(&myself, &user, false).await?, true)
                    }
                };
                // Asked before any trim could pick it, so it answers first.
                let _ = actor.cast(UserMessage::Inspect(reply));
                if started {
                    state.passivate_least_recent();
                }
            }
            ShardMessage::LiveActors(reply) => {
                debug_assert_eq!(
                    state.live,
                    state
                        .users
                        .values()
                        .filter(|s| matches!(s, Slot::Live { .. }))
                        .count(),
                    "live actor count drifted"
                );
                let _ = reply.send(state.live);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err)),
            _ => return Ok(()),
        };
        let Some(user) = state.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        metrics::gauge!(m::ACTORS_LIVE).decrement(1.0);
        let buffered = match state.users.remove(&user) {
            Some(Slot::Stopping { buffered }) => buffered,
            Some(Slot::Live { actor, .. }) if actor.get_id() != cell.get_id() => {
                // A newer actor already serves this user; keep it.
                state.users.insert(
                    user,
                    Slot::Live {
                        actor,
                        last_active: Instant::now(),
                    },
                );
                return Ok(());
            }
            // The live actor itself ended (failed, or stopped without passivating).
            Some(Slot::Live { .. }) => {
                state.live -= 1;
                Vec::new()
            }
            None => Vec::new(),
        };
        if let Some(err) = &failure {
            metrics::counter!(m::RESTARTS).increment(1);
            tracing::warn!(%user, error = %err, "user actor failed; restarting from its snapshot");
        }
        if failure.is_some() || !buffered.is_empty() {
            let actor = state.spawn(&myself, &user, failure.is_some()).await?;
            for message in buffered {
                let _ = actor.cast(message);
            }
            state.passivate_least_recent();
        }
        Ok(())
    }
}

impl ShardState {
    async fn route(
        &mut self,
        myself: &ActorRef<ShardMessage>,
        request: ScoreRequest,
    ) -> Result<(), ActorProcessingErr> {
        match self.users.get_mut(request.event.user_id.as_str()) {
            Some(Slot::Live { actor, last_active }) => {
                *last_active = Instant::now();
                let _ = actor.cast(UserMessage::Score(request));
            }
            Some(Slot::Stopping { buffered }) => buffered.push(UserMessage::Score(request)),
            None => {
                let user: Arc<str> = Arc::from(request.event.user_id.as_str());
                let actor = self.spawn(myself, &user, false).await?;
                let _ = actor.cast(UserMessage::Score(request));
                self.passivate_least_recent();
            }
        }
        Ok(())
    }

    async fn spawn(
        &mut self,
        myself: &ActorRef<ShardMessage>,
        user: &Arc<str>,
        after_failure: bool,
    ) -> Result<ActorRef<UserMessage>, ActorProcessingErr> {
        let args = UserArgs {
            user_id: Arc::clone(user),
            deps: Arc::clone(&self.deps),
            policy: Arc::clone(&self.policy),
            after_failure,
        };
        let (actor, _) = Actor::spawn_linked(None, UserActor, args, myself.get_cell()).await?;
        metrics::gauge!(m::ACTORS_LIVE).increment(1.0);
        self.live += 1;
        self.by_actor.insert(actor.get_id(), Arc::clone(user));
        self.users.insert(
            Arc::clone(user),
            Slot::Live {
                actor: actor.clone(),
                last_active: Instant::now(),
            },
        );
        Ok(actor)
    }

    fn passivate_idle(&mut self) {
        let now = Instant::now();
        let mut stopped = 0;
        for slot in self.users.values_mut() {
            if let Slot::Live { last_active, .. } = slot {
                if now.duration_since(*last_active) >= self.passivate_after {
                    passivate(slot);
                    stopped += 1;
                }
            }
        }
        self.live -= stopped;
    }

    /// Over the limit, passivates the least recently active live actors down to 63/64 of it:
    /// the scan over the shard's users is then paid once per `max_live / 64` new users, not
    /// once per new user, and each round's snapshots are few enough not to stall the writer
    /// (a round of 1/16 put ~1,500 snapshots in the writer's queue at once: p99 ×5 over HTTP).
    fn passivate_least_recent(&mut self) {
        if self.live <= self.max_live {
            return;
        }
        let excess = self.live - (self.max_live - self.max_live / 64);
        let mut live: Vec<(Instant, &Arc<str>)> = self
            .users
            .iter()
            .filter_map(|(user, slot)| match slot {
                Slot::Live { last_active, .. } => Some((*last_active, user)),
                Slot::Stopping { .. } => None,
            })
            .collect();
        if excess < live.len() {
            live.select_nth_unstable_by_key(excess, |(at, _)| *at);
            live.truncate(excess);
        }
        let oldest: Vec<Arc<str>> = live.into_iter().map(|(_, u)| Arc::clone(u)).collect();
        for user in &oldest {
            if let Some(slot) = self.users.get_mut(user) {
                passivate(slot);
            }
        }
        self.live -= oldest.len();
        m::ACTOR.evicted.increment(oldest.len() as u64);
    }
}

/// Asks a live actor to snapshot and stop; events for its user wait in the slot meanwhile.
fn passivate(slot: &mut Slot) {
    if let Slot::Live { actor, .. } = slot {
        let _ = actor.cast(UserMessage::Passivate(None));
        *slot = Slot::Stopping {
            buffered: Vec::new(),
        };
    }
}
