//! `Idempotency-Key` on every mutating request: the first answer is stored (per caller and
//! key) and replayed for a retry with the same body; a different body under the same key gets
//! 409. Requests with one key are serialised, so concurrent retries create one thing.
//!
//! Answers are stored in batches. On a node with its own embedded store, the decision writer
//! stores them in its batches beside the decisions: a client scoring every event under a key
//! (the README's safe-retry path) adds no commit of its own. Where commits are not shared (a
//! cluster member, whose writes travel to the store host; ScyllaDB), a task of this module
//! stores the answers given while one write is in flight together in the next, beside the
//! writer's own pipeline.
//!
//! On a node with its own embedded store the keys requests bring are looked up the same way:
//! those asked while one read is in flight are read together in the next ([`Store::records`],
//! one blocking call, one thread hop, for all of them). Elsewhere each request reads its own
//! (a member's reads are round trips to the store host, which a batch would make wait on
//! each other).
//!
//! An answer whose change a retry would find anyway ([`FoundByRetry`]: scoring, where the
//! decision of record is looked up by its transaction id) is sent before it is stored, so the
//! request waits for one commit, not two; its key stays locked until the answer is stored, so
//! a retry still gets the replay. A stopping node finishes storing those answers
//! ([`Idempotency::finish_saves`]); a store that does not take one within the request timeout
//! frees its key (a retry then re-scores and finds the decision).

use crate::auth::Principal;
use crate::{sha256_hex, ApiError, ApiState};
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use sentinel_store::{RecordKind, RecordWrite, Store, StoreError, Writer};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_util::task::TaskTracker;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";
/// Longest accepted key.
const MAX_KEY_LEN: usize = 255;
/// Locks requests with the same key hash to; more stripes, fewer unrelated waits.
const STRIPES: usize = 1024;
/// Largest kept answer, as stored (the answer's body escaped in JSON; a batch of 10,000 labels,
/// each rejected with its reason, makes ~1.8 MB); a larger answer is passed on without being
/// kept, and a retry gets a real attempt. Bounded by what a cluster member sends its store
/// host in one write: the record crosses in base64 (4 bytes per 3), within the store wire's
/// 4 MiB frame budget.
const MAX_STORED_RECORD: usize = 2 << 20;
/// Most answers the answer task stores in one store write.
const MAX_ANSWERS_PER_WRITE: usize = 256;
/// Most bytes of answers the answer task stores in one write (more than one answer's worth only
/// when they fit): a shared database refuses very large batches (ScyllaDB's default limit is
/// 1 MiB), and a refused batch would lose every answer in it.
const MAX_BYTES_PER_WRITE: usize = 512 * 1024;
/// Answers that may wait for the answer task's next write before answering requests wait too.
const ANSWER_QUEUE: usize = 1_024;
/// Most keys the lookup task reads in one store call.
const MAX_LOOKUPS_PER_READ: usize = 64;
/// Keys that may wait for the lookup task's next read before requests wait to queue theirs.
const LOOKUP_QUEUE: usize = 1_024;
/// Longest an answer sent before it is stored holds its key while the store takes it, unless
/// set with [`Idempotency::saving_within`] (the node sets its request timeout).
const SAVE_WITHIN: Duration = Duration::from_secs(30);

/// Put in an answer's extensions by a handler whose change is found again, unchanged, by a
/// retry that does not find the stored answer (scoring: the decision of record, durable before
/// the answer, is looked up by its transaction id, which a key-derived id makes the same for
/// every retry). The answer goes out before it is stored; requests with its key wait until it
/// is. Should the node crash in between, a retry gets the same decision marked `duplicate`.
#[derive(Clone, Copy, Debug)]
pub struct FoundByRetry;

/// A hash of the caller, the `Idempotency-Key` and the request (method, path, body), put into
/// the request's extensions so a handler can derive what it creates from it: a retry makes
/// the same thing even when the stored answer was lost in a crash, and a key reused for
/// another request after its retention makes something new.
#[derive(Clone)]
pub struct IdempotencyScope(pub Arc<str>);

