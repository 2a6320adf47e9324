//! The actor that owns one user: it decides that user's events one at a time, in arrival
//! order, so the user's windows and profile never need a lock.

use crate::entities::Entities;
use crate::metrics as m;
use crate::parked::ParkedState;
use crate::restore::{Restored, Source};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use sentinel_engine::{entities_of, entry_of, EntityCounts, LookupMode, Policy, UserState};
use sentinel_event::{DecisionError, Transaction};
use sentinel_store::{
    DecisionAck, QueueMark, RestorePoint, StoreError, Stored, UserSnapshot, Writer,
};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

/// Dependencies every user actor shares.
pub struct Deps {
    /// The ordered write path.
    pub writer: Writer,
    /// How far behind the user's latest event time an event may arrive and still enter the
    /// windows.
    pub lateness_ms: i64,
    /// Decisions not in a busy user's stored snapshot before it gets a background one (at
    /// its next event once they are answered, and at the latest at twice as many), bounding
    /// the replay after a crash.
    pub snapshot_every: u64,
    /// Decisions not in a user's stored snapshot from which passivation writes a new one;
    /// fewer are replayed when the user comes back.
    pub passivation_snapshot_after: u64,
    /// The shared entities (cards, devices, IPs, merchants) and their users.
    pub entities: Entities,
    /// Reads the restore points of users starting together in one store call.
    pub restorer: crate::restorer::Restorer,
    /// When set, only the users it picks are parked (those of the Kafka partitions this node
    /// owns): a user another node decides for must come back from the store.
    pub park_only: std::sync::OnceLock<crate::UserFilter>,
}

impl Deps {
    /// Whether `user`'s state may be parked, or taken from a parked state.
    pub fn may_park(&self, user: &str) -> bool {
        self.park_only.get().is_none_or(|picks| picks(user))
    }
}

/// One transaction to decide, and where to send the decision once it is durable.
pub struct ScoreRequest {
    /// The validated event.
    pub event: Arc<Transaction>,
    /// When the node received it, for the decision's latency.
    pub received: Instant,
    /// Receives the decision of record after it is stored.
    pub reply: DecisionAck,
}

/// Messages a user actor understands.
pub enum UserMessage {
    /// Decide one transaction of this user.
    Score(ScoreRequest),
    /// Apply this policy (rules, lists, thresholds) from the next event on.
    SetPolicy(Arc<Policy>),
    /// Reply with a summary of the user's live state (loading it first if needed).
    Inspect(RpcReplyPort<sentinel_engine::UserView>),
    /// Stop (the user has been idle, or others are more recent), once everything the user
    /// decided is durable, and then a snapshot if at least `passivation_snapshot_after`
    /// decisions are not in the stored one.
    Passivate {
        /// Leave the state, encoded, for the shard to park ([`crate::parked`]).
        park: bool,
        /// Told once the actor has stopped cleanly.
        reply: Option<RpcReplyPort<()>>,
    },
}

impl ractor::Message for UserMessage {}

/// The per-user actor. Stateless itself; everything lives in [`UserActorState`].
pub struct UserActor;

/// Start-up arguments of a [`UserActor`].
pub struct UserArgs {
    pub user_id: Arc<str>,
    pub deps: Arc<Deps>,
    pub policy: Arc<Policy>,
    /// The previous actor of this user failed: wait for its queued writes before restoring.
    pub after_failure: bool,
    /// The state the user's last actor left when it passivated, to start from instead of the
    /// store.
    pub parked: Option<ParkedState>,
}

/// A user actor's state. The user's [`UserState`] is loaded on the first event, not in
/// `pre_start`, so that spawning never blocks the supervisor on storage.
pub struct UserActorState {
    user_id: Arc<str>,
    deps: Arc<Deps>,
    policy: Arc<Policy>,
    after_failure: bool,
    user: Option<UserState>,
    /// The `seq` of the user's snapshot in the store or queued for it (0: none), which the
    /// loaded state's later decisions build on; `None` until loaded, or when the stored
    /// snapshot must be written again.
    snapshot_seq: Option<u64>,
    /// Where the writer's queue stood after this actor's last decision, until that decision
    /// is known durable: stopping waits for it, or the user's next actor could restore
    /// without it.
    unsettled: Option<QueueMark>,
    /// Before the state is loaded: the parked state to load it from. After a passivation
    /// asked to park: the state, encoded, for the shard to take from the stopped actor.
    parked: Option<ParkedState>,
}

