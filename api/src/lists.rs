//! `/v1/lists`: named lists rules use as `@name`.

use crate::body::JsonBody;
use crate::{principal, ApiError, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sentinel_catalog::{ListItem, ListRecord};
use serde::{Deserialize, Serialize};

/// Every list.
#[derive(Serialize)]
pub struct Lists {
    /// By name.
    pub lists: Vec<ListRecord>,
}

/// A list as submitted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
pub struct ListContent {
    /// What the list is for.
    #[serde(default)]
    pub description: String,
    /// The complete new set of items.
    pub items: Vec<ListItem>,
}

/// `GET /v1/lists`
pub async fn list(State(state): State<ApiState>) -> Json<Lists> {
    Json(Lists {
        lists: state.catalog.lists().await,
    })
}

/// `POST /v1/lists`
pub async fn create(
    State(state): State<ApiState>,
    JsonBody(new): JsonBody<NewList>,
) -> Result<(StatusCode, Json<ListRecord>), ApiError> {
    let list = state
        .catalog
        .put_list(&new.name, new.description, new.items, true, principal())
        .await?;
    state.policy_in_force().await?;
    Ok((StatusCode::CREATED, Json(list)))
}

/// `GET /v1/lists/{name}`
pub async fn get(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<ListRecord>, ApiError> {
    Ok(Json(state.catalog.list(&name).await?))
}

/// `PUT /v1/lists/{name}`: replaces description and items.
pub async fn update(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    JsonBody(content): JsonBody<ListContent>,
) -> Result<Json<ListRecord>, ApiError> {
    let list = state
        .catalog
        .put_list(
            &name,
            content.description,
            content.items,
            false,
            principal(),
        )
        .await?;
    state.policy_in_force().await?;
    Ok(Json(list))
}

/// `DELETE /v1/lists/{name}`: refused while a rule uses the list.
pub async fn delete(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.catalog.delete_list(&name, principal()).await?;
    state.policy_in_force().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/lists/{name}/items`: adds (or re-dates) one item.
pub async fn add_item(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    JsonBody(item): JsonBody<ListItem>,
) -> Result<Json<ListRecord>, ApiError> {
    let current = state.catalog.list(&name).await?;
    let mut items: Vec<ListItem> = current
        .items
        .into_iter()
        .filter(|i| i.value != item.value)
        .collect();
    items.push(item);
    let list = state
        .catalog
        .put_list(&name, current.description, items, false, principal())
        .await?;
    state.policy_in_force().await?;
    Ok(Json(list))
}

/// `DELETE /v1/lists/{name}/items/{value}`
pub async fn remove_item(
    State(state): State<ApiState>,
    Path((name, value)): Path<(String, String)>,
) -> Result<Json<ListRecord>, ApiError> {
    let current = state.catalog.list(&name).await?;
    if !current.items.iter().any(|i| i.value == value) {
        return Err(ApiError::not_found(format!(
            "list {name} has no item {value}"
        )));
    }
    let items = current
        .items
        .into_iter()
        .filter(|i| i.value != value)
        .collect();
    let list = state
        .catalog
        .put_list(&name, current.description, items, false, principal())
        .await?;
    state.policy_in_force().await?;
    Ok(Json(list))
}
