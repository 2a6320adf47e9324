//! The Kafka source: a consumer-group member that decides every message and commits a
//! partition's offset only past messages whose decisions are stored and published (or which
//! went to the dead-letter topic).

use super::client_config;
use super::delivery::{InputMessage, PendingDeliveries};
use super::offsets::OffsetTracker;
use super::ownership::PartitionOwnership;
use super::producer::{DeadLetter, Origin, Publisher};
use crate::config::KafkaConfig;
use crate::currency::Source;
use crate::decider::NodeDecider;
use crate::telemetry as t;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, RebalanceProtocol,
    StreamConsumer,
};
use rdkafka::message::BorrowedMessage;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Statistics};
use sentinel_actors::Dispatch;
use sentinel_event::{parse_transaction, DecisionError, Limits, MessageOrigin, ParseMode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest a revoke waits for its partitions' events to finish before handing them over
/// anyway (their offsets then stay uncommitted and the new owner redelivers them).
const REVOKE_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Longest a stopping node waits for what is in flight and for the broker to take the
/// decisions already made (the events of those it does not take are redelivered after the
/// restart).
const STOP_DELIVERY_LIMIT: Duration = Duration::from_secs(10);

/// Most messages taken from librdkafka in one burst (see [`consume`]): enough for a fetch's
/// worth at tens of thousands of events per second, few enough that completions and delivery
/// reports are seen between bursts.
const BURST: usize = 512;

/// How often librdkafka reports statistics, from which the per-partition lag is exported.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// The consumer's fetch settings, before the user's `[kafka.options]` (which win); chosen by
/// measurement with `fetch.wait.max.ms` (BENCHMARKS.md, "Kafka client settings (issue #17)").
pub(super) const FETCH_SETTINGS: [(&str, &str); 3] = [
    // Answer a fetch as soon as anything is there: latency first. (tansu 0.6 holds every
    // fetch for fetch.wait.max.ms regardless, so there that setting alone sets the pace.)
    ("fetch.min.bytes", "1"),
    // Bounded prefetch: librdkafka's defaults keep up to 100,000 messages per partition and
    // 64 MiB queued ahead of the consume loop, a backlog that hides overload and is
    // redelivered after a crash. Two thousand per partition (0.8 s of traffic at 20,000
    // events/s over 8 partitions) and 8 MiB in all keep the loop fed without queueing the topic.
    ("queued.min.messages", "2000"),
    ("queued.max.messages.kbytes", "8192"),
];

/// Logs and counts rebalances, keeps [`PartitionOwnership`] current, and exports each owned
/// partition's consumer lag.
pub(super) struct GroupEvents(PartitionOwnership);

impl ClientContext for GroupEvents {
    fn stats(&self, statistics: Statistics) {
        for topic in statistics.topics.values() {
            for (partition, stats) in &topic.partitions {
                // -1 is librdkafka's internal unassigned partition; a negative lag is unknown.
                if *partition < 0 || stats.consumer_lag < 0 || stats.fetch_state != "active" {
                    continue;
                }
                metrics::gauge!(t::CONSUMER_LAG, "partition" => partition.to_string())
                    .set(stats.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for GroupEvents {
    /// As rdkafka's default, except that a revoke is not handed over here: the consume loop
    /// (blocked in the poll that runs this callback) first finishes the revoked partitions'
    /// events and commits their offsets, then calls [`complete_revoke`].
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let rebalance = Rebalance::Assign(tpl);
                self.pre_rebalance(consumer, &rebalance);
                let done = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                self.post_rebalance(consumer, &Rebalance::Assign(tpl));
                done
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.pre_rebalance(consumer, &Rebalance::Revoke(tpl));
                let partitions = tpl.elements().iter().map(|e| e.partition()).collect();
                if self.0.defer_revoke(partitions) {
                    return;
                }
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "applying a rebalance failed");
        }
    }

    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            metrics::counter!(t::REBALANCES, "kind" => "revoke").increment(1);
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(?partitions, "partitions revoked");
            // The new owner reports these partitions now; summing the gauge over the nodes
            // must count each partition's lag once.
            for partition in &partitions {
                metrics::gauge!(t::CONSUMER_LAG, "partition" => partition.to_string()).set(0.0);
            }
            self.0.revoked(&partitions);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            metrics::counter!(t::REBALANCES, "kind" => "assign").increment(1);
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            tracing::info!(?partitions, "partitions assigned");
            // The whole assignment: a cooperative rebalance hands over only the increment.
            let owned = consumer
                .assignment()
                .map(|a| a.elements().iter().map(|e| e.partition()).collect())
                .unwrap_or(partitions);
            self.0.assigned(owned);
        }
    }
}

/// A consumer-group member subscribed to `topic`, storing offsets only by hand (for finished
/// messages) and letting librdkafka commit them; rebalances update `ownership`.
pub(super) fn subscribe(
    kafka: &KafkaConfig,
    group: &str,
    topic: &str,
    ownership: PartitionOwnership,
) -> anyhow::Result<StreamConsumer<GroupEvents>> {
    let mut config = client_config(kafka);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        // Offsets are stored by hand, only for finished messages; librdkafka commits them.
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", kafka.fetch_wait_max_ms.to_string())
        .set("session.timeout.ms", "10000")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    for (key, value) in FETCH_SETTINGS {
        config.set(key, value);
    }
    for (key, value) in &kafka.options {
        config.set(key, value);
    }
    let consumer: StreamConsumer<GroupEvents> =
        config.create_with_context(GroupEvents(ownership))?;
    consumer.subscribe(&[topic])?;
    tracing::info!(topic, group, "consuming");
    Ok(consumer)
}

/// How the handling of a message ended.
pub(super) enum Handled {
    /// Done: its offset may be committed.
    Finished {
        /// The message's partition.
        partition: i32,
        /// The message's offset.
        offset: i64,
    },
    /// Its decision is on its way to an output topic: done when the delivery report comes.
    Publishing,
    /// Not done (the node is stopping): its offset stays uncommitted, and it is redelivered.
    Abandoned,
}

/// Consumes until `stop` fires, then drains what is in flight and commits.
pub async fn run_consumer(
    kafka: KafkaConfig,
    decider: Arc<NodeDecider>,
    dead_letter: DeadLetter,
    limits: Arc<Limits>,
    ownership: PartitionOwnership,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = subscribe(
        &kafka,
        &kafka.group_id,
        &kafka.input_topic,
        ownership.clone(),
    )?;
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
    let Some(publisher) = decider.publisher.clone() else {
        anyhow::bail!("the Kafka source needs the output topics' publisher");
    };
    let topic = kafka.input_topic.as_str();
    let max_in_flight = kafka.max_in_flight.max(1);
    // Ownership changed: with what was in flight finished and the new assignment known,
    // passivate the user actors of every partition not owned throughout, so that a
    // partition coming back restores from the store, never from a stale actor. Users of kept
    // partitions stay warm.
    let scorer = decider.scorer.clone();
    let mut warm: Vec<i32> = Vec::new();
    let settle_ownership = ownership.clone();
    let settle = move || {
        let scorer = scorer.clone();
        let ownership = settle_ownership.clone();
        // An eager rebalance revokes everything first: wait for what comes back.
        let kept: Option<Vec<i32>> = (!ownership.awaiting_assignment()).then(|| {
            let owned = ownership.owned();
            let kept = warm.iter().copied().filter(|p| owned.contains(p)).collect();
            warm = owned;
            kept
        });
        async move {
            let Some(kept) = kept else { return };
            let stale: sentinel_actors::UserFilter = Arc::new(move |user: &str| {
                // Unknown partition count: nothing can be shown kept.
                ownership
                    .partition_of(user)
                    .is_none_or(|p| !kept.contains(&p))
            });
            let passivated = scorer.passivate_users(stale).await;
            tracing::info!(
                passivated,
                "user actors of partitions not kept passivated after a partition ownership change"
            );
        }
    };
    // Borrowed by every message's future (they all end before this function returns): no
    // reference count or string copied per message.
    let (decider, dead_letter, limits, publisher) = (&*decider, &dead_letter, &*limits, &publisher);
    consume(
        &consumer,
        topic,
        max_in_flight,
        stop.clone(),
        &ownership,
        Some(publisher),
        settle,
        // The events of a burst of messages, sent to the shards together at the burst's end.
        decider.scorer.dispatch_batch(),
        Dispatch::send,
        |dispatch, message| {
            let received_at = Instant::now();
            t::KAFKA.received.increment(1);
            let (partition, offset) = (message.partition(), message.offset());
            let produced_ms = message.timestamp().to_millis();
            let payload = message.payload().unwrap_or_default();
            let origin = MessageOrigin {
                topic,
                partition,
                offset,
                timestamp_ms: produced_ms,
            };
            let mode = ParseMode::Message(origin);
            let parsed = parse_transaction(payload, mode, limits, chrono::Utc::now())
                .and_then(|(event, _)| decider.currencies.convert(event, Source::Kafka))
                .map(|event| {
                    // Shared from here: the message's future then holds a pointer, not the event.
                    let event = Arc::new(event);
                    let decided =
                        decider.decide_dispatched(dispatch, Arc::clone(&event), received_at);
                    (event, decided)
                });
            let raw = parsed.is_err().then(|| payload.to_vec());
            // Only a dead letter needs the message key; for a parsed event it is nearly always
            // the user id, which the event holds, so it is copied only when it is not.
            let key = match (&parsed, message.key()) {
                (Ok((event, _)), Some(key)) if key == event.user_id.as_bytes() => None,
                (_, key) => Some(key.map(<[u8]>::to_vec)),
            };
            let mut stop = stop.clone();
            async move {
                let (outcome, event) = match parsed {
                    Ok((event, decided)) => {
                        let outcome =
                            decide_until_done(decider, &event, received_at, decided, &mut stop)
                                .await;
                        (outcome, Some(event))
                    }
                    Err(invalid) => {
                        sentinel_api::metrics::event_invalid("kafka", &invalid);
                        (Err(DecisionError::Invalid(invalid)), None)
                    }
                };
                match outcome {
                    Ok(stored) => {
                        let source = InputMessage {
                            partition,
                            offset,
                            produced_ms,
                        };
                        return match publisher
                            .publish_tracked(&stored.decision, source, &mut stop)
                            .await
                        {
                            Ok(true) => Handled::Publishing,
                            Ok(false) => Handled::Abandoned,
                            Err(e) => {
                                // Only a decision JSON cannot encode; redelivered after restart.
                                tracing::error!(error = %e, partition, offset, "a decision could not be published");
                                Handled::Abandoned
                            }
                        };
                    }
                    Err(DecisionError::Unavailable(_)) => {
                        // Shutting down before the decision was stored: leave the offset
                        // alone so the event is redelivered.
                        return Handled::Abandoned;
                    }
                    Err(error) => {
                        decider.stats.record_rejected();
                        // The raw bytes of an unparseable message; the event itself when
                        // scoring it crashed its actor.
                        let bytes = match (raw, &event) {
                            (Some(raw), _) => raw,
                            (None, Some(event)) => serde_json::to_vec(&**event).unwrap_or_default(),
                            (None, None) => Vec::new(),
                        };
                        let origin = Origin {
                            topic,
                            partition,
                            offset,
                        };
                        let key = match &key {
                            Some(copied) => copied.as_deref(),
                            None => event.as_deref().map(|e| e.user_id.as_bytes()),
                        };
                        // Boxed: rare, and inline its state would enlarge every message's
                        // future (each is allocated and moved once per message).
                        let recorded =
                            Box::pin(dead_letter.send(key, &bytes, &error, origin, &mut stop))
                                .await;
                        if !recorded {
                            // Stopping before the broker took it: redelivered after restart.
                            return Handled::Abandoned;
                        }
                    }
                }
                Handled::Finished { partition, offset }
            }
        },
    )
    .await
}

/// The consume loop every group member shares: `handle` turns each message into a future that
/// handles it ([`Handled`]); at most `max_in_flight` messages are unfinished at once; a
/// partition's offset is stored only past finished messages, and a message whose decision is
/// published with `publisher` finishes when its delivery report comes. Messages are taken in
/// bursts (every message librdkafka already holds, up to [`BURST`]); `handle` may gather in
/// `burst` what the burst's messages share, and `end_burst` runs on it after each burst's
/// messages are handed to `handle`, before any of their futures is polled. After
/// each rebalance (`ownership` changes) what is in flight is finished first (a revoke is
/// handed over only then, its offsets committed), then `settle` runs. When `stop` fires, what
/// is in flight is drained and the offsets are committed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn consume<Fut, Settled, Burst>(
    consumer: &StreamConsumer<GroupEvents>,
    topic: &str,
    max_in_flight: usize,
    mut stop: watch::Receiver<bool>,
    ownership: &PartitionOwnership,
    publisher: Option<&Publisher>,
    mut settle: impl FnMut() -> Settled,
    mut burst: Burst,
    mut end_burst: impl FnMut(&mut Burst),
    mut handle: impl FnMut(&mut Burst, &BorrowedMessage<'_>) -> Fut,
) -> anyhow::Result<()>
where
    Fut: std::future::Future<Output = Handled>,
    Settled: std::future::Future<Output = ()>,
{
    let mut tracker = OffsetTracker::default();
    let mut in_flight = FuturesUnordered::new();
    let mut deliveries = PendingDeliveries::new(publisher, stop.clone());
    let mut revokes = ownership.revokes();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Ok(()) = revokes.changed() => {
                let revoked = ownership.take_pending_revoke();
                let drained = tokio::time::timeout(
                    REVOKE_DRAIN_LIMIT,
                    drain(consumer, topic, &mut tracker, &mut in_flight, &mut deliveries),
                )
                .await;
                if let Some(partitions) = revoked {
                    if drained.is_err() {
                        metrics::counter!(t::REVOKE_DRAIN_TIMEOUTS).increment(1);
                        tracing::warn!(
                            in_flight = in_flight.len(),
                            publishing = deliveries.outstanding(),
                            ?partitions,
                            "revoked partitions handed over before their events finished; the new owner redelivers them"
                        );
                    }
                    complete_revoke(consumer, topic, &partitions);
                }
                settle().await;
            }
            () = deliveries.ready() => {
                finish_delivered(consumer, topic, &mut tracker, &mut deliveries);
            }
            Some(handled) = in_flight.next(), if !in_flight.is_empty() => {
                record(consumer, topic, &mut tracker, &mut deliveries, handled);
                // And every other one already done, without a turn of the loop each.
                while let Some(Some(handled)) = in_flight.next().now_or_never() {
                    record(consumer, topic, &mut tracker, &mut deliveries, handled);
                }
            }
            received = consumer.recv(), if tracker.in_flight() < max_in_flight => {
                let mut next = Some(received);
                let mut taken = 0;
                while let Some(received) = next.take() {
                    taken += 1;
                    match received {
                        Ok(message) => {
                            tracker.start(message.partition(), message.offset());
                            in_flight.push(handle(&mut burst, &message));
                        }
                        Err(e) => tracing::warn!(error = %e, "consumer error"),
                    }
                    // A revoke waiting: its partitions are drained before anything more is
                    // taken.
                    let more = taken < BURST
                        && tracker.in_flight() < max_in_flight
                        && !revokes.has_changed().unwrap_or(false);
                    if more {
                        next = consumer.recv().now_or_never();
                    }
                }
                end_burst(&mut burst);
                t::KAFKA.in_flight.set(tracker.in_flight() as f64);
            }
        }
    }
    tracing::info!(
        in_flight = in_flight.len(),
        publishing = deliveries.outstanding(),
        topic,
        "draining the Kafka source"
    );
    let drained = tokio::time::timeout(
        STOP_DELIVERY_LIMIT,
        drain(
            consumer,
            topic,
            &mut tracker,
            &mut in_flight,
            &mut deliveries,
        ),
    )
    .await;
    if drained.is_err() {
        tracing::warn!(
            publishing = deliveries.outstanding(),
            refused = deliveries.refused(),
            "stopping before the broker took every decision; their events will be redelivered"
        );
    }
    ownership.close();
    match ownership.take_pending_revoke() {
        Some(partitions) => complete_revoke(consumer, topic, &partitions),
        None => {
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::warn!(error = %e, "final offset commit failed; the last messages will be redelivered");
            }
        }
    }
    Ok(())
}

