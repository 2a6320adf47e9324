//! JSON responses of what a store read returned, encoded where the store runs its reads.
//!
//! A page of 100 decisions takes about a millisecond to encode. On the async workers, a flood
//! of such reads would take that time from scoring, which runs on the same workers; in the
//! store's read lane ([`Store::run_read_work`]) the encoding counts against the same bound as
//! the reads themselves (`[store] max_concurrent_reads`).

use crate::ApiError;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use sentinel_store::Store;
use serde::Serialize;

/// `value` as a JSON response (what `axum::Json` answers), encoded in `store`'s read lane.
pub async fn read_json<T: Serialize + Send + 'static>(
    store: &dyn Store,
    value: T,
) -> Result<Response, ApiError> {
    let encoded = sentinel_store::on_read_lane(store, move || serde_json::to_vec(&value))
        .await
        .map_err(|e| ApiError::internal("encoding a response failed", e))?
        .map_err(|e| ApiError::internal("encoding a response failed", e))?;
    let json = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, json)], encoded).into_response())
}
