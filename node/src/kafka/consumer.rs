//! The Kafka source: a consumer-group member that decides every message and commits a
//! partition's offset only past messages whose decisions are stored and published (or which
//! went to the dead-letter topic).

use super::client_config;
use super::offsets::OffsetTracker;
use super::ownership::PartitionOwnership;
use super::producer::{DeadLetter, Origin};
use crate::config::KafkaConfig;
use crate::decider::NodeDecider;
use crate::telemetry as t;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::{ClientContext, Message};
use sentinel_event::{parse_transaction, DecisionError, Limits, ParseMode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Logs and counts rebalances, and keeps [`PartitionOwnership`] current.
struct RebalanceLog(PartitionOwnership);

impl ClientContext for RebalanceLog {}

impl ConsumerContext for RebalanceLog {
    fn pre_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if let Rebalance::Revoke(tpl) = rebalance {
            metrics::counter!(t::REBALANCES, "kind" => "revoke").increment(1);
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(?partitions, "partitions revoked");
            self.0.revoked(&partitions);
        }
    }

    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        if let Rebalance::Assign(tpl) = rebalance {
            metrics::counter!(t::REBALANCES, "kind" => "assign").increment(1);
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(?partitions, "partitions assigned");
            self.0.assigned(partitions);
        }
    }
}

/// How a message ended; its offset may then be committed.
struct Finished {
    partition: i32,
    offset: i64,
}

/// Consumes until `stop` fires, then drains what is in flight and commits.
pub async fn run_consumer(
    kafka: KafkaConfig,
    decider: Arc<NodeDecider>,
    dead_letter: DeadLetter,
    limits: Arc<Limits>,
    ownership: PartitionOwnership,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut config = client_config(&kafka);
    config
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "true")
        // Offsets are stored by hand, only for finished messages; librdkafka commits them.
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", kafka.fetch_wait_max_ms.to_string())
        .set("session.timeout.ms", "10000");
    for (key, value) in &kafka.options {
        config.set(key, value);
    }
    let mut revokes = ownership.revokes();
    let consumer: StreamConsumer<RebalanceLog> =
        config.create_with_context(RebalanceLog(ownership.clone()))?;
    consumer.subscribe(&[&kafka.input_topic])?;
    match tokio::task::block_in_place(|| {
        consumer.fetch_metadata(Some(&kafka.input_topic), Duration::from_secs(10))
    }) {
        Ok(metadata) => {
            let count = metadata
                .topics()
                .first()
                .map_or(0, |t| t.partitions().len());
            ownership.set_partition_count(i32::try_from(count).unwrap_or(0));
        }
        // Only the API's owner lookup needs it; it answers from this node meanwhile.
        Err(e) => tracing::warn!(error = %e, "reading the input topic's partitions failed"),
    }
    tracing::info!(topic = %kafka.input_topic, group = %kafka.group_id, "consuming");

    let mut tracker = OffsetTracker::default();
    let mut in_flight = FuturesUnordered::new();
    let max_in_flight = kafka.max_in_flight.max(1);
    let topic = kafka.input_topic.as_str();
    let source_topic: Arc<str> = Arc::from(topic);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Ok(()) = revokes.changed() => {
                // Ownership changed: finish what is in flight, then stop every user actor
                // (snapshotted), so a partition that comes back restores from the store.
                while let Some(done) = in_flight.next().await {
                    finish(&consumer, topic, &mut tracker, done);
                }
                let passivated = decider.scorer.passivate_all().await;
                tracing::info!(passivated, "user actors passivated after a partition ownership change");
            }
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                finish(&consumer, topic, &mut tracker, done);
            }
            received = consumer.recv(), if in_flight.len() < max_in_flight => {
                let message = match received {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "consumer error");
                        continue;
                    }
                };
                let received_at = Instant::now();
                metrics::counter!(t::EVENTS_RECEIVED, "source" => "kafka").increment(1);
                let (partition, offset) = (message.partition(), message.offset());
                tracker.start(partition, offset);
                let produced_ms = message.timestamp().to_millis();
                let key = message.key().map(<[u8]>::to_vec);
                let payload = message.payload().unwrap_or_default();
                let parsed = parse_transaction(payload, ParseMode::Strict, &limits, chrono::Utc::now());
                let raw = parsed.is_err().then(|| payload.to_vec());
                let decider = Arc::clone(&decider);
                let dead_letter = dead_letter.clone();
                let mut stop = stop.clone();
                let source_topic = Arc::clone(&source_topic);
                in_flight.push(async move {
                    let (outcome, event) = match parsed {
                        Ok((event, _)) => {
                            let event = Arc::new(event);
                            let outcome = decide_until_done(&decider, &event, received_at, &mut stop).await;
                            (outcome, Some(event))
                        }
                        Err(invalid) => (Err(DecisionError::Invalid(invalid)), None),
                    };
                    match outcome {
                        Ok(()) => {
                            if let Some(ms) = produced_ms {
                                let now = chrono::Utc::now().timestamp_millis();
                                metrics::histogram!(t::END_TO_END_LATENCY)
                                    .record((now - ms).max(0) as f64 / 1000.0);
                            }
                        }
                        Err(DecisionError::Unavailable(_)) => {
                            // Shutting down before the decision was published: leave the
                            // offset alone so the event is redelivered.
                            return None;
                        }
                        Err(error) => {
                            decider.stats.record_rejected();
                            // The raw bytes of an unparseable message; the event itself when
                            // scoring it crashed its actor.
                            let bytes = match (raw, event) {
                                (Some(raw), _) => raw,
                                (None, Some(event)) => serde_json::to_vec(&*event).unwrap_or_default(),
                                (None, None) => Vec::new(),
                            };
                            let origin = Origin { topic: &source_topic, partition, offset };
                            dead_letter.send(key.as_deref(), &bytes, &error, origin).await;
                        }
                    }
                    Some(Finished { partition, offset })
                });
                metrics::gauge!(t::IN_FLIGHT).set(tracker.in_flight() as f64);
            }
        }
    }
    tracing::info!(in_flight = in_flight.len(), "draining the Kafka source");
    while let Some(done) = in_flight.next().await {
        finish(&consumer, topic, &mut tracker, done);
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::warn!(error = %e, "final offset commit failed; the last events will be redelivered");
    }
    Ok(())
}

fn finish(
    consumer: &StreamConsumer<RebalanceLog>,
    topic: &str,
    tracker: &mut OffsetTracker,
    done: Option<Finished>,
) {
    let Some(Finished { partition, offset }) = done else {
        return;
    };
    if let Some(through) = tracker.finish(partition, offset) {
        // Fails only for a partition revoked meanwhile; its new owner redelivers, and the
        // store answers with the decision made here.
        if let Err(e) = consumer.store_offset(topic, partition, through) {
            tracing::debug!(error = %e, partition, "offset not stored");
        }
    }
    metrics::gauge!(t::IN_FLIGHT).set(tracker.in_flight() as f64);
}

/// Decides one event, retrying transient failures (store or broker trouble) with backoff
/// until it succeeds, fails for good, or the node stops.
async fn decide_until_done(
    decider: &NodeDecider,
    event: &Arc<sentinel_event::Transaction>,
    received: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), DecisionError> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match decider.decide_shared(Arc::clone(event), received).await {
            Ok(_) => return Ok(()),
            Err(e @ (DecisionError::Invalid(_) | DecisionError::Poisoned(_))) => return Err(e),
            Err(e) => {
                if *stop.borrow() {
                    return Err(DecisionError::Unavailable(e.to_string()));
                }
                tracing::warn!(error = %e, transaction = %event.transaction_id, "retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