/// Finishes what is in flight: the messages being handled, then the deliveries of their
/// decisions.
async fn drain<Fut>(
    consumer: &StreamConsumer<GroupEvents>,
    topic: &str,
    tracker: &mut OffsetTracker,
    in_flight: &mut FuturesUnordered<Fut>,
    deliveries: &mut PendingDeliveries<'_>,
) where
    Fut: std::future::Future<Output = Handled>,
{
    while !in_flight.is_empty() {
        tokio::select! {
            () = deliveries.ready() => {
                finish_delivered(consumer, topic, tracker, deliveries);
            }
            Some(handled) = in_flight.next() => {
                record(consumer, topic, tracker, deliveries, handled);
            }
        }
    }
    while deliveries.outstanding() > 0 {
        deliveries.ready().await;
        finish_delivered(consumer, topic, tracker, deliveries);
    }
}

/// Hands revoked partitions over: commits the offsets stored for them (their finished events),
/// then lets librdkafka unassign them so the group can move them.
fn complete_revoke(consumer: &StreamConsumer<GroupEvents>, topic: &str, partitions: &[i32]) {
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        // Nothing stored to commit is reported as an error too; the new owner redelivers.
        tracing::debug!(error = %e, "offset commit on revoke");
    }
    let result = if matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    ) {
        let mut tpl = TopicPartitionList::new();
        for partition in partitions {
            tpl.add_partition(topic, *partition);
        }
        consumer.incremental_unassign(&tpl)
    } else {
        consumer.unassign()
    };
    match result {
        Ok(()) => tracing::info!(?partitions, "revoked partitions drained and handed over"),
        Err(e) => tracing::warn!(error = %e, "handing revoked partitions over failed"),
    }
}