impl UserActorState {
    /// The state a passivation left to park, if any.
    pub fn take_parked(&mut self) -> Option<ParkedState> {
        self.parked.take()
    }
}

impl Actor for UserActor {
    type Msg = UserMessage;
    type State = UserActorState;
    type Arguments = UserArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: UserArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(UserActorState {
            user_id: args.user_id,
            deps: args.deps,
            policy: args.policy,
            after_failure: args.after_failure,
            user: None,
            snapshot_seq: None,
            unsettled: None,
            parked: args.parked,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: UserMessage,
        state: &mut UserActorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            // Boxed: ractor keeps each live actor's message future allocated for the actor's
            // whole life at its largest, and scoring's is over a kilobyte. One allocation per
            // event costs less than that kilobyte times every idle live actor.
            UserMessage::Score(request) => Box::pin(state.score(request)).await,
            UserMessage::Inspect(reply) => {
                state.forget_if_stale();
                state.load().await?;
                let view = state.user.as_ref().expect("loaded above").view();
                let _ = reply.send(view);
                Ok(())
            }
            UserMessage::SetPolicy(policy) => {
                state.policy = policy;
                Ok(())
            }
            UserMessage::Passivate { park, reply } => {
                state.settle_for_passivation().await?;
                state.parked = if park { state.encode_to_park() } else { None };
                m::ACTOR.passivations.increment(1);
                myself.stop(None);
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
                Ok(())
            }
        }
    }
}

impl UserActorState {
    async fn score(&mut self, request: ScoreRequest) -> Result<(), ActorProcessingErr> {
        let ScoreRequest {
            event,
            received,
            reply,
        } = request;
        // Before the stale mark is read: a settled decision's mark, if any, is then seen.
        let answered = match self.decisions_answered().await {
            Ok(answered) => answered,
            Err(e) => {
                let _ = reply.send(Err(DecisionError::Store(e.to_string())));
                return Err(e.into());
            }
        };
        self.forget_if_stale();
        if let Err(e) = self.load().await {
            let _ = reply.send(Err(DecisionError::Store(e.to_string())));
            return Err(e.into());
        }
        if answered && self.unsnapshotted() >= self.deps.snapshot_every {
            self.queue_background_snapshot().await;
        }
        let lateness = self.deps.lateness_ms;
        let user = self.user.as_mut().expect("loaded above");
        let seen = user.has_seen(&event);
        if seen || user.beyond_memory(&event, lateness) {
            match self
                .deps
                .writer
                .lookup_after_writes(event.transaction_id.clone())
                .await
            {
                Ok(Some(decision)) => {
                    m::ACTOR.redelivered.increment(1);
                    let _ = reply.send(Ok(Stored {
                        decision: Arc::new(decision),
                        duplicate: true,
                    }));
                    return Ok(());
                }
                // Folded into the state, yet never stored (its batch failed): the state is
                // ahead of the store. Restart from the snapshot; the caller's retry then
                // decides the event afresh.
                Ok(None) if seen => {
                    return Err("state holds an event whose decision was never stored".into())
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = reply.send(Err(DecisionError::Store(e.to_string())));
                    return Ok(());
                }
            }
        }
        let policy = &self.policy;
        // The one extra hop: only when a rule asks and the event has such an entity.
        let entities = if policy.entity_kinds.is_empty() {
            EntityCounts::default()
        } else {
            let entry = entry_of(&event);
            self.deps
                .entities
                .lookup(
                    &event.user_id,
                    entities_of(&entry),
                    entry.time_ms,
                    policy.entity_kinds,
                    LookupMode::Record,
                )
                .await
        };
        stall_failpoint(&event).await;
        let user = self.user.as_mut().expect("loaded above");
        let started = Instant::now();
        let decided = std::panic::catch_unwind(AssertUnwindSafe(|| {
            failpoint(&event);
            user.decide_with(event, policy, &entities, lateness, received)
        }));
        let decision = match decided {
            Ok(decision) => decision,
            Err(panic) => {
                let why = panic_message(panic.as_ref());
                let _ = reply.send(Err(DecisionError::Poisoned(why.clone())));
                // The state may be half-updated: fail, and let the supervisor restore it.
                return Err(format!("scoring panicked: {why}").into());
            }
        };
        m::ACTOR.scoring.record(started.elapsed().as_secs_f64());
        for reason in &decision.reasons {
            m::rule_hit(&reason.rule, sentinel_rules::Mode::Active);
        }
        for reason in &decision.shadow_hits {
            m::rule_hit(&reason.rule, sentinel_rules::Mode::Shadow);
        }
        if decision.late {
            m::ACTOR.late.increment(1);
        }
        self.deps
            .writer
            .submit_decision(Arc::new(decision), reply)
            .await?;
        self.unsettled = Some(self.deps.writer.mark());
        Ok(())
    }

