//! `GET /v1/cluster`: the members of the cluster as every one of them describes itself.

use crate::{ApiError, ApiState, ErrorResponse};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

/// The cluster as seen from the node that answered.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterView {
    /// The node that gathered this view.
    pub answered_by: String,
    /// Every member that answered, ordered by node name (this node included).
    pub members: Vec<ClusterMember>,
}

/// One member's own account of itself.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterMember {
    /// The member's cluster node name.
    pub node: String,
    /// Address of the member's REST API.
    pub http: String,
    /// Name of the node whose store the member uses (itself when it hosts the store).
    pub store_host: String,
    /// Partitions of the input topic the member owns (empty without Kafka).
    pub partitions: Vec<i32>,
    /// User actors live on the member.
    pub live_actors: usize,
    /// The rule-set version every user actor of the member has.
    pub rule_set_version: u64,
}

/// `GET /v1/cluster`: members, the partitions each owns, live actors and rule-set version per
/// node, gathered over the cluster from every member.
#[utoipa::path(get, path = "/v1/cluster", tag = "operations", responses((status = 200, body = ClusterView), (status = 503, description = "The cluster view could not be gathered", body = ErrorResponse)))]
pub async fn cluster(State(state): State<ApiState>) -> Result<Json<ClusterView>, ApiError> {
    state
        .decider
        .cluster()
        .await
        .map(Json)
        .ok_or_else(|| ApiError::unavailable("this node does not run a cluster view"))
}
