//! Logs (tracing) and metrics (Prometheus exposition).

use crate::config::LogFormat;
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sentinel_event::Outcome;
use std::sync::{LazyLock, OnceLock};
use tracing_subscriber::EnvFilter;

/// Counter: events received, by source (`kafka`, `http`, `simulator`).
pub const EVENTS_RECEIVED: &str = "sentinel_events_received_total";
/// Counter: decisions newly made, by outcome.
pub const DECISIONS: &str = "sentinel_decisions_total";
/// Histogram: seconds from the node receiving an event to its decision being stored.
pub const DECISION_LATENCY: &str = "sentinel_decision_latency_seconds";
/// Histogram: seconds from the producer's timestamp to the decision being published.
pub const END_TO_END_LATENCY: &str = "sentinel_end_to_end_latency_seconds";
/// Counter: events sent to the dead-letter topic (or refused over HTTP), by reason class.
pub const DEAD_LETTERED: &str = "sentinel_dead_lettered_events_total";
/// Counter: decisions published, by topic role (`approved`, `fraud`).
pub const PUBLISHED: &str = "sentinel_decisions_published_total";
/// Counter: failed publish attempts (retried).
pub const PUBLISH_ERRORS: &str = "sentinel_publish_errors_total";
/// Counter: consumer-group rebalances, by kind (`assign`, `revoke`).
pub const REBALANCES: &str = "sentinel_kafka_rebalances_total";
/// Counter: revokes handed over before their partitions' in-flight events finished (the
/// drain limit was hit; the new owner redelivers those events).
pub const REVOKE_DRAIN_TIMEOUTS: &str = "sentinel_kafka_revoke_drain_timeouts_total";
/// Gauge: messages of a partition not yet committed (high watermark minus committed offset),
/// by partition, on the node that owns it (0 elsewhere).
pub const CONSUMER_LAG: &str = "sentinel_kafka_consumer_lag_messages";
/// Gauge: cluster members this node sees (itself included).
pub const CLUSTER_MEMBERS: &str = "sentinel_cluster_members";
/// Gauge: events being decided right now.
pub const IN_FLIGHT: &str = "sentinel_events_in_flight";
/// Counter: HTTP events sent on to the member owning their partition, by result (`decided`,
/// `refused`, `not_owner`, `unreachable`, `no_owner`).
pub const OWNER_ROUTE_FORWARDS: &str = "sentinel_owner_route_forwards_total";
/// Counter: events forwarded to this node by another member, by result (`decided`, `refused`,
/// `not_owner`).
pub const OWNER_ROUTE_RECEIVED: &str = "sentinel_owner_route_received_total";
/// Gauge: labels in the entity-risk index the models read (merchant/device features).
pub const LABEL_INDEX_LABELS: &str = "sentinel_label_index_labels";
/// Gauge: merchants and devices with activity in the entity-risk index.
pub const ENTITY_INDEX_ENTITIES: &str = "sentinel_entity_index_entities";
/// Counter: rebuilds of the entity-risk index that failed (the previous index stays in use).
pub const LABEL_INDEX_REFRESH_FAILURES: &str = "sentinel_label_index_refresh_failures_total";
/// Counter: refreshes of the entity-risk index that built and published a new one (the others
/// found no change any event could see yet).
pub const ENTITY_INDEX_REBUILDS: &str = "sentinel_entity_index_rebuilds_total";
/// Counter: decisions counted into the entity-risk index's activity, by how they arrived
/// (`source`: `observed`, committed through this process; `read`, read back from the store).
pub const ENTITY_INDEX_DECISIONS: &str = "sentinel_entity_index_decisions_total";
/// Counter: what became of the saved entity-risk index at start-up (`outcome`: `restored`,
/// `missing`, `refused`: damaged, not this store's, too short for the window or older than
/// it, the reason logged; `failed`: unreadable).
pub const ENTITY_INDEX_RESTORES: &str = "sentinel_entity_index_restores_total";
/// Counter: saves of the entity-risk index that failed or were held back (a decision counted
/// not readable in the store yet); the file kept its last good save.
pub const ENTITY_INDEX_SAVE_FAILURES: &str = "sentinel_entity_index_save_failures_total";
/// Store requests from cluster peers the store host refused (writes scoring does not need).
pub const STORE_PEER_REFUSALS: &str = "sentinel_store_peer_refusals_total";