/// Stored answers and the locks that serialise requests with one key.
pub struct Idempotency {
    store: Arc<dyn Store>,
    retention: Duration,
    stripes: Vec<Arc<Mutex<()>>>,
    answers: AnswerWrites,
    /// To the lookup task ([`look_up_answers`]) where keys are read in batches; `None`: each
    /// request reads its own.
    lookups: Option<mpsc::Sender<Lookup>>,
    /// The saves of answers already sent ([`FoundByRetry`]), for a stopping node to finish.
    saves: TaskTracker,
    /// Longest such a save holds its key.
    save_within: Duration,
}

/// Where answers are stored.
enum AnswerWrites {
    /// In the decision writer's batches, one commit with the decisions.
    Writer(Writer),
    /// By the answer task ([`store_answers`]), in writes of its own.
    Task(mpsc::Sender<Answer>),
}

/// An answer to store, and where to say once it is durable.
type Answer = (RecordWrite, oneshot::Sender<Result<(), StoreError>>);

/// A key's scope to look up, and where to send its stored answer.
type Lookup = (String, oneshot::Sender<Result<Option<Vec<u8>>, StoreError>>);

/// The stored first answer to one key.
#[derive(Serialize, Deserialize)]
struct Recorded {
    /// SHA-256 of method, path and body of the first request.
    request_sha256: String,
    /// When it was answered; after the retention the key may be used afresh.
    at: DateTime<Utc>,
    status: u16,
    content_type: Option<String>,
    /// The answer's body; absent when it held a secret that is shown only once.
    body: Option<String>,
}

impl Idempotency {
    /// Keys are kept in `store` for `retention`. Starts the task that stores answers in
    /// batches of their own on the current tokio runtime; it ends when this is dropped.
    pub fn new(store: Arc<dyn Store>, retention: Duration) -> Idempotency {
        let (answers, queue) = mpsc::channel(ANSWER_QUEUE);
        // Without a hold on the store: dropping this closes the store at once (an embedded
        // store's file can then be opened again), not when the task next wakes.
        tokio::spawn(store_answers(Arc::downgrade(&store), queue));
        Idempotency::storing(store, retention, AnswerWrites::Task(answers), None)
    }

    /// Keys are kept in `writer`'s store for `retention`; `writer` stores the answers in its
    /// batches, so they share the decisions' commits (for a store whose commit is one local
    /// transaction: the embedded store of the node that owns it). Keys are looked up in
    /// batches by a task started on the current tokio runtime.
    pub fn with_writer(writer: Writer, retention: Duration) -> Idempotency {
        let store = Arc::clone(writer.store());
        let (lookups, queue) = mpsc::channel(LOOKUP_QUEUE);
        tokio::spawn(look_up_answers(Arc::downgrade(&store), queue));
        Idempotency::storing(
            store,
            retention,
            AnswerWrites::Writer(writer),
            Some(lookups),
        )
    }

    fn storing(
        store: Arc<dyn Store>,
        retention: Duration,
        answers: AnswerWrites,
        lookups: Option<mpsc::Sender<Lookup>>,
    ) -> Idempotency {
        Idempotency {
            store,
            retention,
            stripes: (0..STRIPES).map(|_| Arc::default()).collect(),
            answers,
            lookups,
            saves: TaskTracker::new(),
            save_within: SAVE_WITHIN,
        }
    }

    /// An answer sent before it is stored holds its key for at most `limit` while the store
    /// takes it; then the key is free (a retry meanwhile re-scores and finds the decision of
    /// record, marked `duplicate`), though the answer may still be stored later.
    pub fn saving_within(mut self, limit: Duration) -> Idempotency {
        self.save_within = limit;
        self
    }

    /// Waits until the answers already sent are stored (or given up, see
    /// [`Idempotency::saving_within`]: at most that long); for a stopping node, once its HTTP
    /// server has stopped, so their retries after a restart get the replay. An answer given
    /// after this (a request the server gave up waiting for) is stored before it is sent.
    pub async fn finish_saves(&self) {
        self.saves.close();
        self.saves.wait().await;
    }

