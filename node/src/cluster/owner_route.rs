//! HTTP scoring decided by the node that owns the user's input partition.
//!
//! With Kafka configured, a user's actor lives only on the member the consumer group gave the
//! user's partition. `POST /v1/transactions` may arrive at any member: the receiving node
//! computes the partition (Kafka's murmur2), decides locally when it owns it, and otherwise
//! sends the event to the owner's [`OwnerGate`] actor over ractor_cluster and returns the
//! owner's decision. The owner decides only events of partitions it owns now, so no second
//! actor for a user ever starts elsewhere.
//!
//! When no member owns the partition (a rebalance is under way, or ownership is not known
//! yet) the receiving node waits up to [`OWNER_WAIT`] for one, then refuses with 503. When the
//! owner does not answer within [`FORWARD_TIMEOUT`] it refuses with 503 too, and never decides
//! locally: the owner may still decide the event, and a retry with the same `transaction_id`
//! then returns that decision of record. Without Kafka there are no partitions and every node
//! decides locally.

use crate::decider::NodeDecider;
use crate::kafka::PartitionOwnership;
use crate::telemetry as t;
use futures::future::join_all;
use ractor::{pg, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use sentinel_event::{Decision, DecisionError, InvalidEvent, Transaction};
use sentinel_store::Stored;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The process group of every node's [`OwnerGate`].
pub const OWNERS_GROUP: &str = "sentinel.owners";

/// How long the owner may take to decide a forwarded event before the request gets 503.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request waits for some member to own its partition before it gets 503.
pub const OWNER_WAIT: Duration = Duration::from_secs(5);

/// How long a member may take to list its partitions before the directory leaves it out.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Shortest time between two directory refreshes (requests arriving meanwhile share one).
const REFRESH_EVERY: Duration = Duration::from_millis(200);

/// Messages of a node's owner gate (serializable: they cross nodes).
#[derive(RactorClusterMessage)]
pub enum OwnerMessage {
    /// Reply with the input partitions this node owns, JSON `Vec<i32>`.
    #[rpc]
    Partitions(RpcReplyPort<Vec<u8>>),
    /// Decide the JSON-encoded [`Transaction`] if this node owns its user's partition; reply
    /// with a JSON-encoded [`ForwardReply`].
    #[rpc]
    Decide(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// The owner's answer to a forwarded event.
#[derive(Serialize, Deserialize)]
enum ForwardReply {
    /// The decision of record.
    Decided {
        decision: Arc<Decision>,
        duplicate: bool,
    },
    /// This node does not own the user's partition (any more): ask the directory again.
    NotOwner,
    /// The event is invalid ([`DecisionError::Invalid`]).
    Invalid { field: String, reason: String },
    /// Scoring it crashed the user actor ([`DecisionError::Poisoned`]).
    Poisoned(String),
    /// The decision could not be stored ([`DecisionError::Store`]).
    Store(String),
    /// The owner cannot score now ([`DecisionError::Unavailable`]).
    Unavailable(String),
}

impl From<Result<Stored, DecisionError>> for ForwardReply {
    fn from(result: Result<Stored, DecisionError>) -> Self {
        match result {
            Ok(stored) => ForwardReply::Decided {
                decision: stored.decision,
                duplicate: stored.duplicate,
            },
            Err(DecisionError::Invalid(e)) => ForwardReply::Invalid {
                field: e.field,
                reason: e.reason,
            },
            Err(DecisionError::Poisoned(why)) => ForwardReply::Poisoned(why),
            Err(DecisionError::Store(why)) => ForwardReply::Store(why),
            Err(DecisionError::Unavailable(why)) => ForwardReply::Unavailable(why),
        }
    }
}

/// Decides forwarded events for the partitions this node owns.
pub struct OwnerGate;

impl Actor for OwnerGate {
    type Msg = OwnerMessage;
    type State = Arc<NodeDecider>;
    type Arguments = Arc<NodeDecider>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        decider: Arc<NodeDecider>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(decider)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: OwnerMessage,
        decider: &mut Arc<NodeDecider>,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            OwnerMessage::Partitions(reply) => {
                let _ = reply.send(serde_json::to_vec(&decider.ownership.owned())?);
            }
            OwnerMessage::Decide(event, reply) => {
                // Each event on its own task: the user actors order a user's events, and one
                // slow decision must not hold up every other forwarded event.
                let decider = Arc::clone(decider);
                tokio::spawn(async move {
                    let answer = decide_forwarded(&decider, &event).await;
                    match serde_json::to_vec(&answer) {
                        Ok(bytes) => {
                            let _ = reply.send(bytes);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "encoding a forwarded decision failed")
                        }
                    }
                });
            }
        }
        Ok(())
    }
}