/// Records how a message's handling ended.
fn record(
    consumer: &StreamConsumer<GroupEvents>,
    topic: &str,
    tracker: &mut OffsetTracker,
    deliveries: &mut PendingDeliveries<'_>,
    handled: Handled,
) {
    match handled {
        Handled::Finished { partition, offset } => {
            finish(consumer, topic, tracker, partition, offset)
        }
        Handled::Publishing => deliveries.sent(),
        Handled::Abandoned => {}
    }
}

/// Finishes the messages whose decisions the waiting delivery reports confirm, storing each
/// partition's offset once for the batch.
fn finish_delivered(
    consumer: &StreamConsumer<GroupEvents>,
    topic: &str,
    tracker: &mut OffsetTracker,
    deliveries: &mut PendingDeliveries<'_>,
) {
    // (partition, offset through which it is done), for the partitions that moved.
    let mut moved: Vec<(i32, i64)> = Vec::new();
    deliveries.settle(|partition, offset| {
        if let Some(through) = tracker.finish(partition, offset) {
            match moved.iter_mut().find(|(p, _)| *p == partition) {
                Some(entry) => entry.1 = through,
                None => moved.push((partition, through)),
            }
        }
    });
    for (partition, through) in moved {
        store_offset(consumer, topic, partition, through);
    }
    t::KAFKA.in_flight.set(tracker.in_flight() as f64);
}

