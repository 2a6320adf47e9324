//! Delivery reports of the output producer. An HTTP decision's publisher waits for its own
//! report; the Kafka source's decisions are not waited for one by one: their reports are
//! gathered here and handed to the consume loop in batches, which then stores the source
//! partition's offset past every delivered decision (a delivery watermark per partition,
//! [`super::offsets::OffsetTracker`]), instead of a future and a wake per message.

use super::producer::{published_counter, Publisher};
use crate::telemetry as t;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{DeliveryResult, OwnedMessage};
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;
use std::sync::Mutex;
use tokio::sync::{oneshot, watch, Notify};

/// Who wants to hear of a message's delivery (the producer's delivery opaque).
pub(super) enum Delivery {
    /// A decision published on behalf of a waiting caller (an HTTP request).
    Awaited(oneshot::Sender<KafkaResult<()>>),
    /// A decision of a message of the input topic: its offset may be committed once this
    /// report says the decision is on the output topic.
    Tracked(Tracked),
}

/// The input message a published decision answers.
#[derive(Clone, Copy, Debug)]
pub(super) struct InputMessage {
    /// The input message's partition.
    pub partition: i32,
    /// The input message's offset.
    pub offset: i64,
    /// When the input message was produced (milliseconds since the epoch), for the end-to-end
    /// latency.
    pub produced_ms: Option<i64>,
}

/// A decision published for an input message, and what to count when it is delivered.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tracked {
    /// The input message it answers.
    pub source: InputMessage,
    /// Published to the fraud topic (else the approved topic).
    pub fraud: bool,
}

/// One delivery report of a [`Delivery::Tracked`] message.
pub(super) struct Report {
    /// The input message the decision answers.
    pub tracked: Tracked,
    /// Why the broker did not take it, with the message to send again.
    pub failed: Option<(KafkaError, OwnedMessage)>,
}

/// The output producer's context: answers awaited deliveries at once and gathers the tracked
/// ones for the consume loop.
#[derive(Default)]
pub(super) struct DeliveryContext {
    reports: Mutex<Vec<Report>>,
    ready: Notify,
}

impl DeliveryContext {
    /// Resolves when reports are waiting (or may be: a wake can find them taken already).
    pub fn ready(&self) -> tokio::sync::futures::Notified<'_> {
        self.ready.notified()
    }

    /// Moves the waiting reports into `into` (empty), keeping both buffers' capacity.
    pub fn take(&self, into: &mut Vec<Report>) {
        let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *reports, into);
    }
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Delivery>;

    /// Runs on the producer's polling thread once per message; reports that arrive together
    /// (one produce response) wake the consume loop once.
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Box<Delivery>) {
        match *opaque {
            Delivery::Awaited(reply) => {
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
            }
            Delivery::Tracked(tracked) => {
                let failed = result
                    .as_ref()
                    .err()
                    .map(|(error, message)| (error.clone(), message.detach()));
                let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
                let wake = reports.is_empty();
                reports.push(Report { tracked, failed });
                drop(reports);
                if wake {
                    self.ready.notify_one();
                }
            }
        }
    }
}

/// The consume loop's side of the delivery reports: how many tracked decisions are on their
/// way to the broker, and what to do with each report.
pub(super) struct PendingDeliveries<'a> {
    publisher: Option<&'a Publisher>,
    reports: Vec<Report>,
    outstanding: usize,
    refused: u64,
    stop: watch::Receiver<bool>,
}

impl<'a> PendingDeliveries<'a> {
    /// Reports of `publisher`'s tracked decisions (none without one); refused decisions are
    /// sent again until `stop` fires.
    pub fn new(publisher: Option<&'a Publisher>, stop: watch::Receiver<bool>) -> Self {
        PendingDeliveries {
            publisher,
            reports: Vec::new(),
            outstanding: 0,
            refused: 0,
            stop,
        }
    }

    /// A tracked decision was handed to the producer.
    pub fn sent(&mut self) {
        self.outstanding += 1;
    }

    /// Tracked decisions not yet delivered.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Reports that the broker refused a decision (each was sent again).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Resolves when reports may be waiting; never without a publisher.
    pub async fn ready(&self) {
        match self.publisher {
            Some(publisher) => publisher.reports_ready().await,
            None => std::future::pending().await,
        }
    }

    /// Takes the waiting reports: passes the partition and offset of the input message of each
    /// delivered decision to `delivered`, and sends refused ones again.
    pub fn settle(&mut self, mut delivered: impl FnMut(i32, i64)) {
        let Some(publisher) = self.publisher else {
            return;
        };
        publisher.take_reports(&mut self.reports);
        let now_ms = chrono::Utc::now().timestamp_millis();
        for report in self.reports.drain(..) {
            if report.failed.is_some() {
                self.refused += 1;
                publisher.publish_again(report, self.stop.clone());
                continue;
            }
            self.outstanding = self.outstanding.saturating_sub(1);
            let Tracked { source, fraud } = report.tracked;
            published_counter(fraud).increment(1);
            if let Some(produced_ms) = source.produced_ms {
                t::KAFKA
                    .end_to_end
                    .record((now_ms - produced_ms).max(0) as f64 / 1000.0);
            }
            delivered(source.partition, source.offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaConfig;
    use sentinel_testkit::{collect, free_port, Broker};
    use std::time::Duration;

    /// A decision the broker does not take (here: no broker yet) is reported refused, sent
    /// again, and its input message is finished only once a broker has it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_decision_is_sent_again_and_finishes_its_message_only_once_delivered() {
        let port = free_port();
        let kafka = KafkaConfig {
            brokers: format!("127.0.0.1:{port}"),
            // Fail a message quickly rather than after librdkafka's five minutes.
            options: [("message.timeout.ms".to_owned(), "300".to_owned())].into(),
            ..KafkaConfig::default()
        };
        let publisher = Publisher::new(&kafka).unwrap();
        let (_stop_tx, mut stop) = watch::channel(false);
        let mut deliveries = PendingDeliveries::new(Some(&publisher), stop.clone());
        let decision = sentinel_store::conformance::decision("t-refused", "u-1", 1, 0);
        let source = InputMessage {
            partition: 3,
            offset: 41,
            produced_ms: None,
        };
        let sent = publisher
            .publish_tracked(&decision, source, &mut stop)
            .await;
        assert!(sent.unwrap(), "the producer took the decision");
        deliveries.sent();

        let mut delivered = Vec::new();
        let settle_until =
            async |deliveries: &mut PendingDeliveries<'_>,
                   delivered: &mut Vec<(i32, i64)>,
                   done: &dyn Fn(&PendingDeliveries<'_>) -> bool| {
                tokio::time::timeout(Duration::from_secs(90), async {
                    while !done(deliveries) {
                        deliveries.ready().await;
                        deliveries.settle(|partition, offset| delivered.push((partition, offset)));
                    }
                })
                .await
                .expect("the reports came");
            };
        settle_until(&mut deliveries, &mut delivered, &|d| d.refused() > 0).await;
        assert!(delivered.is_empty(), "nothing is finished while refused");
        assert_eq!(deliveries.outstanding(), 1);

        let broker = Broker::start_at(port).await;
        broker.create_topic(&kafka.approved_topic, 1).await;
        settle_until(&mut deliveries, &mut delivered, &|d| d.outstanding() == 0).await;
        assert_eq!(delivered, [(3, 41)], "the input message is finished once");

        let output = broker.consumer(&[&kafka.approved_topic]);
        let records = collect(&output, Duration::from_secs(30), |r| !r.is_empty()).await;
        assert_eq!(records[0].headers["transaction_id"], "t-refused");
    }
}
