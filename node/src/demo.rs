//! The demo's traffic source: the shared simulator, paced against the wall clock.

use crate::currency::Source;
use crate::decider::NodeDecider;
use crate::telemetry as t;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sentinel_simulator::{SimConfig, Simulator};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// What traffic the demo generates.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Events per second.
    pub rate: f64,
    /// Distinct users.
    pub users: u32,
    /// Fraction of user turns that inject fraud.
    pub fraud_ratio: f64,
    /// Random seed.
    pub seed: u64,
    /// Follow the simulator's daily rhythm instead of a steady rate.
    pub daily_rhythm: bool,
    /// Stop after this long; run until stopped when `None`.
    pub duration: Option<Duration>,
}

/// How long producing one simulated event may wait for the broker.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Events being decided (or produced) at once; the simulator waits beyond this (backpressure).
const MAX_IN_FLIGHT: usize = 10_000;

/// Where the simulated events go.
pub enum Feed {
    /// Straight into the node's scoring path.
    Direct(Arc<NodeDecider>),
    /// Into the input topic, keyed by user id, for the node's Kafka source to consume: the
    /// demo then runs the whole Kafka path (consume, decide, store, publish, commit).
    Topic {
        /// The producer.
        producer: FutureProducer,
        /// The input topic.
        topic: String,
    },
}

/// Feeds simulated events until `stop` fires or the duration ends.
pub async fn run_simulator(options: DemoOptions, feed: Feed, mut stop: watch::Receiver<bool>) {
    let config = SimConfig {
        seed: options.seed,
        users: options.users,
        rate_per_sec: options.rate,
        fraud_ratio: options.fraud_ratio,
        daily_rhythm: options.daily_rhythm,
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(config);
    let sim_start = sim.peek_time();
    let wall_start = Instant::now();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let elapsed = wall_start.elapsed();
        if options.duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        // Release every event whose event time has come, keeping event time on the clock.
        let due = sim_start + chrono::Duration::from_std(elapsed).unwrap_or_default();
        while sim.peek_time() <= due {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let event = sim.next_event().txn;
            match &feed {
                Feed::Direct(decider) => {
                    t::RECEIVED_SIMULATOR.increment(1);
                    let event = match decider.currencies.convert(event, Source::Simulator) {
                        Ok(event) => event,
                        Err(e) => {
                            decider.stats.record_rejected();
                            tracing::warn!(error = %e, "simulated event not decided");
                            continue;
                        }
                    };
                    let decider = Arc::clone(decider);
                    tokio::spawn(async move {
                        if let Err(e) = decider.decide_shared(Arc::new(event), Instant::now()).await
                        {
                            decider.stats.record_rejected();
                            tracing::warn!(error = %e, "simulated event not decided");
                        }
                        drop(permit);
                    });
                }
                Feed::Topic { producer, topic } => {
                    let Ok(payload) = serde_json::to_vec(&event) else {
                        continue;
                    };
                    let producer = producer.clone();
                    let topic = topic.clone();
                    tokio::spawn(async move {
                        let record = FutureRecord::to(&topic)
                            .key(event.user_id.as_bytes())
                            .payload(&payload);
                        if let Err((e, _)) = producer.send(record, PRODUCE_TIMEOUT).await {
                            tracing::warn!(error = %e, "simulated event not produced");
                        }
                        drop(permit);
                    });
                }
            }
        }
    }
    // Wait for what is in flight.
    let _ = permits.acquire_many(MAX_IN_FLIGHT as u32).await;
}
