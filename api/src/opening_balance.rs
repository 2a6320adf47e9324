//! `PUT /v1/users/{id}/opening-balance`: what a user's account held before the first
//! transaction the node decided, per currency. `GET …/balance` adds it to the running total.
//!
//! One record per user and currency (kind `opening_balance`, key `user␟currency`: user ids
//! never contain control characters, so the unit separator makes a user's prefix unambiguous).

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sentinel_store::{RecordKind, RecordWrite, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Separates the user id from the currency in a record key.
const SEPARATOR: char = '\u{1f}';

/// Longest user id accepted, as for events.
const MAX_USER_CHARS: usize = 128;

/// An opening balance as submitted.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningBalanceRequest {
    /// ISO 4217 currency code, e.g. `EUR`.
    pub currency: String,
    /// Exact decimal amount, as a string (`"1250.00"`) or a number; may be negative.
    #[schema(value_type = String, example = "1250.00")]
    pub amount: serde_json::Value,
}

/// An opening balance as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpeningBalance {
    /// The user.
    pub user_id: String,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Exact amount.
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// When it was set.
    pub set_at: DateTime<Utc>,
    /// Who set it.
    pub set_by: String,
}

/// `PUT /v1/users/{id}/opening-balance`: sets the user's opening balance in one currency.
/// Repeating the same amount changes nothing and writes no audit entry.
#[utoipa::path(put, path = "/v1/users/{user_id}/opening-balance", tag = "users", params(("user_id" = String, Path)), request_body = OpeningBalanceRequest, responses((status = 200, body = OpeningBalance), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse)))]
pub async fn put(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(user_id): Path<String>,
    JsonBody(request): JsonBody<OpeningBalanceRequest>,
) -> Result<Json<OpeningBalance>, ApiError> {
    check_user(&user_id)?;
    if !sentinel_event::is_currency(&request.currency) {
        return Err(ApiError::invalid_body(
            "currency",
            &format!(
                "`{}` is not an ISO 4217 currency code",
                request.currency.chars().take(16).collect::<String>()
            ),
        ));
    }
    let amount = parse_amount(&request.amount)?;
    let key = format!("{user_id}{SEPARATOR}{}", request.currency);
    let before = read(state.store.as_ref(), &key).await?;
    if let Some(before) = before.as_ref().filter(|b| b.amount == amount) {
        return Ok(Json(before.clone()));
    }
    let record = OpeningBalance {
        user_id: user_id.clone(),
        currency: request.currency,
        amount,
        set_at: Utc::now(),
        set_by: caller.name.clone(),
    };
    let value = serde_json::to_vec(&record)
        .map_err(|e| ApiError::internal("encoding an opening balance", e))?;
    state
        .catalog
        .commit_audited(
            vec![RecordWrite {
                kind: RecordKind::OpeningBalance,
                key,
                value: Some(value),
            }],
            "opening_balance.set",
            format!("user/{user_id}/opening-balance/{}", record.currency),
            &caller.name,
            before.and_then(|b| serde_json::to_value(b).ok()),
            serde_json::to_value(&record).ok(),
        )
        .await?;
    Ok(Json(record))
}

/// The user's opening balances by currency.
pub async fn of_user(
    store: &dyn Store,
    user_id: &str,
) -> Result<BTreeMap<String, Decimal>, ApiError> {
    let prefix = format!("{user_id}{SEPARATOR}");
    // One page holds them all: there are fewer currencies than this.
    let rows = store
        .scan_records(RecordKind::OpeningBalance, &prefix, None, 1_000)
        .await
        .map_err(|e| ApiError::internal("reading opening balances", e))?;
    rows.into_iter()
        .map(|(_, bytes)| {
            serde_json::from_slice::<OpeningBalance>(&bytes)
                .map(|b| (b.currency, b.amount))
                .map_err(|e| ApiError::internal("decoding an opening balance", e))
        })
        .collect()
}

async fn read(store: &dyn Store, key: &str) -> Result<Option<OpeningBalance>, ApiError> {
    let bytes = store
        .record(RecordKind::OpeningBalance, key)
        .await
        .map_err(|e| ApiError::internal("reading an opening balance", e))?;
    bytes
        .map(|b| serde_json::from_slice(&b))
        .transpose()
        .map_err(|e| ApiError::internal("decoding an opening balance", e))
}

/// The path's user id obeys the rules of an event's `user_id`.
fn check_user(user_id: &str) -> Result<(), ApiError> {
    if user_id.is_empty() || user_id.chars().count() > MAX_USER_CHARS {
        return Err(ApiError::invalid_parameter(
            "user_id",
            &format!("must be 1 to {MAX_USER_CHARS} characters"),
        ));
    }
    if user_id.chars().any(char::is_control) {
        return Err(ApiError::invalid_parameter(
            "user_id",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// An exact decimal from a JSON string or number.
fn parse_amount(value: &serde_json::Value) -> Result<Decimal, ApiError> {
    let text = match value {
        serde_json::Value::String(s) => s.trim().to_owned(),
        // serde_json prints numbers in their shortest round-trip form: the sender's digits.
        serde_json::Value::Number(n) => n.to_string(),
        _ => {
            return Err(ApiError::invalid_body(
                "amount",
                "must be a decimal amount as a string or a number",
            ))
        }
    };
    Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| {
            ApiError::invalid_body(
                "amount",
                &format!(
                    "`{}` is not a decimal number",
                    text.chars().take(32).collect::<String>()
                ),
            )
        })
}
