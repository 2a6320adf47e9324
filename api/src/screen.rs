//! `POST /v1/transactions/screen`: decide a list of transactions as live scoring would, and
//! keep nothing — no stored decision, no change to any user's windows, profile or shared
//! entities, nothing published to Kafka, no alert.

use crate::body::JsonBody;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::Json;
use chrono::Utc;
use sentinel_engine::Screened;
use sentinel_event::{parse_transaction, Decision, DecisionError, ParseMode};
use serde::{Deserialize, Serialize};

/// Most transactions in one batch.
pub const MAX_BATCH: usize = 1_000;

/// Largest request body, in bytes (a full batch of ordinary events fits well).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// A batch to screen.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenRequest {
    /// 1 to 1,000 events, each as `POST /v1/transactions` takes it.
    #[schema(value_type = Vec<Object>)]
    pub transactions: Vec<serde_json::Value>,
}

/// The answers, one per submitted event, in order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScreenResponse {
    /// One per event, in the order submitted.
    pub results: Vec<ScreenResult>,
    /// Events answered with a decision.
    pub decided: usize,
    /// Events answered with an error.
    pub rejected: usize,
}

/// One event's answer: a decision or an error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScreenResult {
    /// Position in the submitted list, from 0.
    pub index: usize,
    /// What live scoring would decide now; never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The transaction id was already decided (stored, or earlier in this batch): this is
    /// that decision, as live scoring answers a redelivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Why the event got no decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

/// Why one event of a batch got no decision.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ItemError {
    /// `invalid_event` (fix the field) or `unavailable` (try again).
    pub code: &'static str,
    /// The offending field, when one is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For people.
    pub message: String,
}

/// `POST /v1/transactions/screen`: what live scoring would decide for each event now, under
/// the policy and model in force, storing nothing and changing no state. A bad event is
/// answered with its error and does not fail the batch.
#[utoipa::path(post, path = "/v1/transactions/screen", tag = "scoring", request_body = ScreenRequest, responses((status = 200, body = ScreenResponse), (status = 413, description = "Body over 8 MiB", body = ErrorResponse), (status = 422, description = "Not a batch, or more than 1,000 transactions; `error.field` names it", body = ErrorResponse)))]
pub async fn screen(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<ScreenRequest>,
) -> Result<Json<ScreenResponse>, ApiError> {
    let n = request.transactions.len();
    if !(1..=MAX_BATCH).contains(&n) {
        return Err(ApiError::invalid_body(
            "transactions",
            &format!("must hold 1 to {MAX_BATCH} transactions, got {n}"),
        ));
    }
    let now = Utc::now();
    let mut answers: Vec<Option<Result<Screened, DecisionError>>> = Vec::with_capacity(n);
    let mut events = Vec::with_capacity(n);
    for item in request.transactions {
        let bytes = serde_json::to_vec(&item)
            .map_err(|e| ApiError::internal("re-encoding a screened event", e))?;
        match parse_transaction(&bytes, ParseMode::Lenient, &state.limits, now) {
            Ok((event, _assigned)) => {
                answers.push(None);
                events.push(event);
            }
            Err(e) => answers.push(Some(Err(DecisionError::Invalid(e)))),
        }
    }
    let mut screened = state.decider.screen(events).await.into_iter();
    let results: Vec<ScreenResult> = answers
        .into_iter()
        .enumerate()
        .map(|(index, answer)| {
            let answer = answer.or_else(|| screened.next()).unwrap_or_else(|| {
                Err(DecisionError::Unavailable("the node gave no answer".into()))
            });
            result(index, answer)
        })
        .collect();
    let decided = results.iter().filter(|r| r.decision.is_some()).count();
    Ok(Json(ScreenResponse {
        rejected: results.len() - decided,
        decided,
        results,
    }))
}

/// The answer for one event, counted.
fn result(index: usize, answer: Result<Screened, DecisionError>) -> ScreenResult {
    let (outcome, decision, duplicate, error) = match answer {
        Ok(s) => ("decided", Some(s.decision), Some(s.duplicate), None),
        Err(DecisionError::Invalid(e)) => (
            "rejected",
            None,
            None,
            Some(ItemError {
                code: "invalid_event",
                message: format!("{}: {}", e.field, e.reason),
                field: Some(e.field),
            }),
        ),
        Err(e) => {
            // Store and actor failures are logged, not shown.
            tracing::warn!(error = %e, index, "screening an event failed");
            (
                "failed",
                None,
                None,
                Some(ItemError {
                    code: "unavailable",
                    field: None,
                    message: "the node could not decide this event now; try again".into(),
                }),
            )
        }
    };
    metrics::counter!(crate::metrics::SCREENED, "result" => outcome).increment(1);
    ScreenResult {
        index,
        decision,
        duplicate,
        error,
    }
}
