//! HTTP transport: each event is POSTed to `/v1/transactions` with a bounded number of
//! requests in flight; the response is the decision.

use super::pacer::Sink;
use super::{lock, now_us, Shared};
use sentinel_event::Outcome;
use sentinel_simulator::SimEvent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Longest a single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the node's REST API is.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// Credentials sent with every request.
    pub credential: Option<Credential>,
}

/// How the load generator authenticates.
#[derive(Clone)]
pub enum Credential {
    /// A JWT, sent as `Authorization: Bearer …`.
    Token(String),
    /// An API key, sent as `X-Api-Key`.
    ApiKey(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Token(_) => "Token(<redacted>)",
            Credential::ApiKey(_) => "ApiKey(<redacted>)",
        })
    }
}

impl Credential {
    /// The header carrying it.
    fn header(
        &self,
    ) -> anyhow::Result<(reqwest::header::HeaderName, reqwest::header::HeaderValue)> {
        let (name, value) = match self {
            Credential::Token(t) => (reqwest::header::AUTHORIZATION, format!("Bearer {t}")),
            Credential::ApiKey(k) => (
                reqwest::header::HeaderName::from_static("x-api-key"),
                k.clone(),
            ),
        };
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| anyhow::anyhow!("the credential has characters a header cannot carry"))?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

/// POSTs events; the pacer waits when every request slot is busy.
pub struct HttpSink {
    client: reqwest::Client,
    url: String,
    slots: Arc<Semaphore>,
    shared: Shared,
}

/// The part of the answer the load generator reads.
#[derive(serde::Deserialize)]
struct Answer {
    outcome: Outcome,
}

impl HttpSink {
    /// A client for `target`.
    pub fn new(target: &HttpTarget, shared: Shared) -> anyhow::Result<HttpSink> {
        let concurrency = target.concurrency.max(1);
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(credential) = &target.credential {
            let (name, value) = credential.header()?;
            headers.insert(name, value);
        }
        Ok(HttpSink {
            client: reqwest::Client::builder()
                .default_headers(headers)
                .timeout(REQUEST_TIMEOUT)
                .pool_max_idle_per_host(concurrency)
                .build()?,
            url: format!("{}/v1/transactions", target.url.trim_end_matches('/')),
            slots: Arc::new(Semaphore::new(concurrency)),
            shared,
        })
    }
}

impl Sink for HttpSink {
    async fn send(&mut self, event: SimEvent) -> anyhow::Result<()> {
        let slot = self.slots.clone().acquire_owned().await?;
        let body = serde_json::to_vec(&event.txn)?;
        let id = event.txn.transaction_id.clone();
        lock(&self.shared).sent(id.clone(), event.label, now_us());
        let request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let outcome = match request.send().await {
                Ok(r) if r.status().is_success() => r
                    .json::<Answer>()
                    .await
                    .map(|a| a.outcome)
                    .map_err(|_| "unreadable response".to_owned()),
                Ok(r) => Err(format!("http {}", r.status().as_u16())),
                Err(e) if e.is_timeout() => Err("http timeout".to_owned()),
                Err(_) => Err("http connection error".to_owned()),
            };
            let at = now_us();
            match outcome {
                Ok(outcome) => {
                    lock(&shared).decided(&id, outcome, at);
                }
                Err(reason) => {
                    tracing::debug!(transaction_id = %id, %reason, "request failed");
                    lock(&shared).failed(&id, &reason);
                }
            }
            drop(slot);
        });
        Ok(())
    }
}
