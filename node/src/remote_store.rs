//! One node's store served to the other members of the cluster over ractor_cluster.
//!
//! The embedded redb file can be opened by one process only, while a partition's new owner
//! must see what the previous owner decided. So one node (the store host) serves its store
//! through a [`StoreHost`] actor in the process group [`group_for`]`(host)`, and every other
//! node uses a [`RemoteStore`] that calls that actor. Production clusters use a shared
//! database (ScyllaDB) instead; this is the nearest honest thing on one machine.

use crate::config::NodeConfig;
use async_trait::async_trait;
use ractor::{pg, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use sentinel_event::Decision;
use sentinel_store::{
    DayCursor, RecordGuard, RecordKind, RecordWrite, RestorePoint, Store, StoreError, UserSnapshot,
    WriteOp, WriteResult,
};
use serde::{Deserialize, Serialize};
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
}

/// The store this node uses: the one served by `[cluster] store_host` when that is another
/// node; otherwise the store `open_local` opens (embedded or ScyllaDB), which this node also
/// serves to the cluster under its node name.
pub async fn open(
    config: &NodeConfig,
    open_local: impl std::future::Future<Output = anyhow::Result<Arc<dyn Store>>>,
) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(host) = &config.cluster.store_host {
        if *host != config.cluster.node_name {
            return Ok(Arc::new(
                RemoteStore::connect(host, Duration::from_secs(config.cluster.store_wait_secs))
                    .await?,
            ));
        }
    }
    let store = open_local.await?;
    serve_store(&config.cluster.node_name, Arc::clone(&store)).await?;
    Ok(store)
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
                Ok(request) => serve(&*store, request)
                    .await
                    .unwrap_or_else(|e| StoreReply::Failed(e.to_string())),
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

/// Starts the store host actor for `node_name` and joins it to its process group.
async fn serve_store(node_name: &str, store: Arc<dyn Store>) -> anyhow::Result<()> {
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
    timeout: Duration,
}

impl RemoteStore {
    /// Waits (up to `wait`) until the store host `host` is reachable through the cluster.
    pub async fn connect(host: &str, wait: Duration) -> anyhow::Result<RemoteStore> {
        let store = RemoteStore {
            group: group_for(host),
            timeout: Duration::from_secs(30),
        };
        let deadline = Instant::now() + wait;
        while store.host().is_none() {
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

    fn host(&self) -> Option<ActorRef<StoreMessage>> {
        pg::get_members(&self.group)
            .into_iter()
            .next()
            .map(ActorRef::from)
    }

    async fn call(&self, request: StoreRequest) -> Result<StoreReply, StoreError> {
        let host = self.host().ok_or_else(|| {
            StoreError::Backend(format!("store host unreachable (group {})", self.group))
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

    /// Every `Store` call through the host actor and the wire format (JSON requests and
    /// replies) behaves like the backend it serves. The actors share this process here; the
    /// cluster tests cover the same calls between processes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_served_store_passes_the_conformance_suite() {
        let dirs = std::sync::Mutex::new(Vec::new());
        let hosts = std::sync::atomic::AtomicUsize::new(0);
        sentinel_store::conformance::run_all(|| {
            let dir = tempfile::tempdir().unwrap();
            let local: Arc<dyn Store> =
                Arc::new(sentinel_store::EmbeddedStore::open(&dir.path().join("c.redb")).unwrap());
            dirs.lock().unwrap().push(dir);
            let host = format!(
                "conformance-{}",
                hosts.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            async move {
                serve_store(&host, local).await.unwrap();
                let remote = RemoteStore::connect(&host, Duration::from_secs(5))
                    .await
                    .unwrap();
                Arc::new(remote) as Arc<dyn Store>
            }
        })
        .await;
    }

    #[tokio::test]
    async fn an_absent_host_is_a_clear_start_up_error() {
        let err = RemoteStore::connect("nobody", Duration::from_millis(300))
            .await
            .err()
            .expect("no such host");
        assert!(err.to_string().contains("`nobody` did not join"), "{err}");
    }
}
