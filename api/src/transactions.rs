//! Scoring over HTTP and decision lookup.

use crate::auth::Caller;
use crate::idempotency::{FoundByRetry, IdempotencyScope};
use crate::read_json::read_json;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use axum::Json;
use chrono::Utc;
use sentinel_event::{parse_transaction, Assigned, Decision, ParseMode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// The answer to `POST /v1/transactions`: the decision, plus what the node filled in.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScoreResponse {
    /// The decision of record.
    #[serde(flatten)]
    #[schema(value_type = Decision)]
    pub decision: Arc<Decision>,
    /// True when this transaction id had been decided before; the original is returned.
    pub duplicate: bool,
    /// Fields the node assigned because the request left them out.
    pub assigned: Assigned,
}

/// `POST /v1/transactions`: decides one event synchronously.
#[utoipa::path(post, path = "/v1/transactions", tag = "scoring", request_body(content = sentinel_event::Transaction, description = "A transaction; over HTTP only `user_id` and `amount` are required"), responses((status = 200, description = "The decision of record", body = ScoreResponse), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse), (status = 413, description = "Body too large", body = ErrorResponse), (status = 503, description = "Nothing was decided here: the node is already deciding `http_max_scoring_in_flight` requests, or, in a Kafka-fed cluster, no member owns the user's partition right now or its owner did not answer. `Retry-After` says when to retry; retry with the same `transaction_id`", body = ErrorResponse)))]
pub async fn score(
    State(state): State<ApiState>,
    key: Option<Extension<IdempotencyScope>>,
    body: Bytes,
) -> Result<(Extension<FoundByRetry>, Json<ScoreResponse>), ApiError> {
    let _slot = state.scoring_slots.try_acquire().map_err(|_| {
        crate::metrics::refused("overloaded");
        ApiError::unavailable(
            "the node is deciding as many HTTP requests as it takes at once; retry shortly",
        )
    })?;
    let received = Instant::now();
    let (mut event, assigned) =
        parse_transaction(&body, ParseMode::Lenient, &state.limits, Utc::now())
            .inspect_err(|invalid| crate::metrics::event_invalid("http", invalid))?;
    if let (true, Some(Extension(IdempotencyScope(scope)))) = (assigned.transaction_id, key) {
        // The id comes from the key, so the stored decision is itself the idempotency record:
        // a retry after a crash that lost the stored answer finds it as a duplicate.
        event.transaction_id = idempotent_transaction_id(&scope);
    }
    failpoint_before_decision().await;
    let stored = state.decider.decide(event, received).await?;
    failpoint_after_decision().await;
    // Stored before it is answered: a retry finds it by its transaction id.
    Ok((
        Extension(FoundByRetry),
        Json(ScoreResponse {
            decision: stored.decision,
            duplicate: stored.duplicate,
            assigned,
        }),
    ))
}

/// The transaction id of an HTTP event sent without one under an `Idempotency-Key`: derived
/// from the key's request hash, so every retry of that request names the same transaction.
fn idempotent_transaction_id(scope: &str) -> String {
    format!("idem-{}", &scope[..scope.len().min(40)])
}

/// With the `failpoints` feature and `SENTINEL_FAILPOINT=hang_after_decision`, the request
/// never answers once its decision is stored: a test SIGKILLs the node at exactly that point.
#[cfg(feature = "failpoints")]
async fn failpoint_after_decision() {
    if std::env::var("SENTINEL_FAILPOINT").is_ok_and(|v| v == "hang_after_decision") {
        std::future::pending::<()>().await;
    }
}

#[cfg(not(feature = "failpoints"))]
async fn failpoint_after_decision() {}

