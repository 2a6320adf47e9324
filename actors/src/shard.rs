//! Supervisor of one share of the user key space.
//!
//! The shard routes each event to its user's actor, spawning it on first use; passivates
//! actors idle for longer than the configured time (they stop once their decisions are
//! durable, writing a snapshot if one is due; events arriving meanwhile wait in the shard, so
//! a user never has two actors); passivates the least recently
//! active one for each actor started beyond its limit, so memory is bounded by the limit
//! whatever the population (Akka's sharding calls this an active entity limit); keeps the
//! states passivated actors leave (`crate::parked`) for their users' next actors; and restarts
//! a failed actor at once, from its last snapshot plus the decisions stored after it.
//!
//! Users are kept in recency order (an LRU list), so both kinds of passivation find their
//! actors at the list's cold end instead of scanning every user.

use crate::metrics as m;
use crate::parked::{ParkedState, ParkedStates};
use crate::user_actor::{Deps, ScoreRequest, UserActor, UserActorState, UserArgs, UserMessage};
use lru::LruCache;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use sentinel_engine::Policy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Picks users by id (the shards passivate those it picks).
pub type UserFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Messages a shard understands.
pub enum ShardMessage {
    /// Deliver an event to its user's actor.
    Route(ScoreRequest),
    /// Deliver each event to its user's actor, in order ([`crate::Dispatch`]).
    RouteBatch(Vec<ScoreRequest>),
    /// Use this policy for every live and future user actor of the shard. The reply comes
    /// once every live actor has the policy queued ahead of any later event.
    SetPolicy(Arc<Policy>, RpcReplyPort<()>),
    /// Timer tick: passivate actors idle for too long.
    PassivateIdle,
    /// Passivate every live actor whose user the filter picks (all at shutdown, those of
    /// partitions lost on a rebalance), and forget the parked states of the users it picks:
    /// their next actors restore from the store. Replies with how many were passivated.
    Passivate(UserFilter, RpcReplyPort<usize>),
    /// Reply with a user's live state, starting the user's actor if it is not live (after a
    /// passivating one has stopped).
    Inspect(String, RpcReplyPort<sentinel_engine::UserView>),
    /// Reply with the number of live user actors.
    LiveActors(RpcReplyPort<usize>),
    /// Reply with the number of passivated users' states parked.
    ParkedStates(RpcReplyPort<usize>),
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
    /// The memory this shard's parked states may hold, by estimate (0: none parked).
    pub parked_bytes: usize,
}

enum Slot {
    Live {
        actor: ActorRef<UserMessage>,
        last_active: Instant,
    },
    /// Passivating: the actor is waiting for its decisions (and its snapshot, if one is due) to
    /// be durable. Events and looks at the user wait here until it has stopped, then go to the
    /// user's next actor, which starts from the state parked or restores it from the store.
    Stopping {
        buffered: Vec<UserMessage>,
        /// Park the state the actor leaves. Cleared when the user's partition leaves the
        /// node meanwhile.
        park: bool,
    },
}

