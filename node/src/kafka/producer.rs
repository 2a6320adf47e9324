//! Output topics and the dead-letter topic.

use super::client_config;
use super::delivery::{Delivery, DeliveryContext, InputMessage, Report, Tracked};
use crate::config::{KafkaConfig, PublishedEvent};
use crate::telemetry as t;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord, Producer, ThreadedProducer};
use rdkafka::Message;
use sentinel_event::{Decision, DecisionError, Outcome};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long one publish may wait for room in the producer's queue before it is retried.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest payload copied to the dead-letter topic: well under brokers' default 1 MB message
/// limit, and above the largest event the node accepts, so only refused oversize messages are
/// cut.
pub const MAX_DEAD_LETTER_BYTES: usize = 256 * 1024;
/// Attempts before a publish is reported as failed (the event is then retried or refused).
const ATTEMPTS: u32 = 5;
/// How long a publish waits before trying again when the producer's queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(5);
/// How long a decision the broker refused waits before it is sent again. librdkafka has
/// already retried it for `delivery.timeout.ms` (five minutes by default) before reporting it.
const REDELIVERY_PAUSE: Duration = Duration::from_secs(1);

/// The output producer: a librdkafka producer whose polling thread hands delivery reports to
/// [`DeliveryContext`].
type OutputProducer = ThreadedProducer<DeliveryContext>;

/// Publishes decisions, keyed by user id: `approve` to the approved topic (by default without
/// the event, see [`PublishedEvent`]), `review` and `decline` to the fraud topic, whole (the
/// `outcome` header tells them apart).
#[derive(Clone)]
pub struct Publisher {
    producer: Arc<OutputProducer>,
    approved_topic: String,
    approved_event: PublishedEvent,
    fraud_topic: String,
}

impl Publisher {
    /// A producer for the configured brokers.
    pub fn new(kafka: &KafkaConfig) -> anyhow::Result<Self> {
        let producer =
            OutputProducer::from_config_and_context(&producer_config(kafka), Default::default())?;
        Ok(Publisher {
            producer: Arc::new(producer),
            approved_topic: kafka.approved_topic.clone(),
            approved_event: kafka.approved_event,
            fraud_topic: kafka.fraud_topic.clone(),
        })
    }

