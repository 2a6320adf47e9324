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
    CommitObserver, DayCursor, DayEntry, RecordGuard, RecordKind, RecordWrite, RestorePoint, Store,
    StoreError, UserSnapshot, WriteOp, WriteResult,
};
use wire::{Bytes, Page, RecordValue, StoreReply, StoreRequest, FRAME_BUDGET, INLINE_RECORD};

mod wire;
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

/// The store a host serves, and who it tells of the decisions members store through it.
#[derive(Clone)]
pub struct Hosted {
    pub store: Arc<dyn Store>,
    /// Told of each member's new decisions once stored (the host's live entity index, which
    /// would otherwise read them back from the store and decode them).
    pub observer: Option<Arc<dyn CommitObserver>>,
}

impl Actor for StoreHost {
    type Msg = StoreMessage;
    type State = Hosted;
    type Arguments = Hosted;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        hosted: Hosted,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(hosted)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: StoreMessage,
        hosted: &mut Hosted,
    ) -> Result<(), ActorProcessingErr> {
        let StoreMessage::Call(request, reply) = message;
        // Each call runs on its own task so one slow batch does not queue every read behind it.
        let hosted = hosted.clone();
        tokio::spawn(async move { send(reply, answer(&hosted, &request).await) });
        Ok(())
    }
}

/// The host's answer to one encoded request: refused, served, or failed.
async fn answer(hosted: &Hosted, request: &[u8]) -> StoreReply {
    match serde_json::from_slice::<StoreRequest>(request) {
        Ok(request) => match peer_refusal(&request) {
            Some(reason) => {
                metrics::counter!(crate::telemetry::STORE_PEER_REFUSALS).increment(1);
                tracing::warn!(%reason, "refused a cluster peer's store request");
                StoreReply::Refused(reason)
            }
            None => serve(hosted, request)
                .await
                .unwrap_or_else(|e| StoreReply::Failed(e.to_string())),
        },
        Err(e) => StoreReply::Failed(format!("{UNDECODABLE_REQUEST}: {e}")),
    }
}

/// Sends `answer`, encoded, to the caller.
fn send(reply: RpcReplyPort<Vec<u8>>, answer: StoreReply) {
    match serde_json::to_vec(&answer) {
        Ok(bytes) => {
            let _ = reply.send(bytes);
        }
        Err(e) => tracing::error!(error = %e, "encoding a store reply failed"),
    }
}

/// Why a peer may not make `request`, if it may not: peers get what scoring needs (reads,
/// decisions with the alerts they owe, snapshots, idempotent answers, alone or in a batch of
/// decisions), never a delete, an API key, an audit entry or a catalogue change.
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
            WriteOp::Records(writes) => writes.iter().find_map(peer_record_refusal),
            WriteOp::Decision(_) | WriteOp::Snapshot(_) => None,
        }),
        StoreRequest::PutRecords(writes) => writes.iter().find_map(peer_record_refusal),
        StoreRequest::PutRecordsIf(guard, _) => Some(format!(
            "peers may not publish catalogue changes ({})",
            guard.kind.as_str()
        )),
        StoreRequest::Decision(_)
        | StoreRequest::DecisionsById(_)
        | StoreRequest::DecisionsForUser { .. }
        | StoreRequest::DecisionsByDay { .. }
        | StoreRequest::DecisionKeysByDay { .. }
        | StoreRequest::DayEntries { .. }
        | StoreRequest::Snapshot(_)
        | StoreRequest::RestorePoint { .. }
        | StoreRequest::DecisionCount
        | StoreRequest::Record { .. }
        | StoreRequest::RecordPart { .. }
        | StoreRequest::ScanRecords { .. } => None,
    }
}

/// Why a peer may not make `write`: peers put idempotent answers, nothing else.
fn peer_record_refusal(write: &RecordWrite) -> Option<String> {
    match write {
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
    }
}

/// Starts the store host actor for `node_name` and joins it to its process group, so the
/// cluster's other members can use `store`.
pub async fn serve_store(node_name: &str, hosted: Hosted) -> anyhow::Result<()> {
    let (actor, _) = Actor::spawn(None, StoreHost, hosted)
        .await
        .map_err(|e| anyhow::anyhow!("starting the store host actor: {e}"))?;
    pg::join(group_for(node_name), vec![actor.get_cell()]);
    Ok(())
}

