//! Liveness, readiness and metrics.

use crate::ApiState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use sentinel_catalog::RuleFilter;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// `GET /healthz`: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()), responses((status = 200, description = "The process answers", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when the node scores events, 503 while starting or draining.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()), responses((status = 200, description = "Ready", body = String), (status = 503, description = "Starting or draining", body = String)))]
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// `GET /metrics`: Prometheus text exposition; open unless `[auth] metrics_require_token`.
/// Rule hits are labelled with rule ids unless `[auth] metrics_rule_names`.
#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("bearer" = []), ("api_key" = [])), responses((status = 200, description = "Prometheus text exposition; the rule-hit counter's `rule` label is the rule's id unless `[auth] metrics_rule_names = true`", body = String)))]
pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    if !state.auth.metrics_rule_names() {
        let filter = RuleFilter {
            include_deleted: true,
            ..RuleFilter::default()
        };
        let ids: HashMap<String, String> = state
            .catalog
            .rules(&filter)
            .await
            .into_iter()
            .map(|rule| (rule.name, rule.id))
            .collect();
        text = crate::metrics_redact::rule_ids(&text, &ids);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
