//! The one scoring path every source uses: actors decide and store, then the decision is
//! published and counted.

use crate::kafka::Publisher;
use crate::stats::LiveStats;
use crate::telemetry as t;
use async_trait::async_trait;
use sentinel_actors::{Dispatch, Scorer};
use sentinel_api::dashboard::LiveFeed;
use sentinel_event::{DecisionError, Transaction};
use sentinel_store::Stored;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Scores through the user actors, publishes to Kafka when configured, records metrics.
pub struct NodeDecider {
    /// The user actors.
    pub scorer: Scorer,
    /// The output topics, when Kafka is configured.
    pub publisher: Option<Publisher>,
    /// The live summary's figures.
    pub stats: Arc<LiveStats>,
    /// New decisions for the dashboard's live streams (never waits).
    pub live: LiveFeed,
    /// This node's cluster name (the cluster view says who answered).
    pub node_name: String,
    /// The input partitions this node owns (a user's live state is asked of the owner).
    pub ownership: crate::kafka::PartitionOwnership,
    /// With Kafka: HTTP events go to the member owning their partition. Without: `None`,
    /// every event is decided here.
    pub owner_route: Option<crate::cluster::owner_route::OwnerRoute>,
    /// The rate table every ingested event's amount is converted with.
    pub currencies: Arc<crate::currency::Currencies>,
}

impl NodeDecider {
    /// Decides an event and publishes the decision of record (again, for a redelivered
    /// event, so that output is at-least-once). Resolves after storing and publishing.
    pub async fn decide_shared(
        &self,
        event: Arc<Transaction>,
        received: Instant,
    ) -> Result<Stored, DecisionError> {
        let stored = self.decide_unpublished(event, received).await?;
        if let Some(publisher) = &self.publisher {
            publisher.publish(&stored.decision).await?;
        }
        Ok(stored)
    }

    /// Decides and counts an event: all [`Self::decide_shared`] does but publish. The Kafka
    /// source publishes its decisions itself, without waiting for each one's delivery.
    pub async fn decide_unpublished(
        &self,
        event: Arc<Transaction>,
        received: Instant,
    ) -> Result<Stored, DecisionError> {
        let stored = self.scorer.score(event, received).await?;
        self.count(&stored, received);
        Ok(stored)
    }

    /// As [`Self::decide_unpublished`], with the event sent to its user's actor together with
    /// the others of `dispatch` (a burst of Kafka messages).
    pub fn decide_dispatched<'a>(
        &'a self,
        dispatch: &mut Dispatch<'a>,
        event: Arc<Transaction>,
        received: Instant,
    ) -> impl Future<Output = Result<Stored, DecisionError>> + 'a {
        let answer = dispatch.add(event, received);
        async move {
            let stored = answer.await?;
            self.count(&stored, received);
            Ok(stored)
        }
    }

    /// Logs a decision and, unless it is a duplicate (a redelivered or retried event answered
    /// with its stored decision), counts it and shows it live; a duplicate is counted apart in
    /// the live summary line.
    fn count(&self, stored: &Stored, received: Instant) {
        // Inside an HTTP request's span this line carries its request id; together they tie
        // a client's request to the decision of record.
        tracing::debug!(
            transaction_id = %stored.decision.transaction_id,
            outcome = stored.decision.outcome.as_str(),
            score = stored.decision.score,
            duplicate = stored.duplicate,
            "decided"
        );
        if !stored.duplicate {
            let outcome = stored.decision.outcome;
            t::SCORING.decisions(outcome).increment(1);
            let latency = received.elapsed();
            t::SCORING.latency.record(latency.as_secs_f64());
            self.stats.record(outcome, latency);
            self.live.publish(&stored.decision, latency);
        } else {
            self.stats.record_duplicate();
        }
    }
}

#[async_trait]
impl sentinel_api::Decider for NodeDecider {
    async fn decide(&self, event: Transaction, received: Instant) -> Result<Stored, DecisionError> {
        t::RECEIVED_HTTP.increment(1);
        let event = self
            .currencies
            .convert(event, crate::currency::Source::Http)
            .inspect_err(|invalid| sentinel_api::metrics::event_invalid("http", invalid))?;
        match &self.owner_route {
            Some(route) => route.decide(self, event, received).await,
            None => self.decide_shared(Arc::new(event), received).await,
        }
    }

    async fn screen(
        &self,
        events: Vec<Transaction>,
    ) -> Vec<Result<sentinel_engine::Screened, DecisionError>> {
        // Converted as ingestion would, but not counted: nothing is ingested.
        let mut answers: Vec<Option<Result<sentinel_engine::Screened, DecisionError>>> =
            Vec::with_capacity(events.len());
        let mut valid = Vec::with_capacity(events.len());
        for event in events {
            match self.currencies.preview(event) {
                Ok(event) => {
                    answers.push(None);
                    valid.push(Arc::new(event));
                }
                Err(e) => answers.push(Some(Err(DecisionError::Invalid(e)))),
            }
        }
        let mut screened = self.scorer.screen(valid).await.into_iter();
        answers
            .into_iter()
            .map(|a| {
                a.or_else(|| screened.next()).unwrap_or_else(|| {
                    Err(DecisionError::Unavailable("no answer for an event".into()))
                })
            })
            .collect()
    }

    async fn user_state(&self, user_id: &str) -> Option<sentinel_engine::UserView> {
        crate::cluster::view::user_view(&self.scorer, &self.ownership, user_id).await
    }

    async fn cluster(&self) -> Option<sentinel_api::cluster::ClusterView> {
        Some(crate::cluster::view::gather(&self.node_name).await)
    }

    fn preview(&self, event: Transaction) -> Result<Transaction, sentinel_event::InvalidEvent> {
        self.currencies.preview(event)
    }
}