/// How a host's failure reply to a request it cannot read begins: a host older than the
/// member asking (a cluster upgraded one node at a time) meets requests it does not know.
const UNDECODABLE_REQUEST: &str = "undecodable store request";

/// Whether `error` is the store host's answer to a request it cannot read, so that the member
/// asks again in requests every host knows.
fn unknown_to_host(error: &StoreError) -> bool {
    matches!(error, StoreError::Backend(reason) if reason.starts_with(UNDECODABLE_REQUEST))
}

/// The most transaction ids one [`StoreRequest::DecisionsById`] asks for.
const IDS_PER_REQUEST: usize = 1_024;

/// The most items one list reply holds, whatever limit a peer asks for: the host reads a
/// list into memory before cutting it to a frame, so a member asking for a whole day of
/// decisions in one request would make it hold the day. The asking side pages on (`more`).
const PEER_LIST_ITEMS: usize = 4_096;

/// A peer's list limit, as served.
fn served_limit(asked: usize) -> usize {
    asked.min(PEER_LIST_ITEMS)
}

/// The page of `items` (read with [`served_limit`]`(asked)`) that fits `budget`, with `more`
/// set when the item bound, not the list's end, stopped the read.
fn page_of<T: serde::Serialize>(items: Vec<T>, asked: usize, budget: usize) -> Page<T> {
    let bounded = asked > PEER_LIST_ITEMS && items.len() == PEER_LIST_ITEMS;
    let mut page = Page::cut(items, budget);
    page.more |= bounded;
    page
}

/// Writes a member's batch and tells the host's observer of the decisions it stored anew.
async fn write_and_tell(
    hosted: &Hosted,
    ops: Vec<WriteOp>,
) -> Result<Vec<WriteResult>, StoreError> {
    let Some(observer) = &hosted.observer else {
        return hosted.store.write_batch(ops).await;
    };
    let decisions: Vec<Option<Arc<Decision>>> = ops
        .iter()
        .map(|op| match op {
            WriteOp::Decision(d) | WriteOp::DecisionWithRecords(d, _) => Some(Arc::clone(d)),
            WriteOp::Snapshot(_) | WriteOp::Records(_) => None,
        })
        .collect();
    let written = hosted.store.write_batch(ops).await?;
    let new: Vec<Arc<Decision>> = decisions
        .into_iter()
        .zip(&written)
        .filter_map(|(d, result)| d.filter(|_| matches!(result, WriteResult::Stored)))
        .collect();
    if !new.is_empty() {
        observer.committed(&new);
    }
    Ok(written)
}

