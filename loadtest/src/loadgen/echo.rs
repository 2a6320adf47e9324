//! A stand-in for the node that scores nothing (`sentinel-loadtest kafka --echo`): it consumes
//! the input topic and republishes every event, unchanged and keyed as it came, to the
//! approved topic with the headers a decision carries (`transaction_id`, `outcome` =
//! `approve`), through clients with the node's fetch and produce settings.
//!
//! A run against it measures the broker's own share of the end-to-end latency — two broker
//! hops, the producers' batching and the consumers' fetch waits — for exactly the rate,
//! population and run length of a run against the node: the floor that run stands on. (Against
//! tansu's `memory://` engine that floor is not flat: every fetch lists all the batches a
//! partition has stored, so the broker's CPU and the round trip grow with the run's length;
//! BENCHMARKS.md, "The broker's floor".)

use super::kafka::{client_config, next_message, KafkaTarget};
use super::now_us;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The node's consumer settings for its input topic (`node/src/kafka/consumer.rs`: its
/// `FETCH_SETTINGS` and the default `fetch_wait_max_ms`); a node test checks they agree.
pub const NODE_FETCH_SETTINGS: [(&str, &str); 4] = [
    ("fetch.wait.max.ms", "5"),
    ("fetch.min.bytes", "1"),
    ("queued.min.messages", "2000"),
    ("queued.max.messages.kbytes", "8192"),
];

/// The node's producer settings for its output topics (`node/src/kafka/producer.rs`,
/// `PRODUCER_SETTINGS`); a node test checks they agree.
pub const NODE_PRODUCER_SETTINGS: [(&str, &str); 4] = [
    ("acks", "all"),
    ("linger.ms", "10"),
    ("compression.codec", "snappy"),
    ("batch.num.messages", "10000"),
];

/// The running echo.
pub struct Echo {
    task: tokio::task::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
}

impl Echo {
    /// Joins a fresh consumer group on the input topic (earliest offsets) and starts echoing.
    pub fn start(target: &KafkaTarget) -> anyhow::Result<Echo> {
        let group = format!("sentinel-loadtest-echo-{}-{}", std::process::id(), now_us());
        let mut consumer_config = client_config(target);
        consumer_config
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false");
        let mut producer_config = client_config(target);
        for (key, value) in NODE_FETCH_SETTINGS {
            consumer_config.set(key, value);
        }
        for (key, value) in NODE_PRODUCER_SETTINGS {
            producer_config.set(key, value);
        }
        // The caller's -X properties win, as the node's [kafka.options] do.
        for (key, value) in &target.options {
            consumer_config.set(key, value);
            producer_config.set(key, value);
        }
        let consumer: StreamConsumer = consumer_config.create()?;
        consumer.subscribe(&[&target.topic])?;
        let producer: FutureProducer = producer_config.create()?;
        tracing::info!(%group, topic = %target.topic, "echoing events as approvals (no node)");
        let stop = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(run(
            consumer,
            producer,
            target.approved_topic.clone(),
            Flags {
                stop: stop.clone(),
                assigned: assigned.clone(),
                echoed: echoed.clone(),
            },
        ));
        Ok(Echo {
            task,
            stop,
            assigned,
            echoed,
        })
    }

    /// Waits until the input topic's partitions are assigned, at most `limit`.
    pub async fn wait_assigned(&self, limit: Duration) {
        super::wait_for(&self.assigned, limit, "input topic assigned to the echo").await;
    }

    /// Stops echoing; returns how many events were handed to the producer (their delivery is
    /// not awaited: the reader counts what reaches the output topics).
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        self.echoed.load(Ordering::SeqCst)
    }
}

struct Flags {
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
}

async fn run(consumer: StreamConsumer, producer: FutureProducer, topic: String, flags: Flags) {
    let mut errors = 0u64;
    let reading = "reading the input topic";
    while let Some(m) = next_message(
        &consumer,
        &flags.stop,
        &flags.assigned,
        &mut errors,
        reading,
    )
    .await
    {
        let payload = m.payload().unwrap_or_default();
        let Some(id) = transaction_id(payload) else {
            tracing::debug!(offset = m.offset(), "not an event; not echoed");
            continue;
        };
        let headers = OwnedHeaders::new_with_capacity(2)
            .insert(Header {
                key: "transaction_id",
                value: Some(id.as_bytes()),
            })
            .insert(Header {
                key: "outcome",
                value: Some("approve"),
            });
        let mut record = FutureRecord::to(&topic).payload(payload).headers(headers);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        // Delivery is not awaited (the reader sees what arrives); a full queue waits.
        loop {
            match producer.send_result(record) {
                Ok(_delivery) => {
                    flags.echoed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if flags.stop.load(Ordering::SeqCst) =>
                {
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => {
                    tracing::warn!(error = %e, transaction_id = %id, "could not echo");
                    break;
                }
            }
        }
    }
}

/// The `transaction_id` of an event's JSON, if it is one.
fn transaction_id(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Slim {
        transaction_id: String,
    }
    serde_json::from_slice::<Slim>(payload)
        .ok()
        .map(|s| s.transaction_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_events_with_a_transaction_id_are_echoed() {
        assert_eq!(
            transaction_id(br#"{"transaction_id":"t-1","user_id":"u","amount":"1.00"}"#),
            Some("t-1".to_owned())
        );
        assert_eq!(transaction_id(br#"{"user_id":"u"}"#), None);
        assert_eq!(transaction_id(b"not json"), None);
    }
}
