//! One node's store served to the other members of the cluster over ractor_cluster.
//!
//! The embedded redb file can be opened by one process only, while a partition's new owner
//! must see what the previous owner decided. So one node (the store host) serves its store
//! through a [`StoreHost`] actor in the process group [`group_for`]`(host)`, and every other
//! node uses a [`RemoteStore`] that calls that actor. Production clusters use a shared
//! database (ScyllaDB) instead; this is the nearest honest thing on one machine.
//!
//! A peer is trusted with what scoring needs and nothing more ([`peer_refusal`]): it may
//! read, store decisions, snapshots and the alerts they owe, and remember idempotent answers;
//! it may not write API keys, audit entries, rules, lists, labels or models, and may not
//! delete anything. Those changes are made through the store host's own API. A peer finds the
//! host by the host's configured node name, never by whichever member joined the group first.

use crate::config::NodeConfig;
use async_trait::async_trait;
use ractor::{pg, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::{NodeServerMessage, RactorClusterMessage};
use sentinel_event::Decision;
use sentinel_store::{
    DayCursor, RecordGuard, RecordKind, RecordWrite, RestorePoint, Store, StoreError, UserSnapshot,
    WriteOp, WriteResult,
};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The process group a store host's actor joins.
pub fn group_for(host: &str) -> String {
    format!("sentinel.store.{host}")
}

/// Messages of the store host actor (serializable: they cross nodes).
#[derive(RactorClusterMessage)]
pub enum StoreMessage {
    /// A JSON-encoded [`StoreRequest`]; the reply is a JSON-encoded [`StoreReply`].
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// One [`Store`] method call.
#[derive(Serialize, Deserialize)]
enum StoreRequest {
    WriteBatch(Vec<WriteOp>),
    Decision(String),
    DecisionsForUser {
        user_id: String,
        after_seq: u64,
        limit: usize,
    },
    DecisionsByDay {
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    },
    Snapshot(String),
    RestorePoint {
        user_id: String,
        limit: usize,
    },
    DecisionCount,
    PutRecords(Vec<RecordWrite>),
    PutRecordsIf(RecordGuard, Vec<RecordWrite>),
    Record {
        kind: RecordKind,
        key: String,
    },
    ScanRecords {
        kind: RecordKind,
        prefix: String,
        after: Option<String>,
        limit: usize,
    },
}

/// The outcome of one [`StoreRequest`].
#[derive(Serialize, Deserialize)]
enum StoreReply {
    Written(Vec<WriteResult>),
    Decision(Option<Decision>),
    Decisions(Vec<Decision>),
    Snapshot(Option<UserSnapshot>),
    RestorePoint(RestorePoint),
    Count(u64),
    Done,
    Applied(bool),
    Record(Option<Vec<u8>>),
    Records(Vec<(String, Vec<u8>)>),
    Failed(String),
    Refused(String),
}

/// The store this node uses: the one served by `[cluster] store_host` when that is another
/// node (found through `node_server`'s sessions); otherwise the store `open_local` opens
/// (embedded or ScyllaDB), which the caller serves to the cluster with [`serve_store`] once
/// its catalogue is seeded.
pub async fn open(
    config: &NodeConfig,
    node_server: &ActorRef<NodeServerMessage>,
    open_local: impl std::future::Future<Output = anyhow::Result<Arc<dyn Store>>>,
) -> anyhow::Result<Arc<dyn Store>> {
    if !config.cluster.owns_store() {
        if let Some(host) = &config.cluster.store_host {
            let wait = Duration::from_secs(config.cluster.store_wait_secs);
            let remote = RemoteStore::connect(host, Some(node_server.clone()), wait).await?;
            return Ok(Arc::new(remote));
        }
    }
    open_local.await
}

/// Serves a local store to the cluster.
pub struct StoreHost;

impl Actor for StoreHost {
    type Msg = StoreMessage;
    type State = Arc<dyn Store>;
    type Arguments = Arc<dyn Store>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        store: Arc<dyn Store>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(store)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: StoreMessage,
        store: &mut Arc<dyn Store>,
    ) -> Result<(), ActorProcessingErr> {
        let StoreMessage::Call(request, reply) = message;
        // Each call runs on its own task so one slow batch does not queue every read behind it.
        let store = Arc::clone(store);
        tokio::spawn(async move {
            let answer = match serde_json::from_slice::<StoreRequest>(&request) {
                Ok(request) => match peer_refusal(&request) {
                    Some(reason) => {
                        metrics::counter!(crate::telemetry::STORE_PEER_REFUSALS).increment(1);
                        tracing::warn!(%reason, "refused a cluster peer's store request");
                        StoreReply::Refused(reason)
                    }
                    None => serve(&*store, request)
                        .await
                        .unwrap_or_else(|e| StoreReply::Failed(e.to_string())),
                },
                Err(e) => StoreReply::Failed(format!("undecodable store request: {e}")),
            };
            match serde_json::to_vec(&answer) {
                Ok(bytes) => {
                    let _ = reply.send(bytes);
                }
                Err(e) => tracing::error!(error = %e, "encoding a store reply failed"),
            }
        });
        Ok(())
    }
}

/// Why a peer may not make `request`, if it may not: peers get what scoring needs (reads,
/// decisions with the alerts they owe, snapshots, idempotent answers), never a delete, an API
/// key, an audit entry or a catalogue change.
fn peer_refusal(request: &StoreRequest) -> Option<String> {
    match request {
        StoreRequest::WriteBatch(ops) => ops.iter().find_map(|op| match op {
            WriteOp::DecisionWithRecords(_, records) => records.iter().find_map(|record| {
                (record.kind != RecordKind::AlertOutbox || record.value.is_none()).then(|| {
                    format!(
                        "a decision may carry only new alert outbox entries, not {} `{}`",
                        record.kind.as_str(),
                        record.key
                    )
                })
            }),
            WriteOp::Decision(_) | WriteOp::Snapshot(_) => None,
        }),
        StoreRequest::PutRecords(writes) => writes.iter().find_map(|write| match write {
            RecordWrite { value: None, .. } => Some(format!(
                "peers may not delete ({} `{}`)",
                write.kind.as_str(),
                write.key
            )),
            RecordWrite {
                kind: RecordKind::Idempotency,
                ..
            } => None,
            _ => Some(format!(
                "peers may not write {} records",
                write.kind.as_str()
            )),
        }),
        StoreRequest::PutRecordsIf(guard, _) => Some(format!(
            "peers may not publish catalogue changes ({})",
            guard.kind.as_str()
        )),
        StoreRequest::Decision(_)
        | StoreRequest::DecisionsForUser { .. }
        | StoreRequest::DecisionsByDay { .. }
        | StoreRequest::Snapshot(_)
        | StoreRequest::RestorePoint { .. }
        | StoreRequest::DecisionCount
        | StoreRequest::Record { .. }
        | StoreRequest::ScanRecords { .. } => None,
    }
}

/// Starts the store host actor for `node_name` and joins it to its process group, so the
/// cluster's other members can use `store`.
pub async fn serve_store(node_name: &str, store: Arc<dyn Store>) -> anyhow::Result<()> {
    let (actor, _) = Actor::spawn(None, StoreHost, store)
        .await
        .map_err(|e| anyhow::anyhow!("starting the store host actor: {e}"))?;
    pg::join(group_for(node_name), vec![actor.get_cell()]);
    Ok(())
}

async fn serve(store: &dyn Store, request: StoreRequest) -> Result<StoreReply, StoreError> {
    Ok(match request {
        StoreRequest::WriteBatch(ops) => StoreReply::Written(store.write_batch(ops).await?),
        StoreRequest::Decision(id) => StoreReply::Decision(store.decision(&id).await?),
        StoreRequest::DecisionsForUser {
            user_id,
            after_seq,
            limit,
        } => StoreReply::Decisions(store.decisions_for_user(&user_id, after_seq, limit).await?),
        StoreRequest::DecisionsByDay { day, after, limit } => {
            StoreReply::Decisions(store.decisions_by_day(day, after, limit).await?)
        }
        StoreRequest::Snapshot(user_id) => StoreReply::Snapshot(store.snapshot(&user_id).await?),
        StoreRequest::RestorePoint { user_id, limit } => {
            StoreReply::RestorePoint(store.restore_point(&user_id, limit).await?)
        }
        StoreRequest::DecisionCount => StoreReply::Count(store.decision_count().await?),
        StoreRequest::PutRecords(writes) => {
            store.put_records(writes).await?;
            StoreReply::Done
        }
        StoreRequest::PutRecordsIf(guard, writes) => {
            StoreReply::Applied(store.put_records_if(guard, writes).await?)
        }
        StoreRequest::Record { kind, key } => StoreReply::Record(store.record(kind, &key).await?),
        StoreRequest::ScanRecords {
            kind,
            prefix,
            after,
            limit,
        } => StoreReply::Records(
            store
                .scan_records(kind, &prefix, after.as_deref(), limit)
                .await?,
        ),
    })
}

/// A [`Store`] whose every call goes to the store host node's actor.
pub struct RemoteStore {
    group: String,
    /// The configured store host's node name: its actor is the only member used.
    host: String,
    /// This node's cluster server, asked which session is the host's; `None` in the
    /// single-process tests, where the host actor is local.
    node_server: Option<ActorRef<NodeServerMessage>>,
    /// The cluster node id of the host's session, once known (`u64::MAX`: not yet).
    host_node: AtomicU64,
    timeout: Duration,
}

const UNKNOWN_NODE: u64 = u64::MAX;

impl RemoteStore {
    /// Waits (up to `wait`) until the store host `host` is reachable through the cluster.
    pub async fn connect(
        host: &str,
        node_server: Option<ActorRef<NodeServerMessage>>,
        wait: Duration,
    ) -> anyhow::Result<RemoteStore> {
        let store = RemoteStore {
            group: group_for(host),
            host: host.to_owned(),
            node_server,
            host_node: AtomicU64::new(UNKNOWN_NODE),
            timeout: Duration::from_secs(30),
        };
        let deadline = Instant::now() + wait;
        while store.host_actor().await.is_none() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the store host node `{host}` did not join the cluster within {wait:?}; \
                 check --cluster-seeds and the cookie"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::info!(host, "using the store served by the host node");
        Ok(store)
    }

    /// The store actor of the node named `host`: a member of the group on another node is
    /// used only when that node's session carries the configured name.
    async fn host_actor(&self) -> Option<ActorRef<StoreMessage>> {
        let members = pg::get_members(&self.group);
        let Some(server) = &self.node_server else {
            return members
                .into_iter()
                .find(|m| m.get_id().is_local())
                .map(ActorRef::from);
        };
        let on_node = |node: u64| {
            members
                .iter()
                .find(|m| !m.get_id().is_local() && m.get_id().node() == node)
                .cloned()
                .map(ActorRef::from)
        };
        let known = self.host_node.load(Ordering::Relaxed);
        if known != UNKNOWN_NODE {
            if let Some(actor) = on_node(known) {
                return Some(actor);
            }
        }
        let ractor::rpc::CallResult::Success(sessions) = server
            .call(NodeServerMessage::GetSessions, Some(Duration::from_secs(5)))
            .await
            .ok()?
        else {
            return None;
        };
        let node = sessions.values().find_map(|session| {
            let name = session.peer_name.as_ref()?;
            // ractor_cluster names a node `node_name@hostname`.
            let node_name = name
                .name
                .split_once('@')
                .map_or(name.name.as_str(), |(n, _)| n);
            (node_name == self.host).then_some(session.node_id)
        })?;
        self.host_node.store(node, Ordering::Relaxed);
        on_node(node)
    }

    async fn call(&self, request: StoreRequest) -> Result<StoreReply, StoreError> {
        let host = self.host_actor().await.ok_or_else(|| {
            StoreError::Backend(format!("store host `{}` unreachable", self.host))
        })?;
        let bytes = serde_json::to_vec(&request).map_err(|e| StoreError::Backend(e.to_string()))?;
        let answer = host
            .call(|reply| StoreMessage::Call(bytes, reply), Some(self.timeout))
            .await
            .map_err(|e| StoreError::Backend(format!("store host: {e}")))?;
        let bytes = match answer {
            ractor::rpc::CallResult::Success(bytes) => bytes,
            ractor::rpc::CallResult::Timeout => {
                return Err(StoreError::Backend("store host timed out".into()))
            }
            ractor::rpc::CallResult::SenderError => {
                return Err(StoreError::Backend("store host dropped the call".into()))
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(StoreReply::Failed(reason)) => Err(StoreError::Backend(reason)),
            Ok(StoreReply::Refused(reason)) => Err(StoreError::Refused(reason)),
            Ok(reply) => Ok(reply),
            Err(e) => Err(StoreError::Backend(format!("undecodable store reply: {e}"))),
        }
    }
}

fn unexpected(reply: StoreReply) -> StoreError {
    let kind = match reply {
        StoreReply::Written(_) => "written",
        StoreReply::Decision(_) => "decision",
        StoreReply::Decisions(_) => "decisions",
        StoreReply::Snapshot(_) => "snapshot",
        StoreReply::RestorePoint(_) => "restore point",
        StoreReply::Count(_) => "count",
        StoreReply::Done => "done",
        StoreReply::Applied(_) => "applied",
        StoreReply::Record(_) => "record",
        StoreReply::Records(_) => "records",
        StoreReply::Failed(_) => "failed",
        StoreReply::Refused(_) => "refused",
    };
    StoreError::Backend(format!(
        "store host answered with the wrong kind of reply: {kind}"
    ))
}

#[async_trait]
impl Store for RemoteStore {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        match self.call(StoreRequest::WriteBatch(ops)).await? {
            StoreReply::Written(results) => Ok(results),
            other => Err(unexpected(other)),
        }
    }

    async fn decision(&self, transaction_id: &str) -> Result<Option<Decision>, StoreError> {
        match self
            .call(StoreRequest::Decision(transaction_id.to_owned()))
            .await?
        {
            StoreReply::Decision(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    async fn decisions_for_user(
        &self,
        user_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        let request = StoreRequest::DecisionsForUser {
            user_id: user_id.to_owned(),
            after_seq,
            limit,
        };
        match self.call(request).await? {
            StoreReply::Decisions(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        match self
            .call(StoreRequest::DecisionsByDay { day, after, limit })
            .await?
        {
            StoreReply::Decisions(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    async fn snapshot(&self, user_id: &str) -> Result<Option<UserSnapshot>, StoreError> {
        match self
            .call(StoreRequest::Snapshot(user_id.to_owned()))
            .await?
        {
            StoreReply::Snapshot(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    async fn restore_point(&self, user_id: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        let request = StoreRequest::RestorePoint {
            user_id: user_id.to_owned(),
            limit,
        };
        match self.call(request).await? {
            StoreReply::RestorePoint(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    async fn decision_count(&self) -> Result<u64, StoreError> {
        match self.call(StoreRequest::DecisionCount).await? {
            StoreReply::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    async fn put_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        match self.call(StoreRequest::PutRecords(writes)).await? {
            StoreReply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn put_records_if(
        &self,
        guard: RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        // The host's store decides; a timed-out call may still have applied, and the caller's
        // next compare-and-set then sees the record changed.
        match self.call(StoreRequest::PutRecordsIf(guard, writes)).await? {
            StoreReply::Applied(applied) => Ok(applied),
            other => Err(unexpected(other)),
        }
    }

    async fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let request = StoreRequest::Record {
            kind,
            key: key.to_owned(),
        };
        match self.call(request).await? {
            StoreReply::Record(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    async fn scan_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let request = StoreRequest::ScanRecords {
            kind,
            prefix: prefix.to_owned(),
            after: after.map(str::to_owned),
            limit,
        };
        match self.call(request).await? {
            StoreReply::Records(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn served(host: &str) -> (tempfile::TempDir, Arc<dyn Store>, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Store> =
            Arc::new(sentinel_store::EmbeddedStore::open(&dir.path().join("c.redb")).unwrap());
        serve_store(host, Arc::clone(&local)).await.unwrap();
        let remote = RemoteStore::connect(host, None, Duration::from_secs(5))
            .await
            .unwrap();
        (dir, local, Arc::new(remote))
    }

    /// What scoring needs behaves through the host actor and the wire format (JSON requests
    /// and replies) like the backend it serves. The actors share this process here; the
    /// cluster tests cover the same calls between processes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_served_store_scores_like_its_backend() {
        use sentinel_store::conformance;
        let (_a, _, remote) = served("conformance-a").await;
        conformance::decisions_are_immutable_and_indexed(remote).await;
        let (_b, _, remote) = served("conformance-b").await;
        conformance::writer_acknowledges_after_commit_and_reports_duplicates(remote).await;
        let (_c, _, remote) = served("conformance-c").await;
        conformance::concurrent_writers_store_each_decision_once(remote).await;
    }

    /// A peer that forges requests (an admin API key, an audit entry, a rule, a delete, a
    /// decision smuggling a record) is refused, and nothing reaches the host's store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_cannot_write_keys_audit_or_rules_nor_delete() {
        let (_dir, local, remote) = served("guarded").await;
        let put = |kind, key: &str| RecordWrite {
            kind,
            key: key.to_owned(),
            value: Some(b"{\"role\":\"admin\"}".to_vec()),
        };
        local
            .put_records(vec![put(RecordKind::Audit, "00000000000000000001-000001")])
            .await
            .unwrap();
        for write in [
            put(RecordKind::ApiKey, "mallory"),
            put(RecordKind::Audit, "00000000000000000002-000001"),
            put(RecordKind::RuleHead, "disable_everything"),
            put(RecordKind::Label, "txn-1"),
            RecordWrite {
                kind: RecordKind::Audit,
                key: "00000000000000000001-000001".into(),
                value: None,
            },
        ] {
            let what = format!("{} {}", write.kind.as_str(), write.key);
            let err = remote.put_records(vec![write]).await.expect_err(&what);
            assert!(matches!(err, StoreError::Refused(_)), "{what}: {err}");
        }
        let guard = RecordGuard {
            kind: RecordKind::PolicyVersion,
            key: "head".into(),
            expected: None,
        };
        let err = remote
            .put_records_if(guard, vec![put(RecordKind::PolicyVersion, "head")])
            .await
            .expect_err("a catalogue publish");
        assert!(matches!(err, StoreError::Refused(_)), "{err}");
        let smuggled = WriteOp::DecisionWithRecords(
            Arc::new(sentinel_store::conformance::decision("t-1", "u-1", 1, 0)),
            vec![put(RecordKind::ApiKey, "mallory")],
        );
        let err = remote
            .write_batch(vec![smuggled])
            .await
            .expect_err("a smuggled key");
        assert!(matches!(err, StoreError::Refused(_)), "{err}");

        assert_eq!(
            local.record(RecordKind::ApiKey, "mallory").await.unwrap(),
            None
        );
        assert_eq!(local.decision("t-1").await.unwrap(), None);
        let audit = local
            .scan_records(RecordKind::Audit, "", None, 10)
            .await
            .unwrap();
        assert_eq!(audit.len(), 1, "the audit entry is still there, and alone");
        // What scoring needs still works: an idempotent answer and reads.
        remote
            .put_records(vec![put(RecordKind::Idempotency, "caller-key")])
            .await
            .unwrap();
        assert!(remote
            .record(RecordKind::Idempotency, "caller-key")
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn an_absent_host_is_a_clear_start_up_error() {
        let err = RemoteStore::connect("nobody", None, Duration::from_millis(300))
            .await
            .err()
            .expect("no such host");
        assert!(err.to_string().contains("`nobody` did not join"), "{err}");
    }
}