    /// Whether every decision this actor queued is answered (finished), so that a snapshot
    /// of its state cannot share a batch with one the store answers with another's. A user
    /// whose next event keeps coming before that (a backlog decided back to back) waits for
    /// it once twice `snapshot_every` decisions are missing from its stored snapshot: a crash
    /// then never replays more than that.
    async fn decisions_answered(&mut self) -> Result<bool, StoreError> {
        let Some(mark) = self.unsettled else {
            return Ok(true);
        };
        if self.deps.writer.is_settled(mark) {
            return Ok(true);
        }
        if self.unsnapshotted() < self.deps.snapshot_every.saturating_mul(2) {
            return Ok(false);
        }
        self.deps.writer.settle(mark).await?;
        Ok(true)
    }

    /// Queues a snapshot of a busy user's answered state, bounding what a crash replays. A
    /// snapshot that cannot be made is logged and skipped: the event is decided regardless,
    /// and the user's next restore replays more decisions.
    async fn queue_background_snapshot(&mut self) {
        let queued: Result<u64, ActorProcessingErr> = async {
            let snapshot = self.snapshot()?;
            let seq = snapshot.seq;
            self.deps.writer.queue_snapshot(snapshot).await?;
            Ok(seq)
        }
        .await;
        match queued {
            Ok(seq) => {
                self.snapshot_seq = Some(seq);
                // Passivating waits for it too, so that it never lands after a newer one
                // written by the user's next owner on another node.
                self.unsettled = Some(self.deps.writer.mark());
            }
            Err(e) => {
                tracing::warn!(user = %self.user_id, error = %e, "background snapshot skipped")
            }
        }
    }

    /// The loaded state's decisions that are not in the user's stored snapshot (all of them
    /// when that snapshot must be written again); 0 when nothing is loaded.
    fn unsnapshotted(&self) -> u64 {
        let seq = self.user.as_ref().map_or(0, |u| u.seq);
        match self.snapshot_seq {
            Some(stored) => seq.saturating_sub(stored),
            None if seq == 0 => 0,
            None => u64::MAX,
        }
    }

    /// Before the actor stops: waits until the decisions it queued are finished, so the
    /// user's next actor restores them from the store, then writes a snapshot if enough
    /// decisions are missing from the stored one. A snapshot written at every
    /// passivation was about 30% of a new user's CPU in-process (BENCHMARKS.md, "Passivation
    /// without a snapshot"); a user that comes back replays the few decisions instead.
    async fn settle_for_passivation(&mut self) -> Result<(), ActorProcessingErr> {
        if let Some(mark) = self.unsettled.take() {
            // Usually at once: an idle user's last decision was durable long ago.
            self.deps.writer.settle(mark).await?;
        }
        // Only once its decisions are answered: if the store lacks one, or answered one with
        // another's, the user is stale by now and the writer drops the snapshot. Queued right
        // behind them, it could be committed with them, before that is known.
        if self.unsnapshotted() >= self.deps.passivation_snapshot_after {
            let snapshot = self.snapshot()?;
            let seq = snapshot.seq;
            self.deps.writer.write_snapshot(snapshot).await?;
            self.snapshot_seq = Some(seq);
        }
        Ok(())
    }

    /// The loaded state, encoded to be parked; `None` when nothing is loaded or it could not
    /// be encoded (the user then restores from the store).
    fn encode_to_park(&self) -> Option<ParkedState> {
        let user = self.user.as_ref()?;
        let snapshot_seq = self.snapshot_seq?;
        // A user without decisions has nothing to keep.
        if user.seq == 0 || self.deps.writer.is_stale(&self.user_id) {
            return None;
        }
        ParkedState::encode(user, snapshot_seq).ok()
    }

