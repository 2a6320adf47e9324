//! The delivery actor: drains the alert outbox into the sinks.
//!
//! Every `poll_interval` it reads the pending alerts from the store and attempts the due ones
//! (a bounded number at once). A failure schedules the next attempt with exponential backoff
//! and jitter; after `max_attempts` the alert is dead-lettered (`failed`). Each sink has a
//! circuit breaker: after `breaker_failures` consecutive failures its alerts wait, untouched,
//! for `breaker_cooldown`, then one trial attempt decides whether the breaker closes. Status
//! lives in the store, so a restarted node resumes where the last one stopped; an alert whose
//! delivery succeeded just before a crash may be sent again with the same delivery id.

use crate::config::{AlertsConfig, SinkConfig};
use crate::metrics as m;
use crate::payload;
use crate::signature::{self, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use chrono::Utc;
use futures::StreamExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand::Rng;
use sentinel_store::outbox::{self, AlertRecord, AlertStatus};
use sentinel_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delivery attempts in flight at once.
const CONCURRENT_DELIVERIES: usize = 16;
/// Pending alerts read per store scan.
const SCAN_PAGE: usize = 512;

/// The delivery actor.
pub struct AlertDelivery;

/// What the delivery actor starts with.
pub struct DeliveryArgs {
    /// Where the outbox lives.
    pub store: Arc<dyn Store>,
    /// Sinks, retry and breaker settings.
    pub config: AlertsConfig,
}

/// Messages of the delivery actor.
#[derive(Debug)]
pub enum DeliveryMessage {
    /// Attempt every due pending alert, then schedule the next pass.
    Pass,
}

// Local only: the delivery actor is never addressed across the cluster.
impl ractor::Message for DeliveryMessage {}

/// The delivery actor's state.
pub struct DeliveryState {
    store: Arc<dyn Store>,
    config: AlertsConfig,
    client: reqwest::Client,
    breakers: HashMap<String, Breaker>,
}

/// A per-sink circuit breaker.
#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

/// How many alerts a sink may be sent in this pass.
#[derive(Debug, PartialEq)]
enum Permit {
    All,
    OneTrial,
    None,
}

impl Breaker {
    fn permit(&self, now: Instant) -> Permit {
        match self.open_until {
            None => Permit::All,
            Some(until) if now >= until => Permit::OneTrial,
            Some(_) => Permit::None,
        }
    }

    fn record(&mut self, ok: bool, config: &AlertsConfig, sink: &str) {
        if ok {
            if self.open_until.take().is_some() {
                tracing::info!(sink, "alert sink recovered; circuit breaker closed");
            }
            self.consecutive_failures = 0;
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= config.breaker_failures.max(1) {
            if self.open_until.is_none() {
                tracing::warn!(sink, "alert sink keeps failing; circuit breaker open");
            }
            self.open_until =
                Some(Instant::now() + Duration::from_millis(config.breaker_cooldown_ms));
        }
    }
}

impl Actor for AlertDelivery {
    type Msg = DeliveryMessage;
    type State = DeliveryState;
    type Arguments = DeliveryArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: DeliveryArgs,
    ) -> Result<DeliveryState, ActorProcessingErr> {
        // Never follow a redirect: a 307/308 would re-post the signed alert wherever the
        // receiver points. A redirect is a failed delivery.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(args.config.timeout())
            .user_agent(concat!("SentinelStream-Alerts/", env!("CARGO_PKG_VERSION")))
            .build()?;
        myself.send_message(DeliveryMessage::Pass)?;
        Ok(DeliveryState {
            store: args.store,
            config: args.config,
            client,
            breakers: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: DeliveryMessage,
        state: &mut DeliveryState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DeliveryMessage::Pass => {
                if let Err(e) = state.pass().await {
                    tracing::warn!(error = %e, "alert delivery pass failed; trying again later");
                }
                // Scheduled after the pass, so slow passes never pile up messages.
                let every = Duration::from_millis(state.config.poll_interval_ms);
                myself.send_after(every, || DeliveryMessage::Pass);
            }
        }
        Ok(())
    }
}

impl DeliveryState {
    /// Attempts every due pending alert whose sink's breaker lets it through.
    async fn pass(&mut self) -> Result<(), sentinel_store::StoreError> {
        let now = Instant::now();
        let wall = Utc::now();
        let mut due = Vec::new();
        let mut trial_used: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = outbox::list(
                &*self.store,
                AlertStatus::Pending,
                after.as_deref(),
                SCAN_PAGE,
            )
            .await?;
            let last_page = page.len() < SCAN_PAGE;
            after = page.last().map(|a| a.id.clone());
            for alert in page {
                if alert.next_attempt_at > wall {
                    continue;
                }
                let permit = self
                    .breakers
                    .get(&alert.sink)
                    .map_or(Permit::All, |b| b.permit(now));
                match permit {
                    Permit::All => due.push(alert),
                    Permit::OneTrial if !trial_used.contains(&alert.sink) => {
                        trial_used.push(alert.sink.clone());
                        due.push(alert);
                    }
                    Permit::OneTrial | Permit::None => {}
                }
            }
            if last_page {
                break;
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        let attempts = futures::stream::iter(due)
            .map(|alert| {
                let this = &*self;
                async move {
                    let outcome = this.attempt(&alert).await;
                    (alert, outcome)
                }
            })
            .buffer_unordered(CONCURRENT_DELIVERIES)
            .collect::<Vec<_>>()
            .await;
        for (alert, outcome) in attempts {
            self.settle(alert, outcome).await;
        }
        Ok(())
    }

    /// One delivery attempt: `Ok` when the sink answered 2xx.
    async fn attempt(&self, alert: &AlertRecord) -> Result<(), String> {
        let Some(sink) = self.config.sinks.iter().find(|s| s.name == alert.sink) else {
            return Err(format!("sink `{}` is no longer configured", alert.sink));
        };
        let decision = self
            .store
            .decision(&alert.transaction_id)
            .await
            .map_err(|e| format!("reading decision: {e}"))?
            .ok_or_else(|| format!("decision {} not found", alert.transaction_id))?;
        let body = payload::body(sink.kind, alert, &decision, &self.config.public_base_url);
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        if alert.attempts > 0 {
            metrics::counter!(m::RETRIED, "sink" => alert.sink.clone()).increment(1);
        }
        let started = Instant::now();
        let result = send(&self.client, sink, &alert.id, body).await;
        metrics::histogram!(m::DELIVERY_SECONDS, "sink" => alert.sink.clone())
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Records an attempt's outcome in the store and the sink's breaker.
    async fn settle(&mut self, mut alert: AlertRecord, outcome: Result<(), String>) {
        let config = &self.config;
        self.breakers.entry(alert.sink.clone()).or_default().record(
            outcome.is_ok(),
            config,
            &alert.sink,
        );
        alert.attempts = alert.attempts.saturating_add(1);
        let now = Utc::now();
        match outcome {
            Ok(()) => {
                alert.status = AlertStatus::Delivered;
                alert.delivered_at = Some(now);
                alert.last_error = None;
                metrics::counter!(m::DELIVERED, "sink" => alert.sink.clone()).increment(1);
            }
            Err(error) if alert.attempts >= config.max_attempts_for(&alert.sink) => {
                tracing::warn!(alert = %alert.id, sink = %alert.sink, %error,
                    attempts = alert.attempts, "alert dead-lettered");
                alert.status = AlertStatus::Failed;
                alert.last_error = Some(error);
                metrics::counter!(m::FAILED, "sink" => alert.sink.clone()).increment(1);
            }
            Err(error) => {
                tracing::debug!(alert = %alert.id, sink = %alert.sink, %error,
                    attempts = alert.attempts, "alert delivery failed; will retry");
                alert.last_error = Some(error);
                let wait = backoff(config, alert.attempts, &mut rand::rng());
                alert.next_attempt_at =
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            }
        }
        if let Err(e) = outbox::save(&*self.store, AlertStatus::Pending, &alert).await {
            // The alert stays pending and is attempted again: at-least-once, same delivery id.
            tracing::warn!(alert = %alert.id, error = %e, "recording an alert's status failed");
        }
    }
}

/// POSTs `body` to `sink` with the delivery-id, timestamp and (when a secret is set)
/// signature headers.
async fn send(
    client: &reqwest::Client,
    sink: &SinkConfig,
    delivery_id: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let timestamp = Utc::now().timestamp();
    let mut request = client
        .post(&sink.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, delivery_id)
        .header(TIMESTAMP_HEADER, timestamp.to_string());
    if let Some(secret) = &sink.secret {
        request = request.header(SIGNATURE_HEADER, signature::sign(secret, timestamp, &body));
    }
    let response = request.body(body).send().await.map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// A failed request in words for the outbox (`GET /v1/alerts`) and the log, with its causes
/// but never its URL: Slack and Discord webhook URLs carry their secret token.
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let error = error.without_url();
    let mut text = format!("request failed: {error}");
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// The wait before attempt `attempts + 1`: `initial · 2^(attempts-1)`, capped, with jitter
/// (uniform in the upper half) so that many alerts failing together do not retry together.
fn backoff(config: &AlertsConfig, attempts: u32, rng: &mut impl Rng) -> Duration {
    let exponent = attempts.saturating_sub(1).min(30);
    let full = config
        .initial_backoff_ms
        .saturating_mul(1u64 << exponent)
        .min(config.max_backoff_ms)
        .max(1);
    Duration::from_millis(rng.random_range(full / 2..=full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let config = AlertsConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            ..AlertsConfig::default()
        };
        let mut rng = rand::rng();
        for _ in 0..100 {
            let first = backoff(&config, 1, &mut rng).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = backoff(&config, 3, &mut rng).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let late = backoff(&config, 40, &mut rng).as_millis();
            assert!((500..=1_000).contains(&late), "{late}");
        }
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_allows_one_trial_after_cooldown() {
        let config = AlertsConfig {
            breaker_failures: 2,
            breaker_cooldown_ms: 0,
            ..AlertsConfig::default()
        };
        let mut breaker = Breaker::default();
        breaker.record(false, &config, "s");
        assert_eq!(breaker.permit(Instant::now()), Permit::All);
        breaker.record(false, &config, "s");
        assert_eq!(breaker.permit(Instant::now()), Permit::OneTrial);
        breaker.record(true, &config, "s");
        assert_eq!(breaker.permit(Instant::now()), Permit::All);

        let closed_long = AlertsConfig {
            breaker_cooldown_ms: 3_600_000,
            ..config
        };
        breaker.record(false, &closed_long, "s");
        breaker.record(false, &closed_long, "s");
        assert_eq!(breaker.permit(Instant::now()), Permit::None);
    }
}
