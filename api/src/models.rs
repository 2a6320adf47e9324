//! `/v1/models`: machine-learned model artifacts: upload, list, activate, roll back.

use crate::auth::Caller;
use crate::body::Params;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sentinel_catalog::{Deployment, ModelRole, ModelSummary};
use serde::{Deserialize, Serialize};

/// Largest model artifact accepted (the API's general body limit is far smaller).
pub const MAX_MODEL_BYTES: usize = 16 * 1024 * 1024;

/// Every uploaded model and which serve.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelList {
    /// Champion, challenger and earlier champions.
    pub deployment: Deployment,
    /// Newest upload first.
    pub models: Vec<ModelSummary>,
}

/// What an activation, rollback or challenger stop changed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelChange {
    /// The model concerned.
    pub model_id: String,
    /// Champion and challenger now.
    pub deployment: Deployment,
    /// The policy version that carries the change; decisions record it.
    pub policy_version: u64,
}

/// How to activate.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivateQuery {
    /// `champion` (default): scores decisions and rules see it; `challenger`: scored in shadow.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub role: ModelRole,
}

/// `POST /v1/models`: the body is a model artifact as `sentinel train` writes it.
#[utoipa::path(post, path = "/v1/models", tag = "models", request_body(content = Object, description = "A model artifact (JSON) written by `sentinel train`", content_type = "application/json"), responses((status = 201, body = ModelSummary), (status = 422, description = "Not a valid artifact for this build (corrupt, truncated, wrong features or format); `error.field` is `model`", body = ErrorResponse), (status = 409, description = "Already uploaded", body = ErrorResponse), (status = 413, description = "Larger than 16 MiB", body = ErrorResponse)))]
pub async fn upload(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ModelSummary>), ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(&e.body_text())
        } else {
            ApiError::invalid_body("body", &e.body_text())
        }
    })?;
    let summary = state.catalog.upload_model(&bytes, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

/// `GET /v1/models`
#[utoipa::path(get, path = "/v1/models", tag = "models", responses((status = 200, body = ModelList)))]
pub async fn list(State(state): State<ApiState>) -> Result<Json<ModelList>, ApiError> {
    Ok(Json(ModelList {
        models: state.catalog.models().await?,
        deployment: state.catalog.deployment().await,
    }))
}

/// `GET /v1/models/{id}`: the full artifact.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "models", params(("id" = String, Path)), responses((status = 200, description = "The model artifact", body = Object), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<sentinel_model::Artifact>, ApiError> {
    Ok(Json(state.catalog.model_artifact(&id).await?))
}

/// `POST /v1/models/{id}/activate?role=champion|challenger`: in force for every event
/// decided after the response.
#[utoipa::path(post, path = "/v1/models/{id}/activate", tag = "models", params(("id" = String, Path), ActivateQuery), responses((status = 200, body = ModelChange), (status = 404, description = "Not found", body = ErrorResponse), (status = 409, description = "Conflicts with the current state", body = ErrorResponse), (status = 400, description = "Bad query", body = ErrorResponse)))]
pub async fn activate(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Params(query): Params<ActivateQuery>,
) -> Result<Json<ModelChange>, ApiError> {
    let version = state
        .catalog
        .activate_model(&id, query.role, &caller.name)
        .await?;
    changed(&state, id, version).await
}

/// `POST /v1/models/rollback`: the previous champion serves again.
#[utoipa::path(post, path = "/v1/models/rollback", tag = "models", responses((status = 200, body = ModelChange), (status = 409, description = "No earlier champion", body = ErrorResponse)))]
pub async fn rollback(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<ModelChange>, ApiError> {
    let (id, version) = state.catalog.rollback_model(&caller.name).await?;
    changed(&state, id, version).await
}

/// `DELETE /v1/models/challenger`: stops scoring the challenger.
#[utoipa::path(delete, path = "/v1/models/challenger", tag = "models", responses((status = 200, body = ModelChange), (status = 404, description = "No challenger", body = ErrorResponse)))]
pub async fn clear_challenger(
    State(state): State<ApiState>,
    Caller(caller): Caller,
) -> Result<Json<ModelChange>, ApiError> {
    let id = state
        .catalog
        .deployment()
        .await
        .challenger
        .unwrap_or_default();
    let version = state.catalog.clear_challenger(&caller.name).await?;
    changed(&state, id, version).await
}

async fn changed(
    state: &ApiState,
    model_id: String,
    version: u64,
) -> Result<Json<ModelChange>, ApiError> {
    state.policy_in_force().await?;
    Ok(Json(ModelChange {
        model_id,
        deployment: state.catalog.deployment().await,
        policy_version: version,
    }))
}