/// The owner's side: decides `event` only when this node owns its user's partition now.
async fn decide_forwarded(decider: &NodeDecider, event: &[u8]) -> ForwardReply {
    let received = Instant::now();
    let event: Transaction = match serde_json::from_slice(event) {
        Ok(event) => event,
        Err(e) => {
            return ForwardReply::Invalid {
                field: "body".into(),
                reason: format!("undecodable forwarded event: {e}"),
            }
        }
    };
    let owned = decider
        .ownership
        .partition_of(&event.user_id)
        .is_some_and(|p| decider.ownership.owned().contains(&p));
    if !owned {
        metrics::counter!(t::OWNER_ROUTE_RECEIVED, "result" => "not_owner").increment(1);
        return ForwardReply::NotOwner;
    }
    let outcome = decider.decide_shared(Arc::new(event), received).await;
    let result = if outcome.is_ok() {
        "decided"
    } else {
        "refused"
    };
    metrics::counter!(t::OWNER_ROUTE_RECEIVED, "result" => result).increment(1);
    outcome.into()
}

/// Starts this node's owner gate and joins it to [`OWNERS_GROUP`].
pub async fn start(decider: Arc<NodeDecider>) -> anyhow::Result<ActorRef<OwnerMessage>> {
    let (actor, _) = Actor::spawn(None, OwnerGate, decider)
        .await
        .map_err(|e| anyhow::anyhow!("starting the owner gate: {e}"))?;
    pg::join(OWNERS_GROUP.to_owned(), vec![actor.get_cell()]);
    Ok(actor)
}

/// Where an event is decided.
enum Target {
    /// This node owns the partition.
    Here,
    /// Another member's gate, with the partition it owns.
    Member(ActorRef<OwnerMessage>, i32),
}

/// The sending side: finds each partition's owner among the members and forwards to it.
pub struct OwnerRoute {
    ownership: PartitionOwnership,
    /// The other members' gates by the partition each owns, as they last said.
    owners: RwLock<HashMap<i32, ActorRef<OwnerMessage>>>,
    /// When the directory was last refreshed; held while refreshing.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

impl OwnerRoute {
    /// Routes by this node's view of the input topic's partitions.
    pub fn new(ownership: PartitionOwnership) -> OwnerRoute {
        OwnerRoute {
            ownership,
            owners: RwLock::default(),
            refreshed: tokio::sync::Mutex::new(None),
        }
    }

    /// Decides `event` here when this node owns its partition, else on the owner.
    pub async fn decide(
        &self,
        decider: &NodeDecider,
        event: Transaction,
        received: Instant,
    ) -> Result<Stored, DecisionError> {
        let deadline = Instant::now() + OWNER_WAIT;
        let mut encoded = None;
        loop {
            let (actor, partition) = match self.target(&event.user_id, deadline).await? {
                Target::Here => return decider.decide_shared(Arc::new(event), received).await,
                Target::Member(actor, partition) => (actor, partition),
            };
            if encoded.is_none() {
                encoded = Some(serde_json::to_vec(&event).map_err(|e| {
                    DecisionError::Unavailable(format!("encoding the event failed: {e}"))
                })?);
            }
            let bytes = encoded.clone().unwrap_or_default();
            if let Some(stored) = self.forward(&actor, partition, bytes).await? {
                return Ok(stored);
            }
            // The member gave the partition up (or left) meanwhile: look again, until the
            // deadline.
            self.forget(partition);
            if Instant::now() >= deadline {
                forwarded("no_owner");
                return Err(DecisionError::Unavailable(format!(
                    "the owner of this user's partition ({partition}) changed while forwarding; retry shortly"
                )));
            }
        }
    }

