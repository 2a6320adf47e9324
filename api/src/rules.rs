//! `/v1/rules`: versioned rules, rollback and rule tests.

use crate::auth::Caller;
use crate::body::{JsonBody, Params};
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use sentinel_catalog::{RuleChange, RuleFilter, RuleTest, RuleVersion};
use sentinel_event::{parse_transaction, ParseMode};
use serde::{Deserialize, Serialize};

/// The rule list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleList {
    /// Policy version the rules make up.
    pub policy_version: u64,
    /// Current versions, highest priority first.
    pub rules: Vec<RuleVersion>,
}

/// `GET /v1/rules?mode=&name_contains=&include_deleted=`
#[utoipa::path(get, path = "/v1/rules", tag = "rules", params(RuleFilter), responses((status = 200, body = RuleList), (status = 400, body = ErrorResponse)))]
pub async fn list(
    State(state): State<ApiState>,
    Params(filter): Params<RuleFilter>,
) -> Json<RuleList> {
    Json(RuleList {
        policy_version: state.catalog.policy().rules.version,
        rules: state.catalog.rules(&filter).await,
    })
}

/// `POST /v1/rules`: creates a rule; it applies to the next event.
#[utoipa::path(post, path = "/v1/rules", tag = "rules", request_body = RuleChange, responses((status = 201, body = RuleVersion), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse), (status = 409, description = "Conflicts with the current state", body = ErrorResponse)))]
pub async fn create(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    JsonBody(change): JsonBody<RuleChange>,
) -> Result<(StatusCode, Json<RuleVersion>), ApiError> {
    let rule = state.catalog.create_rule(change, &caller.name).await?;
    state.policy_in_force().await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// `GET /v1/rules/{id}`
#[utoipa::path(get, path = "/v1/rules/{id}", tag = "rules", params(("id" = String, Path)), responses((status = 200, body = RuleVersion), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<RuleVersion>, ApiError> {
    Ok(Json(state.catalog.rule(&id).await?))
}

/// `PUT /v1/rules/{id}`: replaces the rule with a new version; answers once it applies to the
/// next event (503 if it has not reached every user actor in 5 s: stored, not yet in force).
#[utoipa::path(put, path = "/v1/rules/{id}", tag = "rules", params(("id" = String, Path)), request_body = RuleChange, responses((status = 200, body = RuleVersion), (status = 404, description = "Not found", body = ErrorResponse), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse), (status = 409, description = "Conflicts with the current state", body = ErrorResponse)))]
pub async fn update(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(change): JsonBody<RuleChange>,
) -> Result<Json<RuleVersion>, ApiError> {
    let rule = state.catalog.update_rule(&id, change, &caller.name).await?;
    state.policy_in_force().await?;
    Ok(Json(rule))
}

/// `DELETE /v1/rules/{id}`: a new, deleted version; the history stays.
#[utoipa::path(delete, path = "/v1/rules/{id}", tag = "rules", params(("id" = String, Path)), responses((status = 200, body = RuleVersion), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn delete(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<RuleVersion>, ApiError> {
    let rule = state.catalog.delete_rule(&id, &caller.name).await?;
    state.policy_in_force().await?;
    Ok(Json(rule))
}

/// Every version of a rule.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Versions {
    /// Oldest first.
    pub versions: Vec<RuleVersion>,
}

/// `GET /v1/rules/{id}/versions`
#[utoipa::path(get, path = "/v1/rules/{id}/versions", tag = "rules", params(("id" = String, Path)), responses((status = 200, body = Versions), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn versions(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Versions>, ApiError> {
    Ok(Json(Versions {
        versions: state.catalog.rule_versions(&id).await?,
    }))
}

/// Which version to make current again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct Rollback {
    /// An earlier version number.
    pub version: u32,
}

/// `POST /v1/rules/{id}/rollback`: the chosen version's content becomes a new version.
#[utoipa::path(post, path = "/v1/rules/{id}/rollback", tag = "rules", params(("id" = String, Path)), request_body = Rollback, responses((status = 200, body = RuleVersion), (status = 404, description = "Not found", body = ErrorResponse), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse), (status = 409, description = "Conflicts with the current state", body = ErrorResponse)))]
pub async fn rollback(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Rollback>,
) -> Result<Json<RuleVersion>, ApiError> {
    let rule = state
        .catalog
        .rollback_rule(&id, body.version, &caller.name)
        .await?;
    state.policy_in_force().await?;
    Ok(Json(rule))
}

/// A rule text to try on a transaction.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct TestRequest {
    /// The rule text.
    pub expression: String,
    /// The transaction (a minimal event is enough, as for `POST /v1/transactions`).
    #[schema(value_type = sentinel_event::Transaction)]
    pub transaction: Box<serde_json::value::RawValue>,
    /// The same user's earlier transactions, oldest first, to build windows and profile.
    #[serde(default)]
    #[schema(value_type = Vec<sentinel_event::Transaction>)]
    pub history: Vec<Box<serde_json::value::RawValue>>,
}

/// `POST /v1/rules/test`: evaluates a rule text without storing or deciding anything.
#[utoipa::path(post, path = "/v1/rules/test", tag = "rules", request_body = TestRequest, responses((status = 200, body = RuleTest), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse)))]
pub async fn test(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<TestRequest>,
) -> Result<Json<RuleTest>, ApiError> {
    let now = Utc::now();
    let parse = |raw: &serde_json::value::RawValue, at: &str| {
        parse_transaction(raw.get().as_bytes(), ParseMode::Lenient, &state.limits, now)
            .and_then(|(t, _)| state.decider.preview(t))
            .map_err(|e| ApiError::invalid_body(&format!("{at}.{}", e.field), &e.reason))
    };
    let transaction = parse(&request.transaction, "transaction")?;
    let history = request
        .history
        .iter()
        .enumerate()
        .map(|(i, raw)| parse(raw, &format!("history[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let result = state
        .catalog
        .test_rule(&request.expression, &transaction, &history)
        .await?;
    Ok(Json(result))
}