    /// Publishes one decision and waits for the broker's acknowledgement, retrying with
    /// backoff.
    pub async fn publish(&self, decision: &Decision) -> Result<(), DecisionError> {
        let fraud = decision.outcome != Outcome::Approve;
        let topic = self.topic(fraud);
        let payload = self.encode(decision)?;
        let mut backoff = Duration::from_millis(50);
        for attempt in 1..=ATTEMPTS {
            let (reply, delivered) = oneshot::channel();
            let record = BaseRecord::with_opaque_to(topic, Box::new(Delivery::Awaited(reply)))
                .key(decision.user_id.as_bytes())
                .payload(payload.as_slice())
                .headers(headers(decision));
            let outcome = match self.enqueue(record, tokio::time::sleep(SEND_TIMEOUT)).await {
                Ok(()) => delivered.await.unwrap_or(Err(KafkaError::Canceled)),
                Err((e, _)) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    published_counter(fraud).increment(1);
                    return Ok(());
                }
                Err(e) => {
                    metrics::counter!(t::PUBLISH_ERRORS).increment(1);
                    tracing::warn!(error = %e, attempt, %topic, "publishing a decision failed");
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        }
        Err(DecisionError::Unavailable(format!(
            "could not publish to {topic} after {ATTEMPTS} attempts"
        )))
    }

    /// Hands `record` to the producer, waiting while its queue is full (backpressure) until
    /// `give_up` resolves; a refusal for any other reason is returned at once, with the record.
    async fn enqueue<'r>(
        &self,
        mut record: Record<'r>,
        give_up: impl Future<Output = ()>,
    ) -> Result<(), (KafkaError, Record<'r>)> {
        let mut give_up = std::pin::pin!(give_up);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((full @ KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(QUEUE_FULL_PAUSE) => record = back,
                        () = &mut give_up => return Err((full, back)),
                    }
                }
                Err(refused) => return Err(refused),
            }
        }
    }

    /// Publishes the decision of the input message `tracked` without waiting for the broker:
    /// its delivery report reaches the consume loop through [`Publisher::take_reports`].
    /// Waits only for room in the producer's queue (backpressure). `false`: the node is
    /// stopping and nothing was sent.
    pub(super) async fn publish_tracked(
        &self,
        decision: &Decision,
        source: InputMessage,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, DecisionError> {
        let tracked = Tracked {
            source,
            fraud: decision.outcome != Outcome::Approve,
        };
        let payload = self.encode(decision)?;
        let record = BaseRecord::with_opaque_to(
            self.topic(tracked.fraud),
            Box::new(Delivery::Tracked(tracked)),
        )
        .key(decision.user_id.as_bytes())
        .payload(payload.as_slice())
        .headers(headers(decision));
        Ok(self.enqueue_until_sent(record, stop).await)
    }

    /// Sends a decision the broker refused again after [`REDELIVERY_PAUSE`], in a task of its
    /// own; its report comes back as the first one did. Gives up when the node stops (the
    /// input message's offset then stays uncommitted, and it is redelivered).
    pub(super) fn publish_again(&self, report: Report, mut stop: watch::Receiver<bool>) {
        let Some((error, message)) = report.failed else {
            return;
        };
        metrics::counter!(t::PUBLISH_ERRORS).increment(1);
        tracing::warn!(%error, topic = message.topic(), "the broker refused a decision; sending it again");
        let publisher = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(REDELIVERY_PAUSE) => {}
                _ = stop.changed() => return,
            }
            let mut record = BaseRecord::with_opaque_to(
                message.topic(),
                Box::new(Delivery::Tracked(report.tracked)),
            )
            .payload(message.payload().unwrap_or_default());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(headers) = message.headers() {
                record = record.headers(headers.clone());
            }
            publisher.enqueue_until_sent(record, &mut stop).await;
        });
    }

    /// Hands `record` to the producer, waiting for room in its queue and retrying refusals
    /// with backoff, until it is taken (`true`) or the node stops (`false`).
    async fn enqueue_until_sent(
        &self,
        mut record: Record<'_>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut backoff = Duration::from_millis(50);
        loop {
            let stopped = async {
                let _ = stop.wait_for(|stopping| *stopping).await;
            };
            match self.enqueue(record, stopped).await {
                Ok(()) => return true,
                Err((e, back)) => {
                    if *stop.borrow() {
                        return false;
                    }
                    record = back;
                    metrics::counter!(t::PUBLISH_ERRORS).increment(1);
                    tracing::warn!(error = %e, "publishing a decision failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return false,
                    }
                }
            }
        }
    }

    /// Resolves when delivery reports of tracked decisions may be waiting.
    pub(super) async fn reports_ready(&self) {
        self.producer.context().ready().await
    }

    /// Moves the waiting delivery reports of tracked decisions into `into` (empty).
    pub(super) fn take_reports(&self, into: &mut Vec<Report>) {
        self.producer.context().take(into)
    }

    /// The output topic of approvals or, with `fraud`, of reviews and declines.
    fn topic(&self, fraud: bool) -> &str {
        if fraud {
            &self.fraud_topic
        } else {
            &self.approved_topic
        }
    }

    /// The message payload of `decision`: JSON, without the event for an approval unless the
    /// approved topic is configured to carry it.
    fn encode(&self, decision: &Decision) -> Result<Vec<u8>, DecisionError> {
        match (decision.outcome, self.approved_event) {
            (Outcome::Approve, PublishedEvent::Reference) => {
                serde_json::to_vec(&decision.summary())
            }
            _ => serde_json::to_vec(decision),
        }
        .map_err(|e| DecisionError::Unavailable(format!("encoding a decision: {e}")))
    }
}

/// A message for the output producer.
type Record<'a> = BaseRecord<'a, [u8], [u8], Box<Delivery>>;

/// A published decision's headers: its transaction id and outcome.
fn headers(decision: &Decision) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(2)
        .insert(Header {
            key: "transaction_id",
            value: Some(decision.transaction_id.as_bytes()),
        })
        .insert(Header {
            key: "outcome",
            value: Some(decision.outcome.as_str().as_bytes()),
        })
}

/// The counter of decisions published to the fraud or the approved topic.
pub(super) fn published_counter(fraud: bool) -> &'static metrics::Counter {
    if fraud {
        &t::KAFKA.published_fraud
    } else {
        &t::KAFKA.published_approved
    }
}

/// Sends messages that cannot be decided to the dead-letter topic, unchanged, with the reason.
#[derive(Clone)]
pub struct DeadLetter {
    producer: FutureProducer,
    topic: String,
}

/// Where a dead-lettered message came from.
pub struct Origin<'a> {
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