    /// Sends the event to `actor`; `None` when it no longer owns the partition.
    async fn forward(
        &self,
        actor: &ActorRef<OwnerMessage>,
        partition: i32,
        event: Vec<u8>,
    ) -> Result<Option<Stored>, DecisionError> {
        let node = actor.get_id().node();
        let answer = actor
            .call(
                |reply| OwnerMessage::Decide(event, reply),
                Some(FORWARD_TIMEOUT),
            )
            .await;
        let bytes = match answer {
            Ok(ractor::rpc::CallResult::Success(bytes)) => bytes,
            // No answer: the owner may still decide the event, so nobody else may.
            Ok(ractor::rpc::CallResult::Timeout | ractor::rpc::CallResult::SenderError) => {
                forwarded("unreachable");
                tracing::warn!(partition, node, "the partition's owner did not answer");
                return Err(DecisionError::Unavailable(format!(
                    "the owner of this user's partition ({partition}, cluster node {node}) did not answer within {}s; retry with the same transaction_id",
                    FORWARD_TIMEOUT.as_secs()
                )));
            }
            // Not sent (the member left): nothing was decided, so look again.
            Err(_) => {
                forwarded("not_owner");
                return Ok(None);
            }
        };
        let reply = serde_json::from_slice::<ForwardReply>(&bytes).unwrap_or_else(|e| {
            ForwardReply::Unavailable(format!(
                "undecodable answer from the partition's owner: {e}"
            ))
        });
        let (result, outcome) = match reply {
            ForwardReply::Decided {
                decision,
                duplicate,
            } => (
                "decided",
                Ok(Some(Stored {
                    decision,
                    duplicate,
                })),
            ),
            ForwardReply::NotOwner => ("not_owner", Ok(None)),
            ForwardReply::Invalid { field, reason } => (
                "refused",
                Err(DecisionError::Invalid(InvalidEvent { field, reason })),
            ),
            ForwardReply::Poisoned(why) => ("refused", Err(DecisionError::Poisoned(why))),
            ForwardReply::Store(why) => ("refused", Err(DecisionError::Store(why))),
            ForwardReply::Unavailable(why) => ("refused", Err(DecisionError::Unavailable(why))),
        };
        forwarded(result);
        outcome
    }

    /// Where `user_id`'s events are decided, waiting until `deadline` for an owner.
    async fn target(&self, user_id: &str, deadline: Instant) -> Result<Target, DecisionError> {
        loop {
            let partition = self.ownership.partition_of(user_id);
            if let Some(p) = partition {
                if self.ownership.owned().contains(&p) {
                    return Ok(Target::Here);
                }
                if let Some(actor) = self.cached(p) {
                    return Ok(Target::Member(actor, p));
                }
            }
            if Instant::now() >= deadline {
                forwarded("no_owner");
                return Err(DecisionError::Unavailable(match partition {
                    Some(p) => format!(
                        "no cluster member owns this user's partition ({p}) right now (a rebalance is under way or its owner left); retry shortly"
                    ),
                    None => "this node has not read the input topic's partitions yet; retry shortly".into(),
                }));
            }
            self.refresh().await;
        }
    }

    fn cached(&self, partition: i32) -> Option<ActorRef<OwnerMessage>> {
        let owners = self.owners.read().ok()?;
        owners.get(&partition).cloned()
    }

    fn forget(&self, partition: i32) {
        if let Ok(mut owners) = self.owners.write() {
            owners.remove(&partition);
        }
    }

    /// Asks every other member which partitions it owns. Requests that need it meanwhile
    /// share the answer; refreshes are at least [`REFRESH_EVERY`] apart.
    async fn refresh(&self) {
        let mut refreshed = self.refreshed.lock().await;
        if let Some(at) = *refreshed {
            let wait = REFRESH_EVERY.saturating_sub(at.elapsed());
            if !wait.is_zero() {
                drop(refreshed);
                tokio::time::sleep(wait).await;
                return;
            }
        }
        let calls = pg::get_members(&OWNERS_GROUP.to_owned())
            .into_iter()
            .filter(|cell| !cell.get_id().is_local())
            .map(|cell| async move {
                let actor: ActorRef<OwnerMessage> = cell.into();
                match actor
                    .call(OwnerMessage::Partitions, Some(ASK_TIMEOUT))
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(bytes)) => {
                        let partitions: Vec<i32> = serde_json::from_slice(&bytes).ok()?;
                        Some((actor, partitions))
                    }
                    _ => None,
                }
            });
        let mut owners = HashMap::new();
        for (actor, partitions) in join_all(calls).await.into_iter().flatten() {
            for p in partitions {
                owners.insert(p, actor.clone());
            }
        }
        if let Ok(mut table) = self.owners.write() {
            *table = owners;
        }
        *refreshed = Some(Instant::now());
    }
}

/// Counts one forwarding attempt by result (`decided`, `refused`, `not_owner`,
/// `unreachable`, `no_owner`).
fn forwarded(result: &'static str) {
    metrics::counter!(t::OWNER_ROUTE_FORWARDS, "result" => result).increment(1);
}
