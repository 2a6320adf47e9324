//! Rules and lists reach every node of the cluster as actor messages.
//!
//! Every node runs a [`PolicyListener`] in the process group [`POLICY_GROUP`]. When this
//! node's catalogue publishes a new version (an analyst changed a rule or list through this
//! node's API), every other member is told the version; it reloads the catalogue from the
//! shared store, and its own policy feed applies the result to its user actors through
//! `Scorer::set_policy`. A reload that finds nothing newer publishes nothing, so notices
//! never echo around the cluster.

use ractor::{pg, Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorClusterMessage;
use sentinel_catalog::Catalog;
use std::sync::Arc;

/// The process group of every node's policy listener.
pub const POLICY_GROUP: &str = "sentinel.policy";

/// How often a node checks the shared store for a version it was not told about.
const CATCH_UP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Messages of the policy listener (serializable: they cross nodes).
#[derive(RactorClusterMessage)]
pub enum PolicyNotice {
    /// Another node published this policy version to the shared store.
    Published(u64),
}

/// Reloads the catalogue when another node announces a newer policy version.
pub struct PolicyListener;

impl Actor for PolicyListener {
    type Msg = PolicyNotice;
    type State = Arc<Catalog>;
    type Arguments = Arc<Catalog>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        catalog: Arc<Catalog>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(catalog)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: PolicyNotice,
        catalog: &mut Arc<Catalog>,
    ) -> Result<(), ActorProcessingErr> {
        let PolicyNotice::Published(version) = message;
        if catalog.policy().rules.version >= version {
            return Ok(());
        }
        match catalog.reload().await {
            Ok(now) => tracing::info!(announced = version, now, "policy notice handled"),
            // The next notice (or the next change) retries; scoring goes on with the old one.
            Err(e) => tracing::warn!(error = %e, version, "reloading the announced policy failed"),
        }
        Ok(())
    }
}

/// Starts this node's listener and announces every version this node publishes to the other
/// members. Abort the returned task to stop.
pub async fn run(catalog: Arc<Catalog>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (listener, _) = Actor::spawn(None, PolicyListener, Arc::clone(&catalog))
        .await
        .map_err(|e| anyhow::anyhow!("starting the policy listener: {e}"))?;
    pg::join(POLICY_GROUP.to_owned(), vec![listener.get_cell()]);
    let mut updates = catalog.subscribe();
    // A node that was disconnected when a notice went out catches up on this tick.
    let mut catch_up = tokio::time::interval(CATCH_UP_EVERY);
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { break },
                _ = catch_up.tick() => {
                    if let Err(e) = catalog.reload().await {
                        tracing::warn!(error = %e, "checking the store for a newer policy failed");
                    }
                    continue;
                }
            }
            let version = updates.borrow_and_update().rules.version;
            for member in pg::get_members(&POLICY_GROUP.to_owned()) {
                if member.get_id().is_local() {
                    continue;
                }
                let peer: ActorRef<PolicyNotice> = member.into();
                if let Err(e) = peer.cast(PolicyNotice::Published(version)) {
                    tracing::warn!(error = %e, "announcing a policy version failed");
                }
            }
        }
        listener.stop(None);
    }))
}