/// Marks a message finished and stores the offset through which its partition is done.
fn finish(
    consumer: &StreamConsumer<GroupEvents>,
    topic: &str,
    tracker: &mut OffsetTracker,
    partition: i32,
    offset: i64,
) {
    if let Some(through) = tracker.finish(partition, offset) {
        store_offset(consumer, topic, partition, through);
    }
    t::KAFKA.in_flight.set(tracker.in_flight() as f64);
}

/// Stores `through` as the last done offset of `partition`, for librdkafka to commit.
fn store_offset(consumer: &StreamConsumer<GroupEvents>, topic: &str, partition: i32, through: i64) {
    // Fails only for a partition revoked meanwhile; its new owner redelivers, and the store
    // answers with the decision made here.
    if let Err(e) = consumer.store_offset(topic, partition, through) {
        tracing::debug!(error = %e, partition, "offset not stored");
    }
}

/// Waits for an event's decision (`decided`, already on its way), then retries transient
/// failures (store or broker trouble) with backoff until it succeeds, fails for good, or the
/// node stops.
async fn decide_until_done(
    decider: &NodeDecider,
    event: &Arc<sentinel_event::Transaction>,
    received: Instant,
    decided: impl std::future::Future<Output = Result<sentinel_store::Stored, DecisionError>>,
    stop: &mut watch::Receiver<bool>,
) -> Result<sentinel_store::Stored, DecisionError> {
    let mut outcome = decided.await;
    let mut backoff = Duration::from_millis(100);
    loop {
        match outcome {
            Ok(stored) => return Ok(stored),
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
        outcome = decider
            .decide_unpublished(Arc::clone(event), received)
            .await;
    }
}
