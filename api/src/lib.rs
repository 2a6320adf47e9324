//! SentinelStream's REST API.
//!
//! [`app`] builds the router from an [`ApiState`]; the node serves it, and tests call it
//! directly with `tower::ServiceExt::oneshot`. Every error has one JSON shape, [`ApiError`].

mod error;
mod health;
mod transactions;

pub use error::ApiError;

use async_trait::async_trait;
use axum::routing::{get, post};
use axum::Router;
use sentinel_event::{DecisionError, Limits, Transaction};
use sentinel_store::{Store, Stored};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// Decides one event through the node's user actors, stores it and publishes it.
#[async_trait]
pub trait Decider: Send + Sync + 'static {
    /// Resolves with the decision of record once it is stored.
    async fn decide(&self, event: Transaction, received: Instant) -> Result<Stored, DecisionError>;
}

/// Renders the Prometheus exposition text.
pub trait MetricsRender: Send + Sync + 'static {
    /// The current metrics in Prometheus text format.
    fn render(&self) -> String;
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The scoring path.
    pub decider: Arc<dyn Decider>,
    /// Read access to stored decisions.
    pub store: Arc<dyn Store>,
    /// Validation limits for incoming events.
    pub limits: Arc<Limits>,
    /// The metrics exposition.
    pub metrics: Arc<dyn MetricsRender>,
    /// False until the node is ready to score, and again while it drains.
    pub ready: Arc<AtomicBool>,
}

/// The API router.
pub fn app(state: ApiState) -> Router {
    // The body limit sits a little above the event limit so that an oversized event still
    // reaches validation and gets its precise answer; anything larger is cut off at 413.
    let body_limit = state.limits.max_payload_bytes.saturating_mul(2).max(1024);
    Router::new()
        .route("/v1/transactions", post(transactions::score))
        .route(
            "/v1/decisions/{transaction_id}",
            get(transactions::decision),
        )
        .route(
            "/v1/users/{user_id}/decisions",
            get(transactions::user_decisions),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

#[cfg(test)]
mod tests;