    /// Drops the state when a decision of ours failed to store: it folds in an event the store
    /// lacks, so the next [`Self::load`] restores from the store.
    fn forget_if_stale(&mut self) {
        if self.user.is_some() && self.deps.writer.is_stale(&self.user_id) {
            self.user = None;
            self.after_failure = true;
        }
    }

    /// Loads the user's state unless it is loaded. A restore happens about once per actor, so
    /// its future lives in its own allocation instead of widening every message's.
    async fn load(&mut self) -> Result<(), StoreError> {
        if self.user.is_some() {
            return Ok(());
        }
        Box::pin(self.restore()).await
    }

    /// Restores the user's state: the latest snapshot, then every stored decision after it.
    async fn restore(&mut self) -> Result<(), StoreError> {
        if self.after_failure || self.deps.writer.is_stale(&self.user_id) {
            self.deps.writer.flush().await?;
        }
        // After the flush: a batch it waited for may have made the user stale.
        let stale = self.deps.writer.is_stale(&self.user_id);
        if let Some(parked) = self.parked.take() {
            if !self.after_failure && !stale {
                match parked.decode() {
                    Ok(user) => {
                        if user.seq > 0 {
                            m::ACTOR.restores.increment(1);
                        }
                        m::ACTOR.user_restored(Source::Parked);
                        self.snapshot_seq = Some(parked.snapshot_seq);
                        self.user = Some(user);
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::error!(user = %self.user_id, error = %e, "unreadable parked state; restoring from the store");
                    }
                }
            }
        }
        let store = self.deps.writer.store().as_ref();
        // A user the store certainly knows nothing of (most new users) costs no read at all.
        let start = if store.may_have_history(&self.user_id) {
            self.deps.restorer.restore_point(&self.user_id).await?
        } else {
            RestorePoint::default()
        };
        let Restored {
            user,
            source,
            snapshot_seq,
        } = crate::restore::restore_from(store, start, &self.user_id, self.deps.lateness_ms)
            .await?;
        if stale {
            // Every snapshot queued before the flush was dropped; this state is the store's.
            self.deps.writer.restored(&self.user_id);
        }
        if user.seq > 0 {
            m::ACTOR.restores.increment(1);
        }
        m::ACTOR.user_restored(source);
        self.snapshot_seq = snapshot_seq;
        self.user = Some(user);
        Ok(())
    }

    /// The loaded state as a snapshot to store (`snapshot_seq` moves once it is queued).
    fn snapshot(&self) -> Result<UserSnapshot, ActorProcessingErr> {
        let user = self.user.as_ref().expect("snapshot of a loaded user");
        Ok(UserSnapshot {
            user_id: self.user_id.to_string(),
            seq: user.seq,
            state: crate::snapshot::encode(user)?,
        })
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// With the `failpoints` feature, an event whose metadata says
/// `"sentinel_failpoint": "panic"` crashes its actor, so tests can prove supervision works.
#[cfg(feature = "failpoints")]
fn failpoint(event: &Transaction) {
    let wants_panic = event
        .metadata
        .as_ref()
        .and_then(|m| m.get("sentinel_failpoint"))
        .is_some_and(|v| v == "panic");
    if wants_panic {
        panic!(
            "failpoint: panic requested by event {}",
            event.transaction_id
        );
    }
}

#[cfg(not(feature = "failpoints"))]
fn failpoint(_event: &Transaction) {}

/// With the `failpoints` feature, an event whose metadata says `"sentinel_failpoint": "stall"`
/// is not decided until the file its `"release_file"` names exists, so tests can hold a
/// decision in flight for as long as they need.
#[cfg(feature = "failpoints")]
async fn stall_failpoint(event: &Transaction) {
    let release = event
        .metadata
        .as_ref()
        .filter(|m| m.get("sentinel_failpoint").is_some_and(|v| v == "stall"))
        .and_then(|m| m.get("release_file"))
        .and_then(|v| v.as_str());
    if let Some(path) = release {
        while !std::path::Path::new(path).exists() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

#[cfg(not(feature = "failpoints"))]
async fn stall_failpoint(_event: &Transaction) {}
