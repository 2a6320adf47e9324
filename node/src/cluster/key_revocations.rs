//! A key revoked through one node's API is forgotten by every member's key cache before the
//! revocation answers.
//!
//! Every node runs a [`KeyListener`] in the process group [`KEYS_GROUP`]. The revoking node
//! asks each other member to forget the key and waits for the answers (at most
//! [`ANSWER_TIMEOUT`] each). A member that does not answer in time still rechecks the store
//! within `[auth] stored_key_recheck_secs`. A notice can only make a member forget a key, never
//! accept one, so a peer sending notices at will costs store reads at most.

use futures::future::{join_all, BoxFuture};
use ractor::{pg, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use sentinel_api::key_cache::{KeyCache, RevocationNotice};
use std::sync::Arc;
use std::time::Duration;

/// The process group of every node's key listener.
pub const KEYS_GROUP: &str = "sentinel.keys";

/// How long a revocation waits for each member to say it forgot the key.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages of the key listener (serializable: they cross nodes).
#[derive(RactorClusterMessage)]
pub enum KeyNotice {
    /// Forget the stored key with this id (it was revoked); answered once forgotten.
    #[rpc]
    Revoked(String, RpcReplyPort<()>),
}

/// Forgets the keys other members revoke.
pub struct KeyListener;

impl Actor for KeyListener {
    type Msg = KeyNotice;
    type State = Arc<KeyCache>;
    type Arguments = Arc<KeyCache>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        verified: Arc<KeyCache>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(verified)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: KeyNotice,
        verified: &mut Arc<KeyCache>,
    ) -> Result<(), ActorProcessingErr> {
        let KeyNotice::Revoked(id, reply) = message;
        verified.forget(&id);
        // The asking member may have given up waiting; nothing to do then.
        let _ = reply.send(());
        Ok(())
    }
}

/// Tells the other members' key listeners of a revocation.
pub struct ClusterKeyNotice;

impl RevocationNotice for ClusterKeyNotice {
    fn announce(&self, id: &str) -> BoxFuture<'static, ()> {
        let calls = pg::get_members(&KEYS_GROUP.to_owned())
            .into_iter()
            .filter(|cell| !cell.get_id().is_local())
            .map(|cell| {
                let id = id.to_owned();
                async move {
                    let listener: ActorRef<KeyNotice> = cell.into();
                    let why = match listener
                        .call(|reply| KeyNotice::Revoked(id, reply), Some(ANSWER_TIMEOUT))
                        .await
                    {
                        Ok(ractor::rpc::CallResult::Success(())) => return,
                        Ok(ractor::rpc::CallResult::Timeout) => "no answer in time",
                        Ok(ractor::rpc::CallResult::SenderError) => "it dropped the notice",
                        Err(_) => "unreachable",
                    };
                    tracing::warn!(
                        member = %listener.get_id(),
                        why,
                        "a member did not confirm a key revocation; it rechecks the store within [auth] stored_key_recheck_secs"
                    );
                }
            })
            .collect::<Vec<_>>();
        Box::pin(async move {
            join_all(calls).await;
        })
    }
}

/// Starts this node's key listener, which forgets in `verified` the keys other members revoke.
pub async fn start(verified: Arc<KeyCache>) -> anyhow::Result<ActorRef<KeyNotice>> {
    let (listener, _) = Actor::spawn(None, KeyListener, verified)
        .await
        .map_err(|e| anyhow::anyhow!("starting the key listener: {e}"))?;
    pg::join(KEYS_GROUP.to_owned(), vec![listener.get_cell()]);
    Ok(listener)
}
