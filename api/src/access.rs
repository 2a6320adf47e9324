//! The access table: the one place that says what each route needs.

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

/// Every route the router serves, with what it needs. A route missing here is denied, and
/// the matrix test fails for every documented path without an entry.
const TABLE: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    ("GET", "/metrics", Access::Metrics),
    ("GET", "/openapi.json", Access::Public),
    ("GET", "/docs", Access::Public),
    ("GET", "/", Access::Public),
    ("GET", "/assets/dashboard.css", Access::Public),
    ("GET", "/assets/dashboard.js", Access::Public),
    ("GET", "/favicon.svg", Access::Public),
    ("POST", "/v1/transactions", Access::Ingest),
    ("POST", "/v1/transactions/screen", Access::Ingest),
    ("GET", "/v1/decisions", Access::Read),
    ("GET", "/v1/decisions/{transaction_id}", Access::Read),
    ("GET", "/v1/decisions/{transaction_id}/label", Access::Read),
    (
        "POST",
        "/v1/decisions/{transaction_id}/label",
        Access::Analyst,
    ),
    ("POST", "/v1/labels", Access::Analyst),
    ("GET", "/v1/aggregates", Access::Read),
    ("GET", "/v1/users/{user_id}/profile", Access::Read),
    ("GET", "/v1/users/{user_id}/balance", Access::Read),
    ("PUT", "/v1/users/{user_id}/opening-balance", Access::Admin),
    ("GET", "/v1/users/{user_id}/transactions", Access::Read),
    ("GET", "/v1/users/{user_id}/decisions", Access::Read),
    ("GET", "/v1/stream", Access::Read),
    ("GET", "/v1/rules", Access::Analyst),
    ("GET", "/v1/rules/{id}", Access::Analyst),
    ("GET", "/v1/rules/{id}/versions", Access::Analyst),
    ("POST", "/v1/rules/test", Access::Analyst),
    ("POST", "/v1/rules", Access::Admin),
    ("PUT", "/v1/rules/{id}", Access::Admin),
    ("DELETE", "/v1/rules/{id}", Access::Admin),
    ("POST", "/v1/rules/{id}/rollback", Access::Admin),
    ("GET", "/v1/lists", Access::Analyst),
    ("GET", "/v1/lists/{name}", Access::Analyst),
    ("POST", "/v1/lists", Access::Admin),
    ("PUT", "/v1/lists/{name}", Access::Admin),
    ("DELETE", "/v1/lists/{name}", Access::Admin),
    ("POST", "/v1/lists/{name}/items", Access::Admin),
    ("DELETE", "/v1/lists/{name}/items/{value}", Access::Admin),
    ("GET", "/v1/audit", Access::Analyst),
    ("POST", "/v1/backtests", Access::Analyst),
    ("GET", "/v1/backtests/{id}", Access::Analyst),
    ("GET", "/v1/models", Access::Analyst),
    ("GET", "/v1/models/{id}", Access::Analyst),
    ("POST", "/v1/models", Access::Admin),
    ("POST", "/v1/models/{id}/activate", Access::Admin),
    ("POST", "/v1/models/rollback", Access::Admin),
    ("DELETE", "/v1/models/challenger", Access::Admin),
    ("GET", "/v1/alerts", Access::Analyst),
    ("POST", "/v1/alerts/{id}/retry", Access::Analyst),
    ("GET", "/v1/cluster", Access::Read),
    ("GET", "/v1/keys", Access::Admin),
    ("POST", "/v1/keys", Access::Admin),
    ("DELETE", "/v1/keys/{id}", Access::Admin),
];

/// What `method path` needs (`path` as routed, e.g. `/v1/rules/{id}`); `None` when the table
/// has no entry. `HEAD` is answered like `GET`.
pub fn required(method: &Method, path: &str) -> Option<Access> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    TABLE
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, access)| *access)
}
