//! The ractor_cluster node every SentinelStream process runs, even alone, so that more nodes
//! can join without changing how this one works.

use crate::config::ClusterConfig;
use ractor::{Actor, ActorRef};
use ractor_cluster::{NodeServer, NodeServerMessage};

/// Starts this process's cluster node server.
pub async fn start(config: &ClusterConfig) -> anyhow::Result<ActorRef<NodeServerMessage>> {
    if config.cookie == "sentinel" {
        tracing::warn!("cluster cookie is the default; set SENTINEL_CLUSTER_COOKIE in production");
    }
    let server = NodeServer::new(
        config.port,
        config.cookie.clone(),
        config.node_name.clone(),
        hostname(),
        None,
        None,
    );
    let (actor, _) = Actor::spawn(None, server, ())
        .await
        .map_err(|e| anyhow::anyhow!("starting the cluster node: {e}"))?;
    tracing::info!(node = %config.node_name, port = config.port, "cluster node started");
    Ok(actor)
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into())
}
