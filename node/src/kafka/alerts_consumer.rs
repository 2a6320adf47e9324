//! `sentinel alerts`: alerting as a standalone consumer of the fraud topic. Each decision is
//! stored with the alerts it owes in this process's own store (one write transaction), and its
//! offset is committed only after that write, so a crash loses no alert; a redelivered decision
//! is already stored and owes nothing new.

use super::consumer::{consume, subscribe, Handled};
use super::ownership::PartitionOwnership;
use crate::config::KafkaConfig;
use rdkafka::Message;
use sentinel_event::Decision;
use sentinel_store::Writer;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Consumes decisions from `kafka.fraud_topic` in consumer group `group` until `stop` fires.
pub async fn run_alerts_consumer(
    kafka: KafkaConfig,
    group: String,
    writer: Writer,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let topic = kafka.fraud_topic.as_str();
    // Nothing here lives per partition, so a rebalance needs no settling beyond finishing
    // what is in flight.
    let ownership = PartitionOwnership::default();
    let consumer = subscribe(&kafka, &group, topic, ownership.clone())?;
    let max_in_flight = kafka.max_in_flight.max(1);
    consume(
        &consumer,
        topic,
        max_in_flight,
        stop.clone(),
        &ownership,
        None,
        || async {},
        (),
        |()| {},
        |(), message| {
            let (partition, offset) = (message.partition(), message.offset());
            let parsed = serde_json::from_slice::<Decision>(message.payload().unwrap_or_default());
            let writer = writer.clone();
            let mut stop = stop.clone();
            async move {
                match parsed {
                    Ok(decision) => {
                        if store_until_done(&writer, Arc::new(decision), &mut stop)
                            .await
                            .is_none()
                        {
                            return Handled::Abandoned;
                        }
                    }
                    // Nothing can make it a decision: skip it, loudly, and move on.
                    Err(e) => tracing::warn!(partition, offset, error = %e,
                    "skipping a message that is not a decision"),
                }
                Handled::Finished { partition, offset }
            }
        },
    )
    .await
}

/// Stores a decision (and its alerts), retrying store trouble with backoff; `None` when
/// stopping first (the offset then stays uncommitted and the decision is redelivered).
async fn store_until_done(
    writer: &Writer,
    decision: Arc<Decision>,
    stop: &mut watch::Receiver<bool>,
) -> Option<()> {
    let mut wait = Duration::from_millis(50);
    loop {
        let (ack, stored) = tokio::sync::oneshot::channel();
        let outcome = match writer.submit_decision(Arc::clone(&decision), ack).await {
            Ok(()) => stored
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string())),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(_) => return Some(()),
            Err(error) => {
                tracing::warn!(%error, transaction_id = %decision.transaction_id, "storing a decision for alerting failed; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return None,
        }
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}