    /// The answer stored under `scope` (read together with the keys other requests brought
    /// meanwhile, where keys are read in batches).
    async fn recorded(&self, scope: &str) -> Result<Option<Recorded>, ApiError> {
        let context = "reading an idempotency key";
        let bytes = match &self.lookups {
            Some(lookups) => {
                ask(lookups, scope.to_owned(), || {
                    ApiError::internal(context, "the key reader stopped")
                })
                .await?
            }
            None => self.store.record(RecordKind::Idempotency, scope).await,
        }
        .map_err(|e| ApiError::internal(context, e))?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    fn expired(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        chrono::Duration::from_std(self.retention).is_ok_and(|r| at + r <= now)
    }

    /// Deletes the keys older than the retention; returns how many.
    pub async fn expire(&self, now: DateTime<Utc>) -> Result<usize, sentinel_store::StoreError> {
        let mut after: Option<String> = None;
        let mut removed = 0;
        loop {
            let page = self
                .store
                .scan_records(RecordKind::Idempotency, "", after.as_deref(), 500)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(removed);
            };
            after = Some(last.clone());
            let stale: Vec<RecordWrite> = page
                .into_iter()
                .filter(|(_, bytes)| {
                    serde_json::from_slice::<Recorded>(bytes)
                        .map_or(true, |r| self.expired(r.at, now))
                })
                .map(|(key, _)| RecordWrite {
                    kind: RecordKind::Idempotency,
                    key,
                    value: None,
                })
                .collect();
            removed += stale.len();
            if !stale.is_empty() {
                self.store.put_records(stale).await?;
            }
        }
    }
}

/// Middleware on every route, inside the auth guard.
pub async fn layer(
    State(state): State<ApiState>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    );
    let Some(key) = request.headers().get(HEADER).filter(|_| mutating) else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            k.to_owned()
        }
        _ => {
            return ApiError::invalid_header(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        }
    };
    let caller = request
        .extensions()
        .get::<Arc<Principal>>()
        .map_or("", |p| p.name.as_str());
    let scope = sha256_hex(&format!("{caller}\n{key}"));
    let (mut parts, body) = request.into_parts();
    // The route's own limit: a 16 MiB model upload is as valid with a key as without.
    let limit = crate::routes::body_limit(
        &state.limits,
        &parts.method,
        matched.as_ref().map_or("", |m| m.as_str()),
    );
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return ApiError::too_large("the body is over the size limit").into_response();
    };
    let fingerprint = {
        let mut text = format!("{} {}\n", parts.method, parts.uri.path()).into_bytes();
        text.extend_from_slice(&bytes);
        sha256_hex(&String::from_utf8_lossy(&text))
    };
    let idem = &state.idempotency;
    let stripe = usize::from_str_radix(&scope[..4], 16).unwrap_or(0) % STRIPES;
    let serialised = Arc::clone(&idem.stripes[stripe]).lock_owned().await;

    let now = Utc::now();
    match idem.recorded(&scope).await {
        Err(e) => return e.into_response(),
        Ok(Some(recorded)) if !idem.expired(recorded.at, now) => {
            return if recorded.request_sha256 == fingerprint {
                replay(recorded)
            } else {
                ApiError::conflict_on(
                    "Idempotency-Key",
                    "this Idempotency-Key was used with a different request; use a new key",
                )
                .into_response()
            };
        }
        Ok(_) => {}
    }
    let shows_secret = parts.method == Method::POST && parts.uri.path() == "/v1/keys";
    let request_scope = sha256_hex(&format!("{scope}\n{fingerprint}"));
    parts
        .extensions
        .insert(IdempotencyScope(Arc::from(request_scope.as_str())));
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status().is_server_error() {
        // A failure is not an answer: the retry should get a real attempt.
        return response;
    }
    let (parts, body) = response.into_parts();
    // The handlers' answers are in memory already: buffering one costs a copy, and one over
    // the limit must still reach the caller, whose change was made.
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return ApiError::internal("buffering an answer", "the answer's body failed")
            .into_response();
    };
    let recorded = Recorded {
        request_sha256: fingerprint,
        at: now,
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: (!shows_secret).then(|| String::from_utf8_lossy(&body).into_owned()),
    };
    // A failure to store is logged (by `ApiError::internal`); the change itself happened, so
    // the caller still gets its answer.
    if parts.extensions.get::<FoundByRetry>().is_some() && !idem.saves.is_closed() {
        let idem = Arc::clone(idem);
        idem.saves.clone().spawn(async move {
            failpoint_before_answer_save().await;
            let saved = tokio::time::timeout(idem.save_within, save(&idem, &scope, &recorded));
            if saved.await.is_err() {
                tracing::warn!(
                    within = ?idem.save_within,
                    "the store did not take a scoring answer in time; its key is free again"
                );
            }
            drop(serialised);
        });
    } else {
        let _ = save(idem, &scope, &recorded).await;
    }
    Response::from_parts(parts, Body::from(body))
}

