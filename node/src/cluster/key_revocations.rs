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

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_api::{sha256_hex, ApiKeys, AuthConfig, Role};
    use sentinel_store::{LsmStore, RecordKind, RecordWrite, Store};

    /// Stores a key as `POST /v1/keys` does (revoked when `revoked`) and returns its secret.
    async fn stored_key(store: &dyn Store, id: &str, revoked: bool) -> String {
        let secret = format!("sk_{id}_{}", "7".repeat(64));
        let mut record = serde_json::json!({
            "id": id,
            "name": "checkout",
            "role": "ingest",
            "created_at": "2026-12-01T00:00:00Z",
            "created_by": "key:admin",
            "secret_sha256": sha256_hex(&secret),
        });
        if revoked {
            record["revoked_at"] = "2026-12-02T00:00:00Z".into();
        }
        let write = RecordWrite {
            kind: RecordKind::ApiKey,
            key: id.to_owned(),
            value: Some(serde_json::to_vec(&record).unwrap()),
        };
        store.put_records(vec![write]).await.unwrap();
        secret
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notices_a_peer_sends_at_will_never_let_a_key_in_nor_lock_one_out() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LsmStore::open(dir.path()).unwrap());
        let valid = stored_key(&*store, "00000000000000a1", false).await;
        let revoked = stored_key(&*store, "00000000000000b2", true).await;
        // Verified keys trusted for an hour: only a notice makes this node read them again.
        let config = AuthConfig {
            stored_key_recheck_secs: 3_600,
            ..AuthConfig::default()
        };
        let keys = ApiKeys::new(&config, Arc::clone(&store)).unwrap();
        assert!(keys.verify(&valid).await.is_some());
        assert!(keys.verify(&revoked).await.is_none());
        let listener = start(keys.verified()).await.unwrap();

        // A member sending what it likes, as often as it likes: the valid key's id, the revoked
        // one's, ids no key has, and a megabyte of text.
        let huge = "x".repeat(1 << 20);
        // The last names the valid key.
        let ids = [
            &huge,
            "",
            "ffffffffffffffff",
            "00000000000000b2",
            "00000000000000a1",
        ];
        for round in 0..200 {
            let id = ids[round % ids.len()].to_owned();
            let answer = listener
                .call(|reply| KeyNotice::Revoked(id, reply), Some(ANSWER_TIMEOUT))
                .await
                .expect("the listener is alive");
            assert!(
                matches!(answer, ractor::rpc::CallResult::Success(())),
                "round {round}: the listener answers every notice"
            );
        }

        // The valid key still works, with its own role; the revoked one stays refused; a
        // forged secret under the valid key's id is refused after the cache was emptied.
        let principal = keys
            .verify(&valid)
            .await
            .expect("a notice never locks a key out");
        assert_eq!(
            (principal.name.as_str(), principal.role),
            ("key:00000000000000a1", Role::Ingest)
        );
        assert!(keys.verify(&revoked).await.is_none());
        let forged = format!("sk_00000000000000a1_{}", "8".repeat(64));
        assert!(keys.verify(&forged).await.is_none());
        assert!(keys.verify("sk_ffffffffffffffff_anything").await.is_none());
        listener.stop(None);
    }
}
