//! Kafka transport: events to the input topic, decisions read back from the output topics.
//!
//! Each event is the bare transaction JSON keyed by user id, with headers
//! `sentinel-sent-at-us` (wall clock at send) and, for labelled fraud, `sentinel-scenario`.
//! Decisions are read in a fresh consumer group from the earliest offset; only transaction ids
//! this run sent count, so earlier runs' decisions on a reused broker are ignored.

use super::pacer::Sink;
use super::{lock, now_us, Shared};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use sentinel_event::Outcome;
use sentinel_simulator::SimEvent;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Header carrying the send time in wall-clock microseconds.
pub const SENT_AT_HEADER: &str = "sentinel-sent-at-us";
/// Header carrying a labelled event's scenario (the node ignores it).
pub const SCENARIO_HEADER: &str = "sentinel-scenario";

/// Where and how to reach Kafka.
#[derive(Debug, Clone)]
pub struct KafkaTarget {
    /// Bootstrap servers.
    pub brokers: String,
    /// Input topic of the node.
    pub topic: String,
    /// Topic of approved decisions.
    pub approved_topic: String,
    /// Topic of review and decline decisions.
    pub fraud_topic: String,
    /// Extra librdkafka properties for both clients (SASL, TLS, ...).
    pub options: Vec<(String, String)>,
    /// No node: the load generator echoes each event back as an approval itself
    /// ([`super::echo`]), measuring the broker's own round trip.
    pub echo: bool,
}

/// A client for `target`'s brokers with its extra properties.
pub(super) fn client_config(target: &KafkaTarget) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &target.brokers);
    for (k, v) in &target.options {
        config.set(k, v);
    }
    config
}

/// Produces events to the input topic.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    shared: Shared,
}

impl KafkaSink {
    /// A producer with `linger.ms` 5 (a flat latency on small-batch-sensitive brokers) and
    /// Kafka's default key partitioner.
    pub fn new(target: &KafkaTarget, shared: Shared) -> anyhow::Result<KafkaSink> {
        let mut config = client_config(target);
        config.set("linger.ms", "5");
        // Kafka's default (Java) key partitioner, so nodes can tell which member owns a user.
        config.set("partitioner", "murmur2_random");
        for (k, v) in &target.options {
            config.set(k, v);
        }
        Ok(KafkaSink {
            producer: config.create()?,
            topic: target.topic.clone(),
            shared,
        })
    }
}

impl Sink for KafkaSink {
    async fn send(&mut self, event: SimEvent) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(&event.txn)?;
        let id = event.txn.transaction_id.clone();
        let sent_us = now_us();
        let sent_at = sent_us.to_string();
        let mut headers = OwnedHeaders::new().insert(Header {
            key: SENT_AT_HEADER,
            value: Some(sent_at.as_bytes()),
        });
        if let Some(s) = event.label {
            headers = headers.insert(Header {
                key: SCENARIO_HEADER,
                value: Some(s.as_str().as_bytes()),
            });
        }
        lock(&self.shared).sent(id.clone(), event.label, sent_us);
        let mut record = FutureRecord::to(&self.topic)
            .key(event.txn.user_id.as_str())
            .payload(&payload)
            .headers(headers);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        match delivery.await {
                            Ok(Ok(_)) => {}
                            Ok(Err((e, _))) => {
                                tracing::warn!(error = %e, transaction_id = %id, "delivery failed");
                                lock(&shared).failed(&id, "kafka delivery failed");
                            }
                            Err(_) => lock(&shared).failed(&id, "kafka delivery cancelled"),
                        }
                    });
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, transaction_id = %id, "could not enqueue");
                    lock(&self.shared).failed(&id, "kafka enqueue failed");
                    return Ok(());
                }
            }
        }
    }
}

/// Reads decisions from the output topics into the recorder.
pub struct DecisionReader {
    task: tokio::task::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicBool>,
}