/// Gauge: API connections open now.
pub const HTTP_CONNECTIONS_OPEN: &str = "sentinel_http_connections_open";
/// Counter: API connections closed on accept because `http_max_connections` were open.
pub const HTTP_CONNECTIONS_REFUSED: &str = "sentinel_http_connections_refused_total";

/// The handles of the series every decision records, registered once (when the recorder is
/// installed) so that counting one is an atomic add, not a registry lookup with labels.
pub struct ScoringMetrics {
    /// [`DECISIONS`] by outcome, in [`Outcome::ALL`] order.
    decisions: [Counter; 3],
    /// [`DECISION_LATENCY`].
    pub latency: Histogram,
}

impl ScoringMetrics {
    /// [`DECISIONS`] of `outcome`.
    pub fn decisions(&self, outcome: Outcome) -> &Counter {
        let at = match outcome {
            Outcome::Approve => 0,
            Outcome::Review => 1,
            Outcome::Decline => 2,
        };
        &self.decisions[at]
    }
}

/// The scoring path's handles (forced by [`prometheus`], after the recorder is installed).
pub static SCORING: LazyLock<ScoringMetrics> = LazyLock::new(|| ScoringMetrics {
    decisions: Outcome::ALL.map(|o| metrics::counter!(DECISIONS, "outcome" => o.as_str())),
    latency: metrics::histogram!(DECISION_LATENCY),
});

/// [`EVENTS_RECEIVED`] from `http`, registered at the first such event.
pub static RECEIVED_HTTP: LazyLock<Counter> =
    LazyLock::new(|| metrics::counter!(EVENTS_RECEIVED, "source" => "http"));

/// [`EVENTS_RECEIVED`] from `simulator`, registered at the first such event.
pub static RECEIVED_SIMULATOR: LazyLock<Counter> =
    LazyLock::new(|| metrics::counter!(EVENTS_RECEIVED, "source" => "simulator"));

/// The Kafka path's per-event series, registered when the first message arrives (after the
/// recorder is installed) so that each message costs atomic adds, not registry lookups.
pub struct KafkaMetrics {
    /// [`EVENTS_RECEIVED`] from `kafka`.
    pub received: Counter,
    /// [`END_TO_END_LATENCY`].
    pub end_to_end: Histogram,
    /// [`IN_FLIGHT`].
    pub in_flight: Gauge,
    /// [`PUBLISHED`] to the approved topic.
    pub published_approved: Counter,
    /// [`PUBLISHED`] to the fraud topic.
    pub published_fraud: Counter,
}

/// The Kafka path's handles.
pub static KAFKA: LazyLock<KafkaMetrics> = LazyLock::new(|| KafkaMetrics {
    received: metrics::counter!(EVENTS_RECEIVED, "source" => "kafka"),
    end_to_end: metrics::histogram!(END_TO_END_LATENCY),
    in_flight: metrics::gauge!(IN_FLIGHT),
    published_approved: metrics::counter!(PUBLISHED, "topic" => "approved"),
    published_fraud: metrics::counter!(PUBLISHED, "topic" => "fraud"),
});

/// Latency buckets in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0];

/// Installs the log subscriber. `RUST_LOG` refines the default `info` level. ractor is kept
/// at `warn`: at `info` it opens an `Actor` span per actor that every message it sends carries
/// and every handler poll enters, a cost per event for no log line of ours.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,ractor=warn,ractor_cluster=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(sentinel_store::metrics::BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(sentinel_actors::metrics::RESTORE_BATCH_SIZE.into()),
                        BATCH_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// Help texts, and zeroed series so dashboards show every outcome from the start. Each crate
