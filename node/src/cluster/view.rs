//! What every member says about itself, and the cluster view gathered from all of them.
//!
//! Each node runs a [`NodeInfo`] actor in the process group [`NODES_GROUP`]; `GET /v1/cluster`
//! on any node calls every member's actor over the cluster and lists the answers, and a user's
//! profile asked of any node is answered by the member owning the user's partition.

use crate::kafka::PartitionOwnership;
use futures::future::join_all;
use ractor::{pg, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use sentinel_actors::Scorer;
use sentinel_api::cluster::{ClusterMember, ClusterView};
use sentinel_engine::UserView;
use std::time::Duration;
use tokio::sync::watch;

/// The process group of every node's [`NodeInfo`] actor.
pub const NODES_GROUP: &str = "sentinel.nodes";

/// How often the cluster-members gauge is refreshed.
const MEMBERS_GAUGE_EVERY: Duration = Duration::from_secs(5);

/// How long a member may take to describe itself before the view leaves it out.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages of the node-info actor (serializable: they cross nodes).
#[derive(RactorClusterMessage)]
pub enum NodeInfoMessage {
    /// Reply with this node's [`ClusterMember`], JSON-encoded.
    #[rpc]
    Describe(RpcReplyPort<Vec<u8>>),
    /// If this node owns the input partition (the second field), reply with the live state of
    /// the user (the first field) as JSON `Some(UserView)`; otherwise with `null`.
    #[rpc]
    ProfileIfOwner(String, i32, RpcReplyPort<Vec<u8>>),
}

/// What a node knows about itself.
pub struct LocalNode {
    /// This node's cluster name.
    pub node: String,
    /// Address of this node's REST API.
    pub http: String,
    /// The node whose store this one uses.
    pub store_host: String,
    /// The input partitions this node owns.
    pub ownership: PartitionOwnership,
    /// The user actors.
    pub scorer: Scorer,
    /// The rule-set version every user actor has.
    pub policy_applied: watch::Receiver<u64>,
}

/// Answers for this node.
pub struct NodeInfo;

impl Actor for NodeInfo {
    type Msg = NodeInfoMessage;
    type State = LocalNode;
    type Arguments = LocalNode;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        local: LocalNode,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(local)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: NodeInfoMessage,
        local: &mut LocalNode,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NodeInfoMessage::Describe(reply) => {
                let member = ClusterMember {
                    node: local.node.clone(),
                    http: local.http.clone(),
                    store_host: local.store_host.clone(),
                    partitions: local.ownership.owned(),
                    live_actors: local.scorer.live_actors().await,
                    rule_set_version: *local.policy_applied.borrow(),
                };
                let _ = reply.send(serde_json::to_vec(&member)?);
            }
            NodeInfoMessage::ProfileIfOwner(user, partition, reply) => {
                let view = if local.ownership.owned().contains(&partition) {
                    local.scorer.inspect(&user).await
                } else {
                    None
                };
                let _ = reply.send(serde_json::to_vec(&view)?);
            }
        }
        Ok(())
    }
}

/// Starts this node's info actor and joins it to [`NODES_GROUP`].
pub async fn start(local: LocalNode) -> anyhow::Result<ActorRef<NodeInfoMessage>> {
    let (actor, _) = Actor::spawn(None, NodeInfo, local)
        .await
        .map_err(|e| anyhow::anyhow!("starting the node-info actor: {e}"))?;
    pg::join(NODES_GROUP.to_owned(), vec![actor.get_cell()]);
    // Membership as this node sees it, for the dashboards (a partition shows as a drop).
    tokio::spawn(async {
        let mut tick = tokio::time::interval(MEMBERS_GAUGE_EVERY);
        loop {
            tick.tick().await;
            let members = pg::get_members(&NODES_GROUP.to_owned()).len();
            metrics::gauge!(crate::telemetry::CLUSTER_MEMBERS).set(members as f64);
        }
    });
    Ok(actor)
}

/// A user's live state from the node that owns the user's input partition: this one, or the
/// member that says it owns it. Without Kafka, or while no member owns the partition (a
/// rebalance is under way), this node restores the user from the shared store and answers.
pub async fn user_view(
    scorer: &Scorer,
    ownership: &PartitionOwnership,
    user_id: &str,
) -> Option<UserView> {
    let Some(partition) = ownership.partition_of(user_id) else {
        return scorer.inspect(user_id).await;
    };
    if ownership.owned().contains(&partition) {
        return scorer.inspect(user_id).await;
    }
    let calls = pg::get_members(&NODES_GROUP.to_owned())
        .into_iter()
        .filter(|cell| !cell.get_id().is_local())
        .map(|cell| {
            let user = user_id.to_owned();
            async move {
                let actor: ActorRef<NodeInfoMessage> = cell.into();
                let answer = actor
                    .call(
                        |reply| NodeInfoMessage::ProfileIfOwner(user, partition, reply),
                        Some(DESCRIBE_TIMEOUT),
                    )
                    .await;
                match answer {
                    Ok(ractor::rpc::CallResult::Success(bytes)) => {
                        serde_json::from_slice::<Option<UserView>>(&bytes)
                            .ok()
                            .flatten()
                    }
                    _ => None,
                }
            }
        });
    match join_all(calls).await.into_iter().flatten().next() {
        Some(view) => Some(view),
        None => scorer.inspect(user_id).await,
    }
}

/// Asks every member to describe itself; members that do not answer in time are left out.
pub async fn gather(answered_by: &str) -> ClusterView {
    let calls = pg::get_members(&NODES_GROUP.to_owned())
        .into_iter()
        .map(|cell| async move {
            let actor: ActorRef<NodeInfoMessage> = cell.into();
            match actor
                .call(NodeInfoMessage::Describe, Some(DESCRIBE_TIMEOUT))
                .await
            {
                Ok(ractor::rpc::CallResult::Success(bytes)) => {
                    serde_json::from_slice::<ClusterMember>(&bytes).ok()
                }
                _ => None,
            }
        });
    let mut members: Vec<ClusterMember> = join_all(calls).await.into_iter().flatten().collect();
    members.sort_by(|a, b| a.node.cmp(&b.node));
    ClusterView {
        answered_by: answered_by.to_owned(),
        members,
    }
}
