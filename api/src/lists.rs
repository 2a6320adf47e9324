//! `/v1/lists`: named lists rules use as `@name`.

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sentinel_catalog::{ItemChange, ListItem, ListRecord};
use serde::{Deserialize, Serialize};

/// Every list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Lists {
    /// By name.
    pub lists: Vec<ListRecord>,
}

/// A list as submitted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct NewList {
    /// `a-z`, `0-9` and `_`, at most 64 characters.
    pub name: String,
    /// What the list is for.
    #[serde(default)]
    pub description: String,
    /// Items, each with an optional expiry.
    #[serde(default)]
    pub items: Vec<ListItem>,
}

/// A list's new content.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct ListContent {
    /// What the list is for.
    #[serde(default)]
    pub description: String,
    /// The complete new set of items.
    pub items: Vec<ListItem>,
}

/// `GET /v1/lists`
#[utoipa::path(get, path = "/v1/lists", tag = "lists", responses((status = 200, body = Lists)))]
pub async fn list(State(state): State<ApiState>) -> Json<Lists> {
    Json(Lists {
        lists: state.catalog.lists().await,
    })
}

/// `POST /v1/lists`
#[utoipa::path(post, path = "/v1/lists", tag = "lists", request_body = NewList, responses((status = 201, body = ListRecord), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse), (status = 409, description = "Conflicts with the current state", body = ErrorResponse)))]
pub async fn create(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    JsonBody(new): JsonBody<NewList>,
) -> Result<(StatusCode, Json<ListRecord>), ApiError> {
    let list = state
        .catalog
        .put_list(&new.name, new.description, new.items, true, &caller.name)
        .await?;
    state.policy_in_force().await?;
    Ok((StatusCode::CREATED, Json(list)))
}

/// `GET /v1/lists/{name}`
#[utoipa::path(get, path = "/v1/lists/{name}", tag = "lists", params(("name" = String, Path)), responses((status = 200, body = ListRecord), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn get(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<ListRecord>, ApiError> {
    Ok(Json(state.catalog.list(&name).await?))
}

/// `PUT /v1/lists/{name}`: replaces description and items.
#[utoipa::path(put, path = "/v1/lists/{name}", tag = "lists", params(("name" = String, Path)), request_body = ListContent, responses((status = 200, body = ListRecord), (status = 404, description = "Not found", body = ErrorResponse), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse)))]
pub async fn update(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    JsonBody(content): JsonBody<ListContent>,
) -> Result<Json<ListRecord>, ApiError> {
    replace_list(&state, &caller, &name, content.description, content.items).await
}

/// `DELETE /v1/lists/{name}`: refused while a rule uses the list.
#[utoipa::path(delete, path = "/v1/lists/{name}", tag = "lists", params(("name" = String, Path)), responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = ErrorResponse), (status = 409, description = "Conflicts with the current state", body = ErrorResponse)))]
pub async fn delete(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.catalog.delete_list(&name, &caller.name).await?;
    state.policy_in_force().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/lists/{name}/items`: adds (or re-dates) one item.
#[utoipa::path(post, path = "/v1/lists/{name}/items", tag = "lists", params(("name" = String, Path)), request_body = ListItem, responses((status = 200, body = ListRecord), (status = 404, description = "Not found", body = ErrorResponse), (status = 422, description = "Invalid input; `error.field` names it", body = ErrorResponse)))]
pub async fn add_item(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    JsonBody(item): JsonBody<ListItem>,
) -> Result<Json<ListRecord>, ApiError> {
    change_item(&state, &caller, &name, ItemChange::Add(item)).await
}

/// `DELETE /v1/lists/{name}/items/{value}`
#[utoipa::path(delete, path = "/v1/lists/{name}/items/{value}", tag = "lists", params(("name" = String, Path), ("value" = String, Path)), responses((status = 200, body = ListRecord), (status = 404, description = "Not found", body = ErrorResponse)))]
pub async fn remove_item(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path((name, value)): Path<(String, String)>,
) -> Result<Json<ListRecord>, ApiError> {
    change_item(&state, &caller, &name, ItemChange::Remove(value)).await
}

/// Applies one item change inside the catalogue's change, so concurrent ones all survive, and
/// waits until the policy using the list is in force.
async fn change_item(
    state: &ApiState,
    caller: &crate::Principal,
    name: &str,
    change: ItemChange,
) -> Result<Json<ListRecord>, ApiError> {
    let list = state
        .catalog
        .change_list_item(name, change, &caller.name)
        .await?;
    state.policy_in_force().await?;
    Ok(Json(list))
}

/// Stores a list's new description and items and waits until the policy using them is in force.
async fn replace_list(
    state: &ApiState,
    caller: &crate::Principal,
    name: &str,
    description: String,
    items: Vec<ListItem>,
) -> Result<Json<ListRecord>, ApiError> {
    let list = state
        .catalog
        .put_list(name, description, items, false, &caller.name)
        .await?;
    state.policy_in_force().await?;
    Ok(Json(list))
}