/// Runs one request against the host's store; lists come back in pages that fit a frame and
/// hold at most [`PEER_LIST_ITEMS`].
async fn serve(hosted: &Hosted, request: StoreRequest) -> Result<StoreReply, StoreError> {
    let store = &*hosted.store;
    Ok(match request {
        StoreRequest::WriteBatch(ops) => StoreReply::Written(write_and_tell(hosted, ops).await?),
        StoreRequest::Decision(id) => StoreReply::Decision(store.decision(&id).await?),
        StoreRequest::DecisionsById(mut ids) => {
            // Read no more than a list's bound; the asking side asks again for the rest.
            ids.truncate(PEER_LIST_ITEMS);
            StoreReply::Found(Page::cut(store.decisions(ids).await?, FRAME_BUDGET))
        }
        StoreRequest::DecisionsForUser {
            user_id,
            after_seq,
            limit,
        } => {
            let decisions = store
                .decisions_for_user(&user_id, after_seq, served_limit(limit))
                .await?;
            StoreReply::Decisions(page_of(decisions, limit, FRAME_BUDGET))
        }
        StoreRequest::DecisionsByDay { day, after, limit } => {
            let decisions = store
                .decisions_by_day(day, after, served_limit(limit))
                .await?;
            StoreReply::Decisions(page_of(decisions, limit, FRAME_BUDGET))
        }
        StoreRequest::DecisionKeysByDay { day, after, limit } => {
            let positions = store
                .decision_keys_by_day(day, after, served_limit(limit))
                .await?;
            StoreReply::Positions(page_of(positions, limit, FRAME_BUDGET))
        }
        StoreRequest::DayEntries { day, after, limit } => {
            let entries = store.day_entries(day, after, served_limit(limit)).await?;
            StoreReply::Entries(page_of(entries, limit, FRAME_BUDGET))
        }
        StoreRequest::Snapshot(user_id) => StoreReply::Snapshot(store.snapshot(&user_id).await?),
        StoreRequest::RestorePoint { user_id, limit } => {
            let point = store.restore_point(&user_id, served_limit(limit)).await?;
            let snapshot_bytes = point.snapshot.as_ref().map_or(0, |s| s.state.len() * 4);
            StoreReply::RestorePoint {
                decisions: page_of(
                    point.decisions,
                    limit,
                    FRAME_BUDGET.saturating_sub(snapshot_bytes),
                ),
                snapshot: point.snapshot,
            }
        }
        StoreRequest::DecisionCount => StoreReply::Count(store.decision_count().await?),
        StoreRequest::PutRecords(writes) => {
            store.put_records(writes).await?;
            StoreReply::Done
        }
        StoreRequest::PutRecordsIf(guard, writes) => {
            StoreReply::Applied(store.put_records_if(guard, writes).await?)
        }
        StoreRequest::Record { kind, key } => {
            StoreReply::Record(RecordValue::of(store.record(kind, &key).await?))
        }
        StoreRequest::RecordPart {
            kind,
            key,
            offset,
            len,
        } => {
            let value = store.record(kind, &key).await?.unwrap_or_default();
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(value.len());
            let len = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(INLINE_RECORD);
            let end = start.saturating_add(len).min(value.len());
            StoreReply::RecordPart(Bytes(value[start..end].to_vec()))
        }
        StoreRequest::ScanRecords {
            kind,
            prefix,
            after,
            limit,
        } => {
            let records = store
                .scan_records(kind, &prefix, after.as_deref(), served_limit(limit))
                .await?
                .into_iter()
                .map(|(key, value)| (key, RecordValue::of(Some(value))))
                .collect();
            StoreReply::Records(page_of(records, limit, FRAME_BUDGET))
        }
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
        let bytes = serde_json::to_vec(&request).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.call_encoded(bytes).await
    }

    async fn call_encoded(&self, request: Vec<u8>) -> Result<StoreReply, StoreError> {
        let host = self.host_actor().await.ok_or_else(|| {
            StoreError::Backend(format!("store host `{}` unreachable", self.host))
        })?;
        let answer = host
            .call(
                |reply| StoreMessage::Call(request, reply),
                Some(self.timeout),
            )
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

    /// A user's decisions after `after_seq`, page by page, up to `limit` with `out`.
    async fn user_pages(
        &self,
        user_id: &str,
        after_seq: u64,
        limit: usize,
        out: Vec<Decision>,
    ) -> Result<Vec<Decision>, StoreError> {
        let request = |after_seq, limit| StoreRequest::DecisionsForUser {
            user_id: user_id.to_owned(),
            after_seq,
            limit,
        };
        let decisions = |reply| match reply {
            StoreReply::Decisions(page) => Ok(page),
            other => Err(unexpected(other)),
        };
        self.pages(after_seq, limit, out, request, decisions, |d| d.user_seq)
            .await
    }

    /// The items of a list request, page by page (the host cuts pages to fit a frame), until
    /// `out` holds `limit` or the list ends: `request` asks for up to n items after a cursor,
    /// `page_of` takes the page out of the reply, `next` is the cursor after an item.
    async fn pages<T, C>(
        &self,
        mut cursor: C,
        limit: usize,
        mut out: Vec<T>,
        request: impl Fn(C, usize) -> StoreRequest,
        page_of: impl Fn(StoreReply) -> Result<Page<T>, StoreError>,
        next: impl Fn(&T) -> C,
    ) -> Result<Vec<T>, StoreError> {
        while out.len() < limit {
            let reply = self.call(request(cursor, limit - out.len())).await?;
            let page = page_of(reply)?;
            out.extend(page.items);
            match out.last() {
                Some(last) if page.more => cursor = next(last),
                _ => break,
            }
        }
        Ok(out)
    }

    /// A record's value, read in parts when it is too large for one frame.
    async fn value(
        &self,
        kind: RecordKind,
        key: &str,
        value: RecordValue,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let total = match value {
            RecordValue::Absent => return Ok(None),
            RecordValue::Inline(bytes) => return Ok(Some(bytes.0)),
            RecordValue::TooLarge(total) => total,
        };
        let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        while (out.len() as u64) < total {
            let request = StoreRequest::RecordPart {
                kind,
                key: key.to_owned(),
                offset: out.len() as u64,
                len: INLINE_RECORD as u64,
            };
            match self.call(request).await? {
                StoreReply::RecordPart(part) if !part.0.is_empty() => out.extend(part.0),
                // The record shrank or vanished between parts: read it again from the start.
                StoreReply::RecordPart(_) => {
                    return Err(StoreError::Backend(format!(
                        "{} `{key}` changed while it was read",
                        kind.as_str()
                    )))
                }
                other => return Err(unexpected(other)),
            }
        }
        Ok(Some(out))
    }
}

fn unexpected(reply: StoreReply) -> StoreError {
    StoreError::Backend(format!(
        "store host answered with the wrong kind of reply: {}",
        reply.kind()
    ))
}

#[async_trait]
impl Store for RemoteStore {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        // Frames commit one after the other: a failure part-way leaves the earlier ones
        // stored, and the writer's retry finds those decisions already decided.
        let frames =
            wire::write_batch_frames(&ops).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut results = Vec::with_capacity(ops.len());
        for (frame, count) in frames {
            match self.call_encoded(frame).await? {
                StoreReply::Written(written) if written.len() == count => results.extend(written),
                other => return Err(unexpected(other)),
            }
        }
        Ok(results)
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

    async fn decisions(
        &self,
        transaction_ids: Vec<String>,
    ) -> Result<Vec<Option<Decision>>, StoreError> {
        let mut found = Vec::with_capacity(transaction_ids.len());
        let mut rest = transaction_ids.as_slice();
        while !rest.is_empty() {
            // Ids are at most 128 characters: a thousand of them fit a frame many times over.
            let asked = rest.len().min(IDS_PER_REQUEST);
            let reply = match self
                .call(StoreRequest::DecisionsById(rest[..asked].to_vec()))
                .await
            {
                Ok(reply) => reply,
                // A host older than this request: one id per request, as before it.
                Err(e) if unknown_to_host(&e) => {
                    for id in rest {
                        found.push(self.decision(id).await?);
                    }
                    return Ok(found);
                }
                Err(e) => return Err(e),
            };
            match reply {
                // A page holds at least one answer, so this moves on.
                StoreReply::Found(page) if (1..=asked).contains(&page.items.len()) => {
                    rest = &rest[page.items.len()..];
                    found.extend(page.items);
                }
                StoreReply::Found(page) => {
                    return Err(StoreError::Backend(format!(
                        "store host answered {} of {asked} transaction ids",
                        page.items.len()
                    )))
                }
                other => return Err(unexpected(other)),
            }
        }
        Ok(found)
    }

    async fn decisions_for_user(
        &self,
        user_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.user_pages(user_id, after_seq, limit, Vec::new()).await
    }

    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        let request = |after, limit| StoreRequest::DecisionsByDay { day, after, limit };
        let decisions = |reply| match reply {
            StoreReply::Decisions(page) => Ok(page),
            other => Err(unexpected(other)),
        };
        let next = |d: &Decision| {
            Some(DayCursor {
                decided_us: d.decided_at.timestamp_micros(),
                transaction_id: d.transaction_id.clone(),
            })
        };
        self.pages(after, limit, Vec::new(), request, decisions, next)
            .await
    }

    async fn decision_keys_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayCursor>, StoreError> {
        let request = |after, limit| StoreRequest::DecisionKeysByDay { day, after, limit };
        let positions = |reply| match reply {
            StoreReply::Positions(page) => Ok(page),
            other => Err(unexpected(other)),
        };
        self.pages(after, limit, Vec::new(), request, positions, |p| {
            Some(p.clone())
        })
        .await
    }

    async fn day_entries(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<DayEntry>, StoreError> {
        let request = |after, limit| StoreRequest::DayEntries { day, after, limit };
        let entries = |reply| match reply {
            StoreReply::Entries(page) => Ok(page),
            other => Err(unexpected(other)),
        };
        let next = |e: &DayEntry| Some(e.position.clone());
        match self
            .pages(after.clone(), limit, Vec::new(), request, entries, next)
            .await
        {
            // A host older than this request: the decisions carry the same entities.
            Err(e) if unknown_to_host(&e) => Ok(self
                .decisions_by_day(day, after, limit)
                .await?
                .iter()
                .map(DayEntry::of)
                .collect()),
            read => read,
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
        let (snapshot, page) = match self.call(request).await? {
            StoreReply::RestorePoint {
                snapshot,
                decisions,
            } => (snapshot, decisions),
            other => return Err(unexpected(other)),
        };
        let decisions = match page.items.last() {
            Some(last) if page.more => {
                let after = last.user_seq;
                self.user_pages(user_id, after, limit, page.items).await?
            }
            _ => page.items,
        };
        Ok(RestorePoint {
            snapshot,
            decisions,
        })
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
            StoreReply::Record(value) => self.value(kind, key, value).await,
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
        let mut out = Vec::new();
        let mut after = after.map(str::to_owned);
        while out.len() < limit {
            let request = StoreRequest::ScanRecords {
                kind,
                prefix: prefix.to_owned(),
                after: after.clone(),
                limit: limit - out.len(),
            };
            let page = match self.call(request).await? {
                StoreReply::Records(page) => page,
                other => return Err(unexpected(other)),
            };
            let more = page.more;
            let mut last_key = None;
            for (key, value) in page.items {
                if let Some(value) = self.value(kind, &key, value).await? {
                    out.push((key.clone(), value));
                }
                last_key = Some(key);
            }
            match last_key {
                Some(last) if more => after = Some(last),
                _ => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn served(host: &str) -> (tempfile::TempDir, Arc<dyn Store>, Arc<dyn Store>) {
        served_to(host, None).await
    }

    /// [`served`], the host telling `observer` of the decisions members store.
    async fn served_to(
        host: &str,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> (tempfile::TempDir, Arc<dyn Store>, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Store> =
            Arc::new(sentinel_store::EmbeddedStore::open(&dir.path().join("c.redb")).unwrap());
        let hosted = Hosted {
            store: Arc::clone(&local),
            observer,
        };
        serve_store(host, hosted).await.unwrap();
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
        let (_d, _, remote) = served("conformance-d").await;
        conformance::restore_point_finds_every_user_with_history(remote).await;
        let (_e, _, remote) = served("conformance-e").await;
        conformance::records_share_a_batch_with_decisions(remote).await;
        let (_f, _, remote) = served("conformance-f").await;
        conformance::lookups_read_together_answer_each_id(remote).await;
        let (_g, _, remote) = served("conformance-g").await;
        conformance::day_entries_carry_each_decisions_entities(remote).await;
    }

    /// The host's entity index learns a member's new decisions as they are stored, in order,
    /// not a duplicate, not a snapshot: it need not read them back from the store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_host_is_told_of_the_decisions_members_store() {
        #[derive(Default)]
        struct Told(std::sync::Mutex<Vec<String>>);
        impl CommitObserver for Told {
            fn committed(&self, decisions: &[Arc<Decision>]) {
                let mut told = self.0.lock().unwrap();
                told.extend(decisions.iter().map(|d| d.transaction_id.clone()));
            }
        }
        let told = Arc::new(Told::default());
        let (_dir, local, remote) =
            served_to("told", Some(Arc::clone(&told) as Arc<dyn CommitObserver>)).await;
        let d = |txn: &str| Arc::new(sentinel_store::conformance::decision(txn, "u-told", 1, 0));
        local
            .write_batch(vec![WriteOp::Decision(d("t-already"))])
            .await
            .unwrap();
        let snapshot = UserSnapshot {
            user_id: "u-told".into(),
            seq: 1,
            state: b"{}".to_vec(),
        };
        remote
            .write_batch(vec![
                WriteOp::Decision(d("t-new-1")),
                WriteOp::Snapshot(snapshot),
                WriteOp::Decision(d("t-already")),
                WriteOp::DecisionWithRecords(d("t-new-2"), Vec::new()),
            ])
            .await
            .unwrap();
        assert_eq!(*told.0.lock().unwrap(), ["t-new-1", "t-new-2"]);
    }

    /// Nodes sharing the host's store see each other's users: history written on the host is
    /// found by a member's restore and the other way round, though the host answers users
    /// without history from memory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_stored_by_one_node_is_restored_by_another() {
        let (_dir, local, remote) = served("shared-history").await;
        let d = |txn: &str, user: &str| {
            WriteOp::Decision(Arc::new(sentinel_store::conformance::decision(
                txn, user, 1, 0,
            )))
        };
        local
            .write_batch(vec![d("t-host", "on-host")])
            .await
            .unwrap();
        remote
            .write_batch(vec![d("t-member", "on-member")])
            .await
            .unwrap();
        for (store, user) in [(&remote, "on-host"), (&local, "on-member")] {
            let point = store.restore_point(user, 10).await.unwrap();
            assert_eq!(
                point.decisions.len(),
                1,
                "{user} restored without its history"
            );
        }
        assert!(remote
            .restore_point("nobody", 10)
            .await
            .unwrap()
            .decisions
            .is_empty());
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
        // Records beside decisions follow the same rules as records alone.
        for records in [
            vec![put(RecordKind::ApiKey, "mallory")],
            vec![RecordWrite {
                kind: RecordKind::Idempotency,
                key: "someone-elses".into(),
                value: None,
            }],
        ] {
            let batch = vec![
                WriteOp::Decision(Arc::new(sentinel_store::conformance::decision(
                    "t-1", "u-1", 1, 0,
                ))),
                WriteOp::Records(records),
            ];
            let err = remote
                .write_batch(batch)
                .await
                .expect_err("records smuggled into a batch");
            assert!(matches!(err, StoreError::Refused(_)), "{err}");
        }

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

    /// Lists and records far larger than a frame come back whole, in pages and parts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_batches_lists_and_records_cross_in_frames() {
        let (_dir, local, remote) = served("frames").await;
        let heavy = |i: u64| {
            let mut d = sentinel_store::conformance::decision(&format!("h{i}"), "heavy", i, 0);
            let mut event = (*d.event).clone();
            let mut metadata = serde_json::Map::new();
            metadata.insert("note".into(), "x".repeat(60 * 1024).into());
            event.metadata = Some(metadata);
            d.event = Arc::new(event);
            WriteOp::Decision(Arc::new(d))
        };
        // 300 decisions of ~60 KiB: about 18 MiB, over the 16 MiB frame limit in one piece.
        let ops: Vec<WriteOp> = (1..=300).map(heavy).collect();
        let results = remote.write_batch(ops).await.unwrap();
        assert_eq!(results.len(), 300);
        assert_eq!(local.decision_count().await.unwrap(), 300);
        let all = remote.decisions_for_user("heavy", 0, 1_000).await.unwrap();
        let seqs: Vec<u64> = all.iter().map(|d| d.user_seq).collect();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
        let some = remote.decisions_for_user("heavy", 10, 150).await.unwrap();
        assert_eq!((some.len(), some[0].user_seq), (150, 11));
        let day = sentinel_store::day_of(all[0].decided_at);
        assert_eq!(
            remote
                .decisions_by_day(day, None, 1_000)
                .await
                .unwrap()
                .len(),
            300
        );
        let point = remote.restore_point("heavy", 1_000).await.unwrap();
        assert_eq!(point.decisions.len(), 300);
        // Looked up by id together (a replay's duplicates), over several frames, in order.
        let mut ids: Vec<String> = (1..=300).rev().map(|i| format!("h{i}")).collect();
        ids.insert(100, "never-decided".into());
        let found = remote.decisions(ids.clone()).await.unwrap();
        let answered: Vec<Option<&str>> = found
            .iter()
            .map(|d| d.as_ref().map(|d| d.transaction_id.as_str()))
            .collect();
        let expected: Vec<Option<&str>> = ids
            .iter()
            .map(|id| (id != "never-decided").then_some(id.as_str()))
            .collect();
        assert_eq!(answered, expected);
        let peer = RemoteStore::connect("frames", None, Duration::from_secs(5))
            .await
            .unwrap();
        match peer.call(StoreRequest::DecisionsById(ids)).await.unwrap() {
            StoreReply::Found(page) => {
                let served = page.items.len();
                assert!(
                    (1..100).contains(&served),
                    "{served} heavy decisions in one reply"
                );
            }
            other => panic!("unexpected reply {}", other.kind()),
        }

        // A 5 MiB record (a model artifact) is read in parts, alone or in a scan.
        let model: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let small = |key: &str| RecordWrite {
            kind: RecordKind::Model,
            key: key.to_owned(),
            value: Some(b"small".to_vec()),
        };
        local
            .put_records(vec![
                small("a"),
                RecordWrite {
                    kind: RecordKind::Model,
                    key: "big".into(),
                    value: Some(model.clone()),
                },
                small("c"),
            ])
            .await
            .unwrap();
        assert_eq!(
            remote.record(RecordKind::Model, "big").await.unwrap(),
            Some(model.clone())
        );
        let scanned = remote
            .scan_records(RecordKind::Model, "", None, 10)
            .await
            .unwrap();
        let keys: Vec<&str> = scanned.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "big", "c"]);
        assert_eq!(scanned[1].1, model);
    }

    /// A store host of a release before `DayEntries` and `DecisionsById`: it cannot read them,
    /// and answers as such a host does.
    struct OlderHost;

    impl Actor for OlderHost {
        type Msg = StoreMessage;
        type State = Hosted;
        type Arguments = Hosted;

        async fn pre_start(
            &self,
            _myself: ActorRef<Self::Msg>,
            hosted: Hosted,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(hosted)
        }

        async fn handle(
            &self,
            _myself: ActorRef<Self::Msg>,
            message: StoreMessage,
            hosted: &mut Hosted,
        ) -> Result<(), ActorProcessingErr> {
            let StoreMessage::Call(request, reply) = message;
            let unknown = matches!(
                serde_json::from_slice::<StoreRequest>(&request),
                Ok(StoreRequest::DayEntries { .. } | StoreRequest::DecisionsById(_))
            );
            let answered = if unknown {
                StoreReply::Failed(format!("{UNDECODABLE_REQUEST}: unknown variant"))
            } else {
                answer(hosted, &request).await
            };
            send(reply, answered);
            Ok(())
        }
    }

    /// A member on this release reads through an older store host (a cluster upgraded one
    /// node at a time): the day's entities and decisions by id come back whole and in order,
    /// asked again in the requests that host knows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_member_reads_through_a_host_older_than_its_requests() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Store> =
            Arc::new(sentinel_store::EmbeddedStore::open(&dir.path().join("o.redb")).unwrap());
        let ops = (1..=5)
            .map(|i| {
                let mut d = sentinel_store::conformance::decision(&format!("t{i}"), "u", i, 0);
                let mut event = (*d.event).clone();
                event.merchant_id = Some(format!("m{}", i % 2));
                d.event = Arc::new(event);
                WriteOp::Decision(Arc::new(d))
            })
            .collect();
        local.write_batch(ops).await.unwrap();
        let hosted = Hosted {
            store: Arc::clone(&local),
            observer: None,
        };
        let (host, _) = Actor::spawn(None, OlderHost, hosted).await.unwrap();
        pg::join(group_for("older"), vec![host.get_cell()]);
        let remote = RemoteStore::connect("older", None, Duration::from_secs(5))
            .await
            .unwrap();
        let day = sentinel_store::day_of(local.decision("t1").await.unwrap().unwrap().decided_at);
        let entries = remote.day_entries(day, None, 100).await.unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries, local.day_entries(day, None, 100).await.unwrap());
        let ids: Vec<String> = ["t3", "unknown", "t1", "t3"].map(String::from).into();
        let found = remote.decisions(ids.clone()).await.unwrap();
        assert_eq!(found, local.decisions(ids).await.unwrap());
        assert!(found[1].is_none() && found[0].is_some());
        host.stop(None);
    }

    /// A request the host cannot read (one added after the host's release: a cluster upgraded
    /// one node at a time) is answered with a failure the member tells apart from the store's
    /// own, and asks again in requests every host knows; the store's own failures are not
    /// mistaken for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_newer_than_the_host_is_told_apart() {
        let (_dir, _, _) = served("newer-request").await;
        let remote = RemoteStore::connect("newer-request", None, Duration::from_secs(5))
            .await
            .unwrap();
        let newer = br#"{"DecisionsByMood":{"mood":"calm"}}"#.to_vec();
        let Err(err) = remote.call_encoded(newer).await else {
            panic!("the host read a request it does not know");
        };
        assert!(unknown_to_host(&err), "{err}");
        let missing = remote
            .call(StoreRequest::Snapshot("nobody".into()))
            .await
            .unwrap();
        assert!(matches!(missing, StoreReply::Snapshot(None)));
        for own in [
            StoreError::Backend("store host timed out".into()),
            StoreError::Corrupt {
                table: "decisions_by_day",
                reason: "undecodable store request".into(),
            },
            StoreError::Refused("undecodable store request".into()),
        ] {
            assert!(!unknown_to_host(&own), "{own}");
        }
    }

    /// A member asking for a whole list in one request (`limit: usize::MAX`), or for more
    /// decisions by id than a list holds, gets at most [`PEER_LIST_ITEMS`] items (lists with
    /// `more` set), so the host never reads a day or a user's whole history into memory for
    /// one peer; the member's own calls page on to the end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_asking_for_everything_at_once_gets_bounded_pages() {
        let (_dir, local, remote) = served("bounded").await;
        let total = PEER_LIST_ITEMS + 5;
        let ops = (1..=total as u64)
            .map(|i| {
                let d = sentinel_store::conformance::decision(&format!("b{i:05}"), "busy", i, 0);
                WriteOp::Decision(Arc::new(d))
            })
            .collect();
        local.write_batch(ops).await.unwrap();
        let records = (0..total)
            .map(|i| RecordWrite {
                kind: RecordKind::Idempotency,
                key: format!("k{i:05}"),
                value: Some(b"{}".to_vec()),
            })
            .collect();
        local.put_records(records).await.unwrap();
        let day =
            sentinel_store::day_of(local.decision("b00001").await.unwrap().unwrap().decided_at);

        let peer = RemoteStore::connect("bounded", None, Duration::from_secs(5))
            .await
            .unwrap();
        let everything = [
            StoreRequest::DecisionsForUser {
                user_id: "busy".into(),
                after_seq: 0,
                limit: usize::MAX,
            },
            StoreRequest::DecisionsByDay {
                day,
                after: None,
                limit: usize::MAX,
            },
            StoreRequest::DecisionKeysByDay {
                day,
                after: None,
                limit: usize::MAX,
            },
            StoreRequest::DayEntries {
                day,
                after: None,
                limit: usize::MAX,
            },
            StoreRequest::RestorePoint {
                user_id: "busy".into(),
                limit: usize::MAX,
            },
            StoreRequest::ScanRecords {
                kind: RecordKind::Idempotency,
                prefix: String::new(),
                after: None,
                limit: usize::MAX,
            },
        ];
        let every_id: Vec<String> = (1..=total).map(|i| format!("b{i:05}")).collect();
        match peer
            .call(StoreRequest::DecisionsById(every_id.clone()))
            .await
            .unwrap()
        {
            StoreReply::Found(page) => assert_eq!(page.items.len(), PEER_LIST_ITEMS),
            other => panic!("unexpected reply {}", other.kind()),
        }
        for request in everything {
            let (served, more) = match peer.call(request).await.unwrap() {
                StoreReply::Decisions(page) => (page.items.len(), page.more),
                StoreReply::Positions(page) => (page.items.len(), page.more),
                StoreReply::Entries(page) => (page.items.len(), page.more),
                StoreReply::RestorePoint { decisions, .. } => {
                    (decisions.items.len(), decisions.more)
                }
                StoreReply::Records(page) => (page.items.len(), page.more),
                other => panic!("unexpected reply {}", other.kind()),
            };
            assert!(served <= PEER_LIST_ITEMS, "{served} items in one reply");
            assert!(more, "a bounded page must say there is more");
        }

        // The member's own calls page on to the end of every list.
        let all = usize::MAX;
        let read = [
            remote
                .decisions_for_user("busy", 0, all)
                .await
                .unwrap()
                .len(),
            remote
                .decision_keys_by_day(day, None, all)
                .await
                .unwrap()
                .len(),
            remote.decisions_by_day(day, None, all).await.unwrap().len(),
            remote.day_entries(day, None, all).await.unwrap().len(),
            remote
                .restore_point("busy", all)
                .await
                .unwrap()
                .decisions
                .len(),
            (remote
                .scan_records(RecordKind::Idempotency, "", None, all)
                .await)
                .unwrap()
                .len(),
        ];
        let found = remote.decisions(every_id).await.unwrap();
        assert!(found.iter().all(Option::is_some));
        assert_eq!(read, [total; 6]);
        assert_eq!(found.len(), total);
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