/// describes its own metrics beside their names; this adds the node's.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    sentinel_engine::metrics::describe();
    sentinel_actors::metrics::describe();
    sentinel_store::metrics::describe();
    sentinel_api::metrics::describe();
    sentinel_alerts::metrics::describe();
    describe_counter!(EVENTS_RECEIVED, "Events received, by source.");
    describe_counter!(DECISIONS, "Decisions made, by outcome.");
    describe_histogram!(
        DECISION_LATENCY,
        Unit::Seconds,
        "Node receipt to stored decision."
    );
    describe_histogram!(
        END_TO_END_LATENCY,
        Unit::Seconds,
        "Producer timestamp to published decision."
    );
    describe_counter!(
        DEAD_LETTERED,
        "Events that could not be decided, by reason."
    );
    describe_counter!(PUBLISHED, "Decisions published to the output topics.");
    describe_counter!(PUBLISH_ERRORS, "Failed publish attempts (retried).");
    describe_counter!(REBALANCES, "Consumer-group rebalances.");
    describe_counter!(
        REVOKE_DRAIN_TIMEOUTS,
        "Revokes handed over before their in-flight events finished."
    );
    describe_gauge!(IN_FLIGHT, "Events being decided right now.");
    describe_gauge!(
        CLUSTER_MEMBERS,
        "Cluster members this node sees, itself included."
    );
    describe_gauge!(
        CONSUMER_LAG,
        "Messages not yet committed per owned partition (high watermark - committed)."
    );
    describe_counter!(
        OWNER_ROUTE_FORWARDS,
        "HTTP events sent on to the partition's owner, by result."
    );
    describe_counter!(
        OWNER_ROUTE_RECEIVED,
        "Events forwarded here by another member, by result."
    );
    for result in ["decided", "refused", "not_owner", "unreachable", "no_owner"] {
        metrics::counter!(OWNER_ROUTE_FORWARDS, "result" => result).increment(0);
    }
    for result in ["decided", "refused", "not_owner"] {
        metrics::counter!(OWNER_ROUTE_RECEIVED, "result" => result).increment(0);
    }
    describe_gauge!(
        LABEL_INDEX_LABELS,
        "Labels in the entity-risk index the models read."
    );
    describe_gauge!(
        ENTITY_INDEX_ENTITIES,
        "Merchants and devices with activity in the entity-risk index."
    );
    describe_counter!(
        LABEL_INDEX_REFRESH_FAILURES,
        "Failed rebuilds of the entity-risk index (the previous one stays in use)."
    );
    describe_counter!(
        ENTITY_INDEX_REBUILDS,
        "Entity-risk index refreshes that built a new index (the others found no change any event could see yet)."
    );
    describe_counter!(
        ENTITY_INDEX_RESTORES,
        "What became of the saved entity-risk index at start-up, by outcome: restored, missing, refused (damaged, not this store's, too short for the window or older than it; the reason is logged) or failed (unreadable)."
    );
    describe_counter!(
        ENTITY_INDEX_SAVE_FAILURES,
        "Saves of the entity-risk index that failed (the file keeps the last good save)."
    );
    describe_counter!(
        ENTITY_INDEX_DECISIONS,
        "Decisions counted into the entity-risk index, by source: observed (committed through this process, its own or on a store host its members') or read (read back from the store)."
    );
    describe_counter!(
        STORE_PEER_REFUSALS,
        "Store requests from cluster peers the store host refused (keys, audit, rules, deletes)."
    );
    describe_gauge!(
        crate::log_head::LOG_POSITION,
        "Position of the decision log's last entry (the head is logged with its hash)."
    );
    describe_gauge!(HTTP_CONNECTIONS_OPEN, "API connections open now.");
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "API connections closed on accept because http_max_connections were open."
    );
    metrics::gauge!(HTTP_CONNECTIONS_OPEN).set(0.0);
    metrics::counter!(HTTP_CONNECTIONS_REFUSED).increment(0);
    metrics::gauge!(LABEL_INDEX_LABELS).set(0.0);
    metrics::gauge!(ENTITY_INDEX_ENTITIES).set(0.0);
    metrics::counter!(LABEL_INDEX_REFRESH_FAILURES).increment(0);
    metrics::counter!(ENTITY_INDEX_REBUILDS).increment(0);
    for source in ["observed", "read"] {
        metrics::counter!(ENTITY_INDEX_DECISIONS, "source" => source).increment(0);
    }
    for outcome in ["restored", "missing", "refused", "failed"] {
        metrics::counter!(ENTITY_INDEX_RESTORES, "outcome" => outcome).increment(0);
    }
    metrics::counter!(ENTITY_INDEX_SAVE_FAILURES).increment(0);
    for outcome in Outcome::ALL {
        SCORING.decisions(outcome).increment(0);
    }
    metrics::gauge!(IN_FLIGHT).set(0.0);
    // Counters of rare events exist from the start, so rates and alerts see a zero, not nothing.
    for name in [PUBLISH_ERRORS, REVOKE_DRAIN_TIMEOUTS, STORE_PEER_REFUSALS] {
        metrics::counter!(name).increment(0);
    }
}