/// The transaction id and outcome of one decision message: from its headers, or from the JSON
/// payload when a publisher left them out.
pub fn decision_of(headers: Option<(&[u8], &[u8])>, payload: &[u8]) -> Option<(String, Outcome)> {
    fn outcome(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
    if let Some((id, out)) = headers {
        let id = std::str::from_utf8(id).ok()?;
        let out = outcome(std::str::from_utf8(out).ok()?)?;
        return Some((id.to_owned(), out));
    }
    #[derive(serde::Deserialize)]
    struct Slim {
        transaction_id: String,
        outcome: Outcome,
    }
    let slim: Slim = serde_json::from_slice(payload).ok()?;
    Some((slim.transaction_id, slim.outcome))
}

impl DecisionReader {
    /// Subscribes a fresh consumer group (earliest offsets, `fetch.wait.max.ms` 5) to both
    /// output topics and starts reading.
    pub fn start(target: &KafkaTarget, shared: Shared) -> anyhow::Result<DecisionReader> {
        let group = format!("sentinel-loadtest-{}-{}", std::process::id(), now_us());
        let consumer: StreamConsumer = client_config(target)
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()?;
        consumer.subscribe(&[&target.approved_topic, &target.fraud_topic])?;
        tracing::info!(%group, "reading decisions");
        let stop = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(read(consumer, shared, stop.clone(), assigned.clone()));
        Ok(DecisionReader {
            task,
            stop,
            assigned,
        })
    }

    /// Waits until the group has assigned partitions (so the first decisions are not delayed
    /// by the group join), at most `limit`.
    pub async fn wait_assigned(&self, limit: Duration) {
        super::wait_for(&self.assigned, limit, "decision topics assigned").await;
    }

    /// Stops reading.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
    }
}

async fn read(
    consumer: StreamConsumer,
    shared: Shared,
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicBool>,
) {
    let mut errors = 0u64;
    while let Some(m) = next_message(
        &consumer,
        &stop,
        &assigned,
        &mut errors,
        "reading decisions",
    )
    .await
    {
        let at = now_us();
        let find = |key: &str| {
            m.headers()
                .and_then(|h| h.iter().find(|h| h.key == key).and_then(|h| h.value))
        };
        let headers = find("transaction_id").zip(find("outcome"));
        match decision_of(headers, m.payload().unwrap_or_default()) {
            Some((id, outcome)) => {
                lock(&shared).decided(&id, outcome, at);
            }
            None => tracing::debug!(topic = m.topic(), "not a decision; skipped"),
        }
    }
}

/// The next message of `consumer`, or `None` once `stop` is set (checked at least every
/// 100 ms). Sets `assigned` once the group has given the consumer partitions. Read errors are
/// counted in `errors` and logged, `what` naming the reading, at powers of two so that a
/// broker outage does not flood the log.
pub(super) async fn next_message<'c>(
    consumer: &'c StreamConsumer,
    stop: &AtomicBool,
    assigned: &AtomicBool,
    errors: &mut u64,
    what: &str,
) -> Option<BorrowedMessage<'c>> {
    while !stop.load(Ordering::SeqCst) {
        if !assigned.load(Ordering::Relaxed) && consumer.assignment().is_ok_and(|a| a.count() > 0) {
            assigned.store(true, Ordering::SeqCst);
        }
        match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
            Ok(Ok(m)) => return Some(m),
            Ok(Err(e)) => {
                *errors += 1;
                if errors.is_power_of_two() {
                    tracing::warn!(error = %e, errors = *errors, "{what}");
                }
            }
            Err(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_from_headers_or_payload() {
        assert_eq!(
            decision_of(Some((b"t-1", b"review")), b""),
            Some(("t-1".to_owned(), Outcome::Review))
        );
        assert_eq!(decision_of(Some((b"t-1", b"maybe")), b""), None);
        let payload = br#"{"transaction_id":"t-2","outcome":"decline","score":1.0}"#;
        assert_eq!(
            decision_of(None, payload),
            Some(("t-2".to_owned(), Outcome::Decline))
        );
        assert_eq!(decision_of(None, b"{oops"), None);
    }
}
