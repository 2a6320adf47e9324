//! `GET /v1/alerts` and `POST /v1/alerts/{id}/retry`: the alert outbox, read from the store.

use crate::body::Params;
use crate::read_json::read_json;
use crate::{ApiError, ApiState, ErrorResponse};
use axum::extract::{FromRef, Path, State};
use axum::response::Response;
use axum::{Json, Router};
use sentinel_store::outbox::{self, AlertRecord, AlertStatus};
use sentinel_store::Store;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The store holding the alert outbox: the node's store, or the standalone alerts process's.
#[derive(Clone)]
pub struct AlertStore(pub Arc<dyn Store>);

impl FromRef<ApiState> for AlertStore {
    fn from_ref(state: &ApiState) -> Self {
        AlertStore(Arc::clone(&state.store))
    }
}

/// `GET /v1/alerts` and `POST /v1/alerts/{id}/retry`, for any state that provides the outbox.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AlertStore: FromRef<S>,
{
    crate::routes::alert_routes(crate::routes::Table::new(Default::default()))
        .build()
        .0
}

/// Alert listing query.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// `pending` (default), `delivered` or `failed` (dead-lettered).
    pub status: Option<String>,
    /// Cursor from a previous page's `next` (an alert id).
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// One page of alerts in one status, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    /// The alerts.
    pub alerts: Vec<AlertRecord>,
    /// Cursor for the next page, absent on the last.
    pub next: Option<String>,
}

/// `GET /v1/alerts?status=&after=&limit=`
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertQuery), responses((status = 200, body = AlertPage), (status = 400, description = "Bad query parameter; `error.field` names it", body = ErrorResponse)))]
pub async fn list(
    State(AlertStore(store)): State<AlertStore>,
    Params(query): Params<AlertQuery>,
) -> Result<Response, ApiError> {
    let status = match query.status.as_deref() {
        None => AlertStatus::Pending,
        Some(text) => AlertStatus::parse(text).ok_or_else(|| {
            ApiError::invalid_parameter("status", "must be pending, delivered or failed")
        })?,
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_parameter(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let alerts = outbox::list(&*store, status, query.after.as_deref(), limit)
        .await
        .map_err(|e| ApiError::internal("reading the alert outbox failed", e))?;
    let next = (alerts.len() == limit)
        .then(|| alerts.last().map(|a| a.id.clone()))
        .flatten();
    read_json(&*store, AlertPage { alerts, next }).await
}

/// `POST /v1/alerts/{id}/retry`: makes a dead-lettered alert pending again, due now, with a
/// fresh attempt budget. The delivery actor picks it up on its next pass.
#[utoipa::path(post, path = "/v1/alerts/{id}/retry", tag = "alerts", params(("id" = String, Path, description = "The alert id")), responses((status = 200, description = "The alert, pending again", body = AlertRecord), (status = 404, description = "No such alert", body = ErrorResponse), (status = 409, description = "The alert is pending or delivered, not failed", body = ErrorResponse)))]
pub async fn retry(
    State(AlertStore(store)): State<AlertStore>,
    Path(id): Path<String>,
) -> Result<Json<AlertRecord>, ApiError> {
    let store = &*store;
    let read_failed = |e| ApiError::internal("reading the alert outbox failed", e);
    let Some(mut alert) = outbox::get(store, AlertStatus::Failed, &id)
        .await
        .map_err(read_failed)?
    else {
        for status in [AlertStatus::Pending, AlertStatus::Delivered] {
            if outbox::get(store, status, &id)
                .await
                .map_err(read_failed)?
                .is_some()
            {
                return Err(ApiError::conflict(format!(
                    "alert {id} is {}; only failed alerts can be retried",
                    status.as_str()
                )));
            }
        }
        return Err(ApiError::not_found(format!("no alert {id}")));
    };
    alert.status = AlertStatus::Pending;
    alert.attempts = 0;
    alert.next_attempt_at = chrono::Utc::now();
    outbox::save(store, AlertStatus::Failed, &alert)
        .await
        .map_err(|e| ApiError::internal("updating the alert outbox failed", e))?;
    tracing::info!(alert = %alert.id, sink = %alert.sink, "dead-lettered alert queued again");
    Ok(Json(alert))
}
