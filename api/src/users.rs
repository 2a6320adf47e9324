//! `/v1/users/{id}/…`: a user's live state and running balance.

use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::Json;
use rust_decimal::Decimal;
use sentinel_engine::UserView;
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
    /// Opening balance plus credits minus debits and transfers of approved and reviewed
    /// transactions, exact, per currency.
    #[schema(value_type = BTreeMap<String, String>)]
    pub balances: BTreeMap<String, Decimal>,
    /// The opening balances included, per currency.
    #[schema(value_type = BTreeMap<String, String>)]
    pub opening: BTreeMap<String, Decimal>,
    /// Transactions that moved money (declined ones did not).
    pub transactions: u64,
}

/// `GET /v1/users/{id}/balance`: the opening balance plus the running total the user's actor
/// maintains as it decides (see `sentinel_engine::Ledger`): credits add, debits and transfers
/// (and untyped transactions) subtract, declines count for nothing. Never scans the history.
#[utoipa::path(get, path = "/v1/users/{user_id}/balance", tag = "users", params(("user_id" = String, Path)), responses((status = 200, body = Balance), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn balance(
    State(state): State<ApiState>,
    Path(user_id): Path<String>,
) -> Result<Json<Balance>, ApiError> {
    let view = state
        .decider
        .user_state(&user_id)
        .await
        .ok_or_else(|| ApiError::unavailable("the user's actor did not answer; try again"))?;
    let ledger = view
        .ledger
        .ok_or_else(|| ApiError::unavailable("the user's balance is being rebuilt; try again"))?;
    let opening = crate::opening_balance::of_user(state.store.as_ref(), &user_id).await?;
    if view.seq == 0 && opening.is_empty() {
        return Err(ApiError::not_found(format!(
            "no transactions for user {user_id}"
        )));
    }
    let mut balances = opening.clone();
    for (currency, moved) in ledger.totals {
        *balances.entry(currency).or_default() += moved;
    }
    Ok(Json(Balance {
        user_id,
        balances,
        opening,
        transactions: ledger.counted,
    }))
}
