//! `/v1/users/{id}/…`: a user's live state and running balance.

use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::Json;
use rust_decimal::Decimal;
use sentinel_actors::UserView;
use sentinel_event::TxnType;
use serde::Serialize;
use std::collections::BTreeMap;

/// `GET /v1/users/{id}/profile`: windows, averages, last location and devices, from the
/// user's actor.
#[utoipa::path(get, path = "/v1/users/{user_id}/profile", tag = "users", params(("user_id" = String, Path)), responses((status = 200, body = UserView), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn profile(
    State(state): State<ApiState>,
    Path(user_id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let view = state
        .decider
        .user_state(&user_id)
        .await
        .ok_or_else(|| ApiError::unavailable("the user's actor did not answer; try again"))?;
    if view.seq == 0 {
        return Err(ApiError::not_found(format!(
            "no transactions for user {user_id}"
        )));
    }
    Ok(Json(view))
}

/// A running balance per currency.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Balance {
    /// The user.
    pub user_id: String,
    /// Credits minus debits and transfers, exact, per currency.
    #[schema(value_type = BTreeMap<String, String>)]
    pub balances: BTreeMap<String, Decimal>,
    /// Transactions counted.
    pub transactions: u64,
}

/// `GET /v1/users/{id}/balance`: credits add, debits and transfers (and untyped transactions)
/// subtract, over every stored transaction of the user.
#[utoipa::path(get, path = "/v1/users/{user_id}/balance", tag = "users", params(("user_id" = String, Path)), responses((status = 200, body = Balance), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn balance(
    State(state): State<ApiState>,
    Path(user_id): Path<String>,
) -> Result<Json<Balance>, ApiError> {
    let mut balances: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut transactions = 0;
    let mut after = 0;
    loop {
        let page = state
            .store
            .decisions_for_user(&user_id, after, 1_000)
            .await
            .map_err(|e| ApiError::internal("reading a user's decisions failed", e))?;
        for d in &page {
            let e = &d.event;
            let signed = match e.kind {
                Some(TxnType::Credit) => e.amount,
                _ => -e.amount,
            };
            *balances.entry(e.currency.clone()).or_default() += signed;
            transactions += 1;
            after = d.user_seq;
        }
        if page.len() < 1_000 {
            break;
        }
    }
    if transactions == 0 {
        return Err(ApiError::not_found(format!(
            "no transactions for user {user_id}"
        )));
    }
    Ok(Json(Balance {
        user_id,
        balances,
        transactions,
    }))
}