/// With the `failpoints` feature and `SENTINEL_FAILPOINT=slow_decision`, a request waits two
/// seconds (logged) before it is decided: a test stops the node while it is in flight.
#[cfg(feature = "failpoints")]
async fn failpoint_before_decision() {
    if std::env::var("SENTINEL_FAILPOINT").is_ok_and(|v| v == "slow_decision") {
        tracing::info!("failpoint: a scoring request waits before its decision");
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

#[cfg(not(feature = "failpoints"))]
async fn failpoint_before_decision() {}

/// `GET /v1/decisions/{transaction_id}`: one stored decision.
#[utoipa::path(get, path = "/v1/decisions/{transaction_id}", tag = "decisions", params(("transaction_id" = String, Path)), responses((status = 200, body = Decision), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn decision(
    State(state): State<ApiState>,
    Path(transaction_id): Path<String>,
) -> Result<Json<Decision>, ApiError> {
    match state.store.decision(&transaction_id).await {
        Ok(Some(decision)) => Ok(Json(decision)),
        Ok(None) => Err(ApiError::not_found(format!(
            "no decision for transaction {transaction_id}"
        ))),
        Err(e) => Err(ApiError::internal("reading a decision failed", e)),
    }
}

/// Paging of a user's decisions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserPage {
    /// Only decisions after this position in the user's processing order.
    #[serde(default)]
    pub after_seq: u64,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<usize>,
}

/// `GET /v1/users/{user_id}/decisions`: the user's decisions in processing order. The last
/// item's `user_seq` is the cursor for the next page (`after_seq`).
#[utoipa::path(get, path = "/v1/users/{user_id}/decisions", tag = "users", params(("user_id" = String, Path), UserPage), responses((status = 200, body = Vec<Decision>), (status = 400, body = ErrorResponse)))]
pub async fn user_decisions(
    State(state): State<ApiState>,
    Path(user_id): Path<String>,
    crate::body::Params(page): crate::body::Params<UserPage>,
) -> Result<Response, ApiError> {
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_parameter(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let decisions = state
        .store
        .decisions_for_user(&user_id, page.after_seq, limit)
        .await
        .map_err(|e| ApiError::internal("reading a user's decisions failed", e))?;
    read_json(&*state.store, decisions).await
}

/// A verdict on one decision.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct LabelRequest {
    /// `fraud` or `legit`.
    pub label: sentinel_catalog::LabelValue,
    /// When the verdict became known (RFC 3339; default now): not before the transaction,
    /// not in the future. The entity-risk features count the label from then on (plus the
    /// label delay).
    #[serde(default)]
    pub labelled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `analyst` (default), `chargeback` or `other`.
    #[serde(default)]
    pub source: sentinel_catalog::LabelSource,
    /// The fraud pattern, when known (at most 64 characters).
    #[serde(default)]
    pub scenario: Option<String>,
    /// Why, for the next analyst.
    #[serde(default)]
    pub note: String,
}

/// `POST /v1/decisions/{transaction_id}/label`: stores a verdict on a decision (a later one
/// replaces it; the same one again changes nothing).
#[utoipa::path(post, path = "/v1/decisions/{transaction_id}/label", tag = "decisions", params(("transaction_id" = String, Path)), request_body = LabelRequest, responses((status = 200, body = sentinel_catalog::Label), (status = 404, description = "Not found", body = ErrorResponse), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse)))]
pub async fn label(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(transaction_id): Path<String>,
    crate::body::JsonBody(request): crate::body::JsonBody<LabelRequest>,
) -> Result<Json<sentinel_catalog::Label>, ApiError> {
    let input = sentinel_catalog::LabelInput {
        transaction_id,
        label: request.label,
        labelled_at: request.labelled_at,
        source: request.source,
        scenario: request.scenario,
        note: request.note,
    };
    let (label, stored) = state.catalog.record_label(input, &caller.name).await?;
    metrics::counter!(crate::metrics::LABELS_STORED).increment(u64::from(stored));
    Ok(Json(label))
}

/// A batch of labels, such as a day's chargeback file.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelBatch {
    /// At most 10,000 labels. An item that does not read as a label is rejected on its own,
    /// naming the field at fault; the others are stored.
    #[schema(value_type = Vec<sentinel_catalog::LabelInput>)]
    pub labels: Vec<serde_json::Value>,
}

