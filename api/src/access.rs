//! What a route may need from its caller. Each route's rule is declared beside the route, in
//! the route table (`api/src/routes.rs`).

use axum::http::Method;

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nobody is asked: health, the API description and the dashboard's static files.
    Public,
    /// Open for Prometheus unless `[auth] metrics_require_token` is set (then any role).
    Metrics,
    /// Submitting transactions: `ingest` and `admin`.
    Ingest,
    /// Reading decisions, aggregates, users, the live stream and the cluster's members:
    /// `viewer` and above.
    Read,
    /// Reading the catalogue, models and alerts, labelling, backtests, rule tests and alert
    /// retries: `analyst` and `admin`.
    Analyst,
    /// Changing rules, lists, models and keys: `admin`.
    Admin,
}

/// What `method path` needs (`path` as routed, e.g. `/v1/rules/{id}`), from the route table
/// (`api/src/routes.rs`); `None` for a route that is not declared there, which the guard denies.
/// `HEAD` is answered like `GET`.
pub fn required(method: &Method, path: &str) -> Option<Access> {
    crate::routes::rule(method, path).map(|rule| rule.access)
}