impl DeadLetter {
    /// A producer for the configured dead-letter topic.
    pub fn new(kafka: &KafkaConfig) -> anyhow::Result<Self> {
        Ok(DeadLetter {
            producer: producer(kafka)?,
            topic: kafka.dead_letter_topic.clone(),
        })
    }

    /// Sends the raw message (its first [`MAX_DEAD_LETTER_BYTES`] when larger, with
    /// `sentinel-original-bytes` giving the full size, since the broker would refuse the
    /// whole) with headers `sentinel-error` (the reason),
    /// `sentinel-error-field` (when one field is at fault), `sentinel-error-kind` and the
    /// origin. Retries until the broker accepts it: the offset must not pass an unrecorded
    /// message. Gives up when `stop` fires (returns `false`: leave the offset uncommitted, the
    /// message is redelivered and dead-lettered after the restart), so a broker that is down
    /// never holds up shutdown.
    pub async fn send(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        error: &DecisionError,
        origin: Origin<'_>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let (kind, field) = match error {
            DecisionError::Invalid(invalid) => ("invalid", Some(invalid.field.as_str())),
            DecisionError::Poisoned(_) => ("poisoned", None),
            DecisionError::Store(_) => ("store", None),
            DecisionError::Unavailable(_) => ("unavailable", None),
        };
        metrics::counter!(t::DEAD_LETTERED, "kind" => kind).increment(1);
        let original_len = payload.len().to_string();
        let truncated = payload.len() > MAX_DEAD_LETTER_BYTES;
        let payload = &payload[..payload.len().min(MAX_DEAD_LETTER_BYTES)];
        let reason = error.to_string();
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "sentinel-error",
                value: Some(reason.as_bytes()),
            })
            .insert(Header {
                key: "sentinel-error-kind",
                value: Some(kind.as_bytes()),
            })
            .insert(Header {
                key: "sentinel-source-topic",
                value: Some(origin.topic.as_bytes()),
            })
            .insert(Header {
                key: "sentinel-source-partition",
                value: Some(partition.as_bytes()),
            })
            .insert(Header {
                key: "sentinel-source-offset",
                value: Some(offset.as_bytes()),
            });
        if truncated {
            headers = headers.insert(Header {
                key: "sentinel-original-bytes",
                value: Some(original_len.as_bytes()),
            });
        }
        if let Some(field) = field {
            headers = headers.insert(Header {
                key: "sentinel-error-field",
                value: Some(field.as_bytes()),
            });
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut record = FutureRecord::to(&self.topic)
                .payload(payload)
                .headers(headers.clone());
            if let Some(key) = key {
                record = record.key(key);
            }
            if *stop.borrow() {
                return false;
            }
            let sent = tokio::select! {
                sent = self.producer.send(record, SEND_TIMEOUT) => sent,
                _ = stop.changed() => return false,
            };
            match sent {
                Ok(_) => return true,
                Err((e, _)) => {
                    tracing::warn!(error = %e, "dead-lettering failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return false,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// The node's producer settings, before the user's `[kafka.options]` (which win). Chosen by
/// measuring p99 end to end and node plus broker CPU at 1,000 and 20,000 events/s (BENCHMARKS.md,
/// "Kafka client settings (issue #17)").
pub(super) const PRODUCER_SETTINGS: [(&str, &str); 4] = [
    // Durable: a decision counts as published once every in-sync replica has it.
    ("acks", "all"),
    // Ten milliseconds of batching. At 1,000 events/s over 8 partitions a batch at 5 ms held
    // one or two decisions, and every batch is broker work: at 10 ms the broker spent ~9% and
    // the node ~2–6% less CPU per event there, for 1–3 ms on the median latency; at
    // 10,000/s on a saturated VM the median fell from ~1.2 s to ~0.8 s (BENCHMARKS.md,
    // "Producer linger"). 20 ms saves more CPU for ~7 ms on the median.
    ("linger.ms", "10"),
    // Decisions of one batch share most of their bytes. snappy, not lz4: librdkafka sets up
    // a fresh lz4 frame context for every batch, and at low rates batches hold a message or
    // two, so lz4 cost the node 6% more CPU per event at 1,000/s than snappy, for the same
    // broker CPU at 10,000/s (BENCHMARKS.md, "Compression codec"). Both are built in.
    ("compression.codec", "snappy"),
    // A batch closes at linger.ms or at this many messages, whichever comes first.
    ("batch.num.messages", "10000"),
];

/// A producer with the node's batching, compression and durability settings.
pub fn producer(kafka: &KafkaConfig) -> anyhow::Result<FutureProducer> {
    Ok(producer_config(kafka).create()?)
}

/// The node's producer settings, then the user's `[kafka.options]`.
fn producer_config(kafka: &KafkaConfig) -> rdkafka::ClientConfig {
    let mut config = client_config(kafka);
    for (key, value) in PRODUCER_SETTINGS {
        config.set(key, value);
    }
    for (key, value) in &kafka.options {
        config.set(key, value);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that `task` is still waiting after a while, then that it ends soon after `stop`
    /// fires; returns what it returned.
    async fn waits_until_stopped<T>(
        task: tokio::task::JoinHandle<T>,
        stop: watch::Sender<bool>,
        what: &str,
    ) -> T {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!task.is_finished(), "{what} ended before the node stopped");
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .unwrap_or_else(|_| panic!("{what} ignored the stop signal"))
            .unwrap()
    }

    /// With the broker unreachable, dead-lettering retries until the node stops, then gives
    /// up at once, reporting that nothing was recorded.
    #[tokio::test]
    async fn dead_lettering_gives_up_when_the_node_stops() {
        let kafka = KafkaConfig {
            brokers: format!("127.0.0.1:{}", nothing_listening()),
            ..KafkaConfig::default()
        };
        let dead_letter = DeadLetter::new(&kafka).unwrap();
        let (stop_tx, mut stop) = watch::channel(false);
        let error = DecisionError::Unavailable("test".into());
        let origin = Origin {
            topic: "transactions",
            partition: 0,
            offset: 7,
        };
        let sending = tokio::spawn(async move {
            dead_letter
                .send(None, b"{}", &error, origin, &mut stop)
                .await
        });
        // Without the stop signal this would wait for the broker for ever.
        let recorded = waits_until_stopped(sending, stop_tx, "dead-lettering").await;
        assert!(!recorded);
    }

    /// A decision that finds the producer's queue full waits for room (backpressure), not
    /// for ever: it gives up, unsent, once the node stops.
    #[tokio::test]
    async fn a_full_producer_queue_holds_a_decision_until_the_node_stops() {
        let kafka = KafkaConfig {
            brokers: format!("127.0.0.1:{}", nothing_listening()),
            options: [("queue.buffering.max.messages".to_owned(), "1".to_owned())].into(),
            ..KafkaConfig::default()
        };
        let publisher = Publisher::new(&kafka).unwrap();
        let decision = sentinel_store::conformance::decision("t-1", "u-1", 1, 0);
        let source = |offset| InputMessage {
            partition: 0,
            offset,
            produced_ms: None,
        };
        let (stop_tx, mut stop) = watch::channel(false);
        // No broker ever takes it: the first decision fills the one-message queue.
        let first = publisher.publish_tracked(&decision, source(0), &mut stop);
        assert!(first.await.unwrap(), "room for one");
        let waiting = tokio::spawn(async move {
            publisher
                .publish_tracked(&decision, source(1), &mut stop)
                .await
        });
        let sent = waits_until_stopped(waiting, stop_tx, "a decision facing a full queue").await;
        assert!(!sent.unwrap(), "given up unsent");
    }

    /// Approvals carry the event by reference unless configured `full`; review and decline
    /// always carry it whole.
    #[test]
    fn approvals_carry_the_event_by_reference_unless_configured_whole() {
        let decision = |outcome| Decision {
            outcome,
            ..sentinel_store::conformance::decision("t-1", "u-1", 1, 0)
        };
        let published = |approved_event, outcome| {
            let kafka = KafkaConfig {
                brokers: format!("127.0.0.1:{}", nothing_listening()),
                approved_event,
                ..KafkaConfig::default()
            };
            let bytes = Publisher::new(&kafka)
                .unwrap()
                .encode(&decision(outcome))
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        let approved = published(PublishedEvent::Reference, Outcome::Approve);
        assert!(approved.get("event").is_none(), "{approved}");
        assert_eq!(approved["transaction_id"], "t-1");
        let whole = published(PublishedEvent::Full, Outcome::Approve);
        assert_eq!(whole["event"]["amount"], "12.34");
        for outcome in [Outcome::Review, Outcome::Decline] {
            let fraud = published(PublishedEvent::Reference, outcome);
            assert_eq!(fraud["event"]["amount"], "12.34", "{fraud}");
        }
    }

    /// A loopback port nothing listens on.
    fn nothing_listening() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }
}