/// What became of each label of a batch, in order, and the counts.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LabelBatchResult {
    /// Labels stored.
    pub stored: usize,
    /// Labels already stored (the same verdict and time, or a later one).
    pub unchanged: usize,
    /// Labels refused, each with its reason in `results`.
    pub rejected: usize,
    /// One outcome per label sent, in order.
    pub results: Vec<sentinel_catalog::LabelOutcome>,
}

/// `POST /v1/labels`: stores a batch of labels. Idempotent per transaction and label time: a
/// batch sent twice stores nothing the second time (a label without `labelled_at` is given
/// now, so give the time to make retries safe). A bad label never fails the others.
#[utoipa::path(post, path = "/v1/labels", tag = "decisions", request_body = LabelBatch, responses((status = 200, body = LabelBatchResult), (status = 422, description = "Invalid input (too many labels); `error.field` names it", body = ErrorResponse)))]
pub async fn label_batch(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    crate::body::JsonBody(batch): crate::body::JsonBody<LabelBatch>,
) -> Result<Json<LabelBatchResult>, ApiError> {
    use sentinel_catalog::{LabelOutcome, MAX_LABEL_BATCH};
    if batch.labels.len() > MAX_LABEL_BATCH {
        return Err(ApiError::invalid_body(
            "labels",
            &format!(
                "{} labels; a batch carries at most {MAX_LABEL_BATCH}",
                batch.labels.len()
            ),
        ));
    }
    // Items that do not read as labels keep their place in the answer.
    let mut read = Vec::with_capacity(batch.labels.len());
    let mut inputs = Vec::new();
    for item in batch.labels {
        match crate::label_items::read(item) {
            Ok(input) => {
                inputs.push(input);
                read.push(None);
            }
            Err(rejected) => read.push(Some(*rejected)),
        }
    }
    let mut decided = state
        .catalog
        .label_batch(inputs, &caller.name)
        .await?
        .into_iter();
    let results: Vec<LabelOutcome> = read
        .into_iter()
        .map(|r| r.or_else(|| decided.next()))
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::internal("label batch", "fewer outcomes than labels"))?;
    let mut answer = LabelBatchResult {
        stored: 0,
        unchanged: 0,
        rejected: 0,
        results: Vec::new(),
    };
    for outcome in &results {
        match outcome {
            LabelOutcome::Stored { .. } => answer.stored += 1,
            LabelOutcome::Unchanged { .. } => answer.unchanged += 1,
            LabelOutcome::Rejected { field, .. } => {
                answer.rejected += 1;
                crate::metrics::label_rejected(field);
            }
        }
    }
    metrics::counter!(crate::metrics::LABELS_STORED).increment(answer.stored as u64);
    answer.results = results;
    Ok(Json(answer))
}

/// `GET /v1/decisions/{transaction_id}/label`
#[utoipa::path(get, path = "/v1/decisions/{transaction_id}/label", tag = "decisions", params(("transaction_id" = String, Path)), responses((status = 200, body = sentinel_catalog::Label), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn get_label(
    State(state): State<ApiState>,
    Path(transaction_id): Path<String>,
) -> Result<Json<sentinel_catalog::Label>, ApiError> {
    state
        .catalog
        .label_of(&transaction_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no label for transaction {transaction_id}")))
}

/// `GET /v1/users/{user_id}/transactions`: the user's transaction history with its decisions
/// (the same listing as `/decisions`, under the name analysts look for).
#[utoipa::path(get, path = "/v1/users/{user_id}/transactions", tag = "users", params(("user_id" = String, Path), UserPage), responses((status = 200, body = Vec<Decision>), (status = 400, body = ErrorResponse)))]
pub async fn user_transactions(
    state: State<ApiState>,
    user_id: Path<String>,
    page: crate::body::Params<UserPage>,
) -> Result<Response, ApiError> {
    user_decisions(state, user_id, page).await
}