/// A shard's state: its live users and which actor serves each.
pub struct ShardState {
    deps: Arc<Deps>,
    policy: Arc<Policy>,
    passivate_after: Duration,
    max_live: usize,
    /// Least recently used first. A live user moves to the recent end whenever it is used;
    /// a stopping one as it starts stopping, so the cold end holds the live users idle longest.
    users: LruCache<Arc<str>, Slot>,
    by_actor: HashMap<ActorId, Arc<str>>,
    /// How many of `users` are [`Slot::Live`].
    live: usize,
    /// Passivated users' states, for their next actors.
    parked: ParkedStates,
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
            users: LruCache::unbounded(),
            by_actor: HashMap::new(),
            live: 0,
            parked: ParkedStates::new(args.parked_bytes),
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
            ShardMessage::RouteBatch(requests) => {
                for request in requests {
                    state.route(&myself, request).await?;
                }
            }
            ShardMessage::SetPolicy(policy, reply) => {
                for (_, slot) in state.users.iter() {
                    if let Slot::Live { actor, .. } = slot {
                        let _ = actor.cast(UserMessage::SetPolicy(Arc::clone(&policy)));
                    }
                }
                state.policy = policy;
                let _ = reply.send(());
            }
            ShardMessage::PassivateIdle => state.passivate_idle(),
            ShardMessage::Passivate(picks, reply) => {
                state.parked.forget(|user| picks(user));
                let mut picked = Vec::new();
                for (user, slot) in state.users.iter_mut() {
                    match slot {
                        Slot::Live { .. } if picks(user) => picked.push(Arc::clone(user)),
                        Slot::Stopping { park, .. } if picks(user) => *park = false,
                        _ => {}
                    }
                }
                let mut waits = Vec::with_capacity(picked.len());
                for user in &picked {
                    if let Some(actor) = state.stop(user, false) {
                        waits.push(async move {
                            actor
                                .call(
                                    |port| UserMessage::Passivate {
                                        park: false,
                                        reply: Some(port),
                                    },
                                    None,
                                )
                                .await
                        });
                    }
                }
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
                    // Passivating: the user's next actor answers, once what the passivating
                    // one waits for is stored.
                    Some(Slot::Stopping { buffered, .. }) => {
                        buffered.push(UserMessage::Inspect(reply));
                        return Ok(());
                    }
                    None => {
                        let user: Arc<str> = Arc::from(user.as_str());
                        let parked = state.parked.take(&user);
                        (state.spawn(&myself, &user, false, parked).await?, true)
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
                        .iter()
                        .filter(|(_, s)| matches!(s, Slot::Live { .. }))
                        .count(),
                    "live actor count drifted"
                );
                let _ = reply.send(state.live);
            }
            ShardMessage::ParkedStates(reply) => {
                let _ = reply.send(state.parked.len());
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
        let (cell, last_state, failure) = match event {
            SupervisionEvent::ActorTerminated(cell, last_state, _) => (cell, last_state, None),
            SupervisionEvent::ActorFailed(cell, err) => (cell, None, Some(err)),
            _ => return Ok(()),
        };
        let Some(user) = state.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        m::ACTOR.live.decrement(1.0);
        let (buffered, left) = match state.users.pop(&user) {
            Some(Slot::Stopping { buffered, park }) => {
                let left = last_state
                    .filter(|_| park)
                    .and_then(|mut last| last.take::<UserActorState>().ok())
                    .and_then(|mut last| last.take_parked());
                (buffered, left)
            }
            Some(Slot::Live { actor, .. }) if actor.get_id() != cell.get_id() => {
                // A newer actor already serves this user; keep it.
                state.users.push(
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
                (Vec::new(), None)
            }
            None => (Vec::new(), None),
        };
        if let Some(err) = &failure {
            metrics::counter!(m::RESTARTS).increment(1);
            tracing::warn!(%user, error = %err, "user actor failed; restarting from its snapshot");
        }
        if failure.is_none() && buffered.is_empty() {
            if let Some(left) = left {
                state.parked.park(user, left);
            }
        } else {
            // Events came meanwhile: the next actor starts from the state just left, if any.
            let actor = state.spawn(&myself, &user, failure.is_some(), left).await?;
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
            Some(Slot::Stopping { buffered, .. }) => buffered.push(UserMessage::Score(request)),
            None => {
                let user: Arc<str> = Arc::from(request.event.user_id.as_str());
                let parked = self.parked.take(&user);
                let actor = self.spawn(myself, &user, false, parked).await?;
                let _ = actor.cast(UserMessage::Score(request));
                self.passivate_least_recent();
            }
        }
        Ok(())
    }

    /// Starts `user`'s actor, from `parked` when given (unless after a failure, or the user
    /// may no longer be parked here).
    async fn spawn(
        &mut self,
        myself: &ActorRef<ShardMessage>,
        user: &Arc<str>,
        after_failure: bool,
        parked: Option<ParkedState>,
    ) -> Result<ActorRef<UserMessage>, ActorProcessingErr> {
        // After a failure the store is the truth (what the failed actor held may not be).
        let parked = parked.filter(|_| !after_failure && self.deps.may_park(user));
        let args = UserArgs {
            user_id: Arc::clone(user),
            deps: Arc::clone(&self.deps),
            policy: Arc::clone(&self.policy),
            after_failure,
            parked,
        };
        let (actor, _) = Actor::spawn_linked(None, UserActor, args, myself.get_cell()).await?;
        m::ACTOR.live.increment(1.0);
        self.live += 1;
        self.by_actor.insert(actor.get_id(), Arc::clone(user));
        self.users.push(
            Arc::clone(user),
            Slot::Live {
                actor: actor.clone(),
                last_active: Instant::now(),
            },
        );
        Ok(actor)
    }

    /// Passivates the live actors idle for `passivate_after`: those at the cold end.
    fn passivate_idle(&mut self) {
        let now = Instant::now();
        let idle: Vec<Arc<str>> = self
            .users
            .iter()
            .rev()
            .filter_map(|(user, slot)| match slot {
                Slot::Live { last_active, .. } => Some((user, *last_active)),
                Slot::Stopping { .. } => None,
            })
            .take_while(|(_, last_active)| now.duration_since(*last_active) >= self.passivate_after)
            .map(|(user, _)| Arc::clone(user))
            .collect();
        for user in &idle {
            self.passivate(user);
        }
    }

    /// Over the limit, passivates the least recently active live actors down to it.
    fn passivate_least_recent(&mut self) {
        while self.live > self.max_live {
            let coldest = self.users.iter().rev().find_map(|(user, slot)| match slot {
                Slot::Live { .. } => Some(Arc::clone(user)),
                Slot::Stopping { .. } => None,
            });
            let Some(user) = coldest else { return };
            if self.passivate(&user) {
                m::ACTOR.evicted.increment(1);
            }
        }
    }

    /// Asks a live user's actor to passivate, leaving its state to park when parking is on.
    /// Returns whether the user was live.
    fn passivate(&mut self, user: &str) -> bool {
        let park = self.parked.enabled() && self.deps.may_park(user);
        let Some(actor) = self.stop(user, park) else {
            return false;
        };
        let _ = actor.cast(UserMessage::Passivate { park, reply: None });
        true
    }

    /// Marks a live user as stopping (events for it wait in its slot meanwhile) and moves it
    /// to the recent end, out of the way of the next search for the coldest live user.
    /// Returns its actor, to be asked to passivate.
    fn stop(&mut self, user: &str, park: bool) -> Option<ActorRef<UserMessage>> {
        let slot = self.users.get_mut(user)?;
        let Slot::Live { actor, .. } = slot else {
            return None;
        };
        let actor = actor.clone();
        *slot = Slot::Stopping {
            buffered: Vec::new(),
            park,
        };
        self.live -= 1;
        Some(actor)
    }
}
