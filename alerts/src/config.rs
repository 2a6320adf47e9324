//! Alerting configuration: the `[alerts]` table of the node's TOML file.

use sentinel_event::Outcome;
use serde::Deserialize;
use std::time::Duration;

/// Where alerts go, which decisions raise them, and how hard delivery tries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Base URL of this node's API as receivers should reach it; alerts link to
    /// `<public_base_url>/v1/decisions/<transaction_id>`.
    pub public_base_url: String,
    /// Delivery attempts before an alert is dead-lettered (`failed`).
    pub max_attempts: u32,
    /// Wait before the first retry; doubles per attempt (with jitter) up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts.
    pub max_backoff_ms: u64,
    /// Per-request timeout; a receiver that hangs longer counts as a failed attempt.
    pub timeout_ms: u64,
    /// How often the delivery actor looks for due alerts.
    pub poll_interval_ms: u64,
    /// Consecutive failures that open a sink's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker holds deliveries to its sink back before one trial attempt.
    pub breaker_cooldown_ms: u64,
    /// At most one alert per user, per rule, per sink within this many seconds (0 disables);
    /// throttled alerts are counted in `sentinel_alerts_throttled_total`.
    pub throttle_secs: u64,
    /// Which decisions go to which sinks.
    pub routes: Vec<RouteConfig>,
    /// The notification sinks.
    pub sinks: Vec<SinkConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            public_base_url: "http://127.0.0.1:8080".into(),
            max_attempts: 8,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            timeout_ms: 5_000,
            poll_interval_ms: 500,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            throttle_secs: 600,
            routes: Vec::new(),
            sinks: Vec::new(),
        }
    }
}

impl AlertsConfig {
    /// True when at least one sink is configured.
    pub fn enabled(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// Checks that names are unique, routes name existing sinks, and numbers make sense.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            if sink.name.is_empty() || !names.insert(sink.name.as_str()) {
                return Err(format!(
                    "alerts.sinks[{i}].name `{}` is empty or not unique",
                    sink.name
                ));
            }
            if !(sink.url.starts_with("http://") || sink.url.starts_with("https://")) {
                // Not echoed: webhook URLs carry their secret token.
                return Err(format!(
                    "alerts.sinks[{i}].url (sink `{}`) is not an http(s) URL",
                    sink.name
                ));
            }
        }
        for (i, route) in self.routes.iter().enumerate() {
            if route.sinks.is_empty() {
                return Err(format!("alerts.routes[{i}].sinks is empty"));
            }
            if let Some(unknown) = route.sinks.iter().find(|s| !names.contains(s.as_str())) {
                return Err(format!(
                    "alerts.routes[{i}].sinks names `{unknown}`, which is not a configured sink"
                ));
            }
            if route.min_score.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
                return Err(format!("alerts.routes[{i}].min_score must be within 0..=1"));
            }
        }
        if self.max_attempts == 0 || self.sinks.iter().any(|s| s.max_attempts == Some(0)) {
            return Err("alerts.max_attempts must be at least 1".into());
        }
        if self.timeout_ms == 0 || self.poll_interval_ms == 0 {
            return Err("alerts.timeout_ms and alerts.poll_interval_ms must be positive".into());
        }
        Ok(())
    }

    /// Attempts before an alert to `sink` is dead-lettered.
    pub fn max_attempts_for(&self, sink: &str) -> u32 {
        self.sinks
            .iter()
            .find(|s| s.name == sink)
            .and_then(|s| s.max_attempts)
            .unwrap_or(self.max_attempts)
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// One routing rule: a decision matching every given condition is sent to `sinks`.
/// Empty lists and absent values match anything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// Names of the sinks that receive matching decisions.
    pub sinks: Vec<String>,
    /// Only these outcomes (default: `decline` and `review`).
    pub outcomes: Option<Vec<Outcome>>,
    /// Only decisions where one of these rules fired.
    pub rules: Vec<String>,
    /// Only decisions scoring at least this.
    pub min_score: Option<f64>,
    /// Only these merchant ids.
    pub merchants: Vec<String>,
    /// Only these merchant categories (MCC).
    pub categories: Vec<String>,
}

/// A notification sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique name, used in routes, metrics labels and the outbox.
    pub name: String,
    /// The message format.
    pub kind: SinkKind,
    /// Where to POST.
    pub url: String,
    /// HMAC-SHA256 signing secret (webhook sinks); unsigned when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// Overrides `alerts.max_attempts` for this sink.
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

/// The message format a sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// A generic JSON webhook with signature and delivery-id headers.
    Webhook,
    /// A Slack incoming webhook (`text` + Block Kit `blocks`).
    Slack,
    /// A Discord webhook (`content` + `embeds`).
    Discord,
}

impl SinkKind {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::Discord => "discord",
        }
    }
}
