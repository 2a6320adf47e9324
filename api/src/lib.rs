//! SentinelStream's REST API.
//!
//! [`app`] builds the router from an [`ApiContext`]; the node serves it, and tests call it
//! directly with `tower::ServiceExt::oneshot`. Every error has one JSON shape, [`ApiError`].

pub mod access;
pub mod alerts;
mod api_keys;
mod audit;
pub mod auth;
pub mod auth_throttle;
mod backtests;
mod body;
pub mod cluster;
pub mod content_type;
pub mod dashboard;
mod decisions;
mod error;
mod health;
pub mod heavy;
pub mod hosts;
pub mod idempotency;
pub mod key_cache;
mod label_items;
mod lists;
pub mod metrics;
mod metrics_redact;
mod models;
mod openapi;
mod openapi_refusals;
mod opening_balance;
pub mod rate_limit;
mod read_json;
mod request_id;
mod routes;
mod rules;
pub mod screen;
mod transactions;
mod users;

pub use api_keys::{sha256_hex, ApiKeys};
pub use auth::{AuthConfig, AuthMode, Authenticator, Principal, Role};
pub use backtests::Backtests;
pub use decisions::AggregateCache;
pub use error::{ApiError, ErrorDetail, ErrorResponse};
pub use idempotency::Idempotency;
pub use openapi::openapi;

use async_trait::async_trait;
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

    /// The live state of a user's actor (started if needed).
    async fn user_state(&self, user_id: &str) -> Option<sentinel_engine::UserView>;

    /// What live scoring would decide for each event now, in order, storing nothing and
    /// changing no state: no decision stored or published, no alert, no user's windows,
    /// profile or shared entities touched. An event the node cannot take (its currency, say)
    /// is answered with [`DecisionError::Invalid`].
    async fn screen(
        &self,
        events: Vec<Transaction>,
    ) -> Vec<Result<sentinel_engine::Screened, DecisionError>>;

    /// The cluster's members as each describes itself; `None` where there is no cluster.
    async fn cluster(&self) -> Option<cluster::ClusterView> {
        None
    }

    /// The event as ingestion would record it (its amount in the base currency), for rule
    /// tests that decide nothing; the default leaves it as it is.
    fn preview(&self, event: Transaction) -> Result<Transaction, sentinel_event::InvalidEvent> {
        Ok(event)
    }
}

/// Renders the Prometheus exposition text.
pub trait MetricsRender: Send + Sync + 'static {
    /// The current metrics in Prometheus text format.
    fn render(&self) -> String;
}

/// What the handlers share, behind one `Arc`: axum clones the state for every handler and
/// middleware call, so a request costs one reference count instead of one per field.
#[derive(Clone)]
pub struct ApiState(Arc<ApiContext>);

impl std::ops::Deref for ApiState {
    type Target = ApiContext;

    fn deref(&self) -> &ApiContext {
        &self.0
    }
}

/// The parts of the API state: what the node (or a test) builds and hands to [`app`].
pub struct ApiContext {
    /// The scoring path.
    pub decider: Arc<dyn Decider>,
    /// Read access to stored decisions.
    pub store: Arc<dyn Store>,
    /// Rules, lists, labels and the audit log.
    pub catalog: Arc<sentinel_catalog::Catalog>,
    /// Backtest jobs.
    pub backtests: Arc<Backtests>,
    /// Recent aggregate answers.
    pub aggregates: Arc<AggregateCache>,
    /// The newest policy version every user actor of this node has.
    pub policy_applied: tokio::sync::watch::Receiver<u64>,
    /// Validation limits for incoming events.
    pub limits: Arc<Limits>,
    /// The metrics exposition.
    pub metrics: Arc<dyn MetricsRender>,
    /// False until the node is ready to score, and again while it drains.
    pub ready: Arc<AtomicBool>,
    /// New decisions for the live dashboard's streams.
    pub live: dashboard::LiveFeed,
    /// Who may call what.
    pub auth: Arc<Authenticator>,
    /// Stored answers for `Idempotency-Key` retries.
    pub idempotency: Arc<Idempotency>,
    /// Turns for decision searches and aggregates, which scan the store.
    pub heavy_queries: Arc<heavy::HeavyQueries>,
    /// Slots for `POST /v1/transactions` requests deciding at once. A request that finds none
    /// free is refused with 503 and `Retry-After` at once: overload is refused at the edge,
    /// not queued in front of the user actors.
    pub scoring_slots: Arc<tokio::sync::Semaphore>,
}

/// The API router: the route table (`routes.rs`) with the layers every route runs.
pub fn app(context: ApiContext) -> Router {
    let state = ApiState(Arc::new(context));
    let general_limit = routes::general_body_limit(&state.limits);
    let router = routes::api()
        .router
        .clone()
        // The guard is the outer layer: idempotency keys are scoped to the caller it finds.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state.auth),
            auth::guard,
        ))
        .route_layer(axum::middleware::from_fn(content_type::require_json))
        .fallback(error::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(general_limit));
    request_id::apply(router).with_state(state)
}

/// CORS for browser clients served from other origins (`*` allows any). Without it the API is
/// same-origin only.
pub fn cors(allowed_origins: &[String]) -> Result<tower_http::cors::CorsLayer, String> {
    use axum::http::{HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let origin = if allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let origins = allowed_origins
            .iter()
            .map(|o| HeaderValue::from_str(o).map_err(|_| format!("invalid CORS origin `{o}`")))
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(origins)
    };
    Ok(CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers(Any))
}

impl ApiContext {
    /// Waits until the catalogue's current policy has reached every user actor, so that a
    /// change is in force for the very next event once its request returns.
    async fn policy_in_force(&self) -> Result<(), ApiError> {
        let version = self.catalog.policy().rules.version;
        let mut applied = self.policy_applied.clone();
        let in_force = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            applied.wait_for(|v| *v >= version),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if in_force {
            Ok(())
        } else {
            Err(ApiError::unavailable(
                "the change is stored but has not reached every user actor yet",
            ))
        }
    }
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod balance_tests;
#[cfg(test)]
mod idempotency_tests;
#[cfg(test)]
mod label_batch_tests;
#[cfg(test)]
mod lists_tests;
#[cfg(test)]
mod read_json_tests;
#[cfg(test)]
mod request_checks_tests;
#[cfg(test)]
mod screen_tests;
#[cfg(test)]
mod stream_auth_tests;
#[cfg(test)]
mod test_store;
#[cfg(test)]
mod tests;