/// With the `failpoints` feature and `SENTINEL_FAILPOINT=slow_answer_save`, an answer sent
/// before it is stored waits two seconds before it is stored: a test stops the node then.
#[cfg(feature = "failpoints")]
async fn failpoint_before_answer_save() {
    if std::env::var("SENTINEL_FAILPOINT").is_ok_and(|v| v == "slow_answer_save") {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(not(feature = "failpoints"))]
async fn failpoint_before_answer_save() {}

/// Reads the keys requests look up, those queued while one read is in flight together, in
/// one store call each; returns how many it made.
async fn look_up_answers(store: Weak<dyn Store>, queue: mpsc::Receiver<Lookup>) -> usize {
    in_batches(
        store,
        queue,
        MAX_LOOKUPS_PER_READ,
        |store: Arc<dyn Store>, scopes: Vec<String>| async move {
            let asked = scopes.len();
            let found = match store.records(RecordKind::Idempotency, scopes).await {
                Ok(values) => values.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e); asked],
            };
            (found, 1)
        },
    )
    .await
}

async fn save(idem: &Idempotency, scope: &str, recorded: &Recorded) -> Result<(), ApiError> {
    let value =
        serde_json::to_vec(recorded).map_err(|e| ApiError::internal("encoding a replay", e))?;
    if value.len() > MAX_STORED_RECORD {
        tracing::warn!(
            bytes = value.len(),
            limit = MAX_STORED_RECORD,
            "an answer too large to keep for replay was not kept"
        );
        return Ok(());
    }
    let write = RecordWrite {
        kind: RecordKind::Idempotency,
        key: scope.to_owned(),
        value: Some(value),
    };
    let context = "storing an idempotency key";
    let stored = match &idem.answers {
        AnswerWrites::Writer(writer) => writer.store_records(vec![write]).await,
        AnswerWrites::Task(answers) => {
            ask(answers, write, || {
                ApiError::internal(context, "the answer writer stopped")
            })
            .await?
        }
    };
    stored.map_err(|e| ApiError::internal(context, e))
}

/// Stores the queued answers, those queued while one write is in flight together in one
/// store write (several when over [`MAX_BYTES_PER_WRITE`]); each answer's request hears when
/// it is durable. Returns how many store writes it made.
async fn store_answers(store: Weak<dyn Store>, queue: mpsc::Receiver<Answer>) -> usize {
    in_batches(
        store,
        queue,
        MAX_ANSWERS_PER_WRITE,
        |store: Arc<dyn Store>, answers: Vec<RecordWrite>| async move {
            let mut heard = Vec::with_capacity(answers.len());
            let mut writes = 0;
            let mut answers = answers.into_iter().peekable();
            while answers.peek().is_some() {
                let (mut records, mut bytes) = (Vec::new(), 0);
                while let Some(record) = answers.peek() {
                    let size = record.key.len() + record.value.as_ref().map_or(0, Vec::len);
                    if !records.is_empty() && bytes + size > MAX_BYTES_PER_WRITE {
                        break;
                    }
                    bytes += size;
                    records.push(answers.next().expect("peeked"));
                }
                let written = records.len();
                let stored = store.put_records(records).await;
                writes += 1;
                heard.extend(std::iter::repeat_n(stored, written));
            }
            (heard, writes)
        },
    )
    .await
}

/// Queues `asked` for a task of [`in_batches`] and waits for its result; `stopped` is the
/// error when the task is gone.
async fn ask<T, R>(
    queue: &mpsc::Sender<(T, oneshot::Sender<R>)>,
    asked: T,
    stopped: impl Fn() -> ApiError,
) -> Result<R, ApiError> {
    let (reply, result) = oneshot::channel();
    queue.send((asked, reply)).await.map_err(|_| stopped())?;
    result.await.map_err(|_| stopped())
}

