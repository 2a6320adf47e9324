//! `GET /v1/audit`: who changed what, when, before and after.

use crate::body::Params;
use crate::read_json::read_json;
use crate::ErrorResponse;
use crate::{ApiError, ApiState};
use axum::extract::State;
use axum::response::Response;
use sentinel_catalog::AuditEntry;
use serde::{Deserialize, Serialize};

/// Audit query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this entity, e.g. `rule/<id>` or `list/<name>`.
    pub entity: Option<String>,
    /// Cursor from a previous page's `next`.
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

/// One page of the audit log, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Cursor for the next page, absent on the last.
    pub next: Option<String>,
}

/// `GET /v1/audit?entity=&after=&limit=`
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = AuditPage), (status = 400, body = ErrorResponse)))]
pub async fn list(
    State(state): State<ApiState>,
    Params(query): Params<AuditQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_parameter(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    if let Some(after) = &query.after {
        let well_formed =
            after.len() == 27 && after.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        if !well_formed {
            return Err(ApiError::invalid_parameter(
                "after",
                "is not a cursor from this API",
            ));
        }
    }
    let rows = state
        .catalog
        .audit(query.entity.as_deref(), query.after.as_deref(), limit)
        .await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|(k, _)| k.clone()))
        .flatten();
    let page = AuditPage {
        entries: rows.into_iter().map(|(_, e)| e).collect(),
        next,
    };
    read_json(&*state.store, page).await
}