/// Serves the requests queued for a task of store calls until every sender is dropped:
/// whatever is queued (up to `most`) goes to `call`, which gives each request's result in
/// order and how many store calls it made; returns how many were made in all. `call` owns
/// the store and lets go of it before the results go out: a request told its answer is
/// durable may be the last one, after which the store must close.
async fn in_batches<T, R, Call: std::future::Future<Output = (Vec<R>, usize)>>(
    store: Weak<dyn Store>,
    mut queue: mpsc::Receiver<(T, oneshot::Sender<R>)>,
    most: usize,
    mut call: impl FnMut(Arc<dyn Store>, Vec<T>) -> Call,
) -> usize {
    let mut calls = 0;
    let mut queued = Vec::with_capacity(most);
    while queue.recv_many(&mut queued, most).await > 0 {
        // Gone only once the senders are too, so nothing queued is waiting for an answer.
        let Some(store) = store.upgrade() else { break };
        let (asked, waiting): (Vec<T>, Vec<_>) = queued.drain(..).unzip();
        let (results, made) = call(store, asked).await;
        calls += made;
        for (waiter, result) in waiting.into_iter().zip(results) {
            let _ = waiter.send(result);
        }
    }
    calls
}

fn replay(recorded: Recorded) -> Response {
    let Some(body) = recorded.body else {
        return ApiError::conflict_on(
            "Idempotency-Key",
            "the key was created by the first request with this Idempotency-Key and is shown only once",
        )
        .into_response();
    };
    let status = StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Bytes::from(body)).into_response();
    let headers = response.headers_mut();
    if let Some(value) = recorded
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_event::DecisionError;
    use sentinel_store::Stored;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn keys_older_than_the_retention_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(sentinel_store::EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
        let idem = Idempotency::new(Arc::clone(&store), Duration::from_secs(3600));
        let now = Utc::now();
        for (scope, age_secs) in [("old", 7200), ("new", 60)] {
            let recorded = Recorded {
                request_sha256: "x".into(),
                at: now - chrono::Duration::seconds(age_secs),
                status: 200,
                content_type: None,
                body: Some("{}".into()),
            };
            save(&idem, scope, &recorded).await.unwrap();
        }
        assert_eq!(idem.expire(now).await.unwrap(), 1);
        assert!(idem.recorded("old").await.unwrap().is_none());
        assert!(idem.recorded("new").await.unwrap().is_some());
    }

    /// A decision writer over `store` with a decision (of user `u1`) queued and not yet
    /// committed, answers stored through it, and the decision's acknowledgement.
    async fn writer_holding_a_decision(
        store: &Arc<crate::test_store::WatchedStore>,
    ) -> (
        Writer,
        Idempotency,
        oneshot::Receiver<Result<Stored, DecisionError>>,
    ) {
        let writer = Writer::start(
            Arc::clone(store) as Arc<dyn Store>,
            sentinel_store::WriterConfig::default(),
        );
        let idem = Idempotency::with_writer(writer.clone(), Duration::from_secs(3600));
        let (ack, decided) = oneshot::channel();
        let d = sentinel_store::conformance::decision("t1", "u1", 1, 0);
        writer.submit_decision(Arc::new(d), ack).await.unwrap();
        (writer, idem, decided)
    }

    fn answer(body: &str) -> Recorded {
        Recorded {
            request_sha256: "x".into(),
            at: Utc::now(),
            status: 200,
            content_type: None,
            body: Some(body.into()),
        }
    }

    /// Answers given while a decision waits for the writer share its commit: one store write
    /// for the decision and both answers, each heard as durable and readable after.
    #[tokio::test(flavor = "current_thread")]
    async fn answers_share_the_decision_writers_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::test_store::WatchedStore::open(&dir, false);
        let (_writer, idem, decided) = writer_holding_a_decision(&store).await;
        let (first, second) = (answer("first"), answer("second"));
        let (a, b) = tokio::join!(save(&idem, "a", &first), save(&idem, "b", &second));
        a.unwrap();
        b.unwrap();
        assert!(!decided.await.unwrap().unwrap().duplicate);
        assert_eq!(store.writes(), 1);
        for (scope, body) in [("a", "first"), ("b", "second")] {
            let kept = idem.recorded(scope).await.unwrap().unwrap();
            assert_eq!(kept.body.as_deref(), Some(body));
        }
    }

    /// An answer the store fails to write fails alone: the decision beside it in the batch is
    /// stored and acknowledged, and only the answer's request hears of the failure.
    #[tokio::test(flavor = "current_thread")]
    async fn an_answer_that_fails_to_store_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::test_store::WatchedStore::open(&dir, false);
        store.fail_records();
        let (writer, idem, decided) = writer_holding_a_decision(&store).await;
        assert!(save(&idem, "a", &answer("{}")).await.is_err());
        assert!(!decided.await.unwrap().unwrap().duplicate);
        assert_eq!(store.writes(), 1, "one batch for both");
        assert!(!writer.is_stale("u1"));
    }

    /// Queues `answers` (their sizes in bytes) before the answer writer reads its queue, as
    /// concurrent requests do; returns how many store writes it made, after checking that
    /// each request heard its answer is durable and that each answer reads back.
    async fn store_together(sizes: &[usize]) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(sentinel_store::EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
        let (answers, queue) = mpsc::channel(ANSWER_QUEUE);
        let mut durable = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let (ack, stored) = oneshot::channel();
            let write = RecordWrite {
                kind: RecordKind::Idempotency,
                key: format!("scope-{i}"),
                value: Some(vec![b'a' + (i % 26) as u8; *size]),
            };
            answers.send((write, ack)).await.unwrap();
            durable.push(stored);
        }
        drop(answers);
        let writes = store_answers(Arc::downgrade(&store), queue).await;
        for (i, stored) in durable.into_iter().enumerate() {
            stored.await.unwrap().unwrap();
            let key = format!("scope-{i}");
            let value = store.record(RecordKind::Idempotency, &key).await.unwrap();
            assert_eq!(value, Some(vec![b'a' + (i % 26) as u8; sizes[i]]));
        }
        writes
    }

    /// Answers given together are stored in one store write, and each request hears that its
    /// own answer is durable.
    #[tokio::test]
    async fn answers_given_together_share_one_store_write() {
        assert_eq!(store_together(&[1_500; 50]).await, 1);
    }

    /// Answers too large to share a write within [`MAX_BYTES_PER_WRITE`] get a write each;
    /// one over it alone still gets stored.
    #[tokio::test]
    async fn large_answers_are_split_across_writes() {
        // Keys count too.
        let third = MAX_BYTES_PER_WRITE / 3 - 64;
        assert_eq!(store_together(&[third; 3]).await, 1);
        let over_half = MAX_BYTES_PER_WRITE / 2 + 1;
        assert_eq!(store_together(&[over_half; 3]).await, 3);
        assert_eq!(store_together(&[MAX_BYTES_PER_WRITE + 1, 10]).await, 2);
    }

    /// Keys looked up while the lookup task is busy are read in one store call, and each
    /// request gets its own key's answer, absent ones included.
    #[tokio::test]
    async fn keys_looked_up_together_share_one_store_read() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(sentinel_store::LsmStore::open(&dir.path().join("lsm")).unwrap());
        let kept: Vec<RecordWrite> = (0..20)
            .map(|i| RecordWrite {
                kind: RecordKind::Idempotency,
                key: format!("scope-{i}"),
                value: Some(format!("answer {i}").into_bytes()),
            })
            .collect();
        store.put_records(kept).await.unwrap();
        let (lookups, queue) = mpsc::channel(LOOKUP_QUEUE);
        let mut answers = Vec::new();
        for i in 0..40 {
            let (found, answer) = oneshot::channel();
            lookups.send((format!("scope-{i}"), found)).await.unwrap();
            answers.push(answer);
        }
        drop(lookups);
        assert_eq!(look_up_answers(Arc::downgrade(&store), queue).await, 1);
        for (i, answer) in answers.into_iter().enumerate() {
            let value = answer.await.unwrap().unwrap();
            let expected = (i < 20).then(|| format!("answer {i}").into_bytes());
            assert_eq!(value, expected, "scope-{i}");
        }
    }
}
