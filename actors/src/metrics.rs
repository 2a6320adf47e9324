//! Actor metrics. Labels are bounded: rule names (an analyst-curated set) and modes, never a
//! user or transaction id.
//!
//! The per-event series are registered once, on first use, and kept as handles: counting is
//! then an atomic add instead of a registry lookup with a label vector. The node installs its
//! recorder before the first event; a handle taken before any recorder counts nothing.

use crate::restore::Source;
use metrics::{Counter, Gauge, Histogram};
use sentinel_rules::Mode;
use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};

/// Gauge: user actors alive on this node.
pub const ACTORS_LIVE: &str = "sentinel_user_actors_live";
/// Counter: user actors passivated (stopped once their state is stored): idle, over the live limit, on a
/// rebalance or at shutdown.
pub const PASSIVATIONS: &str = "sentinel_user_actor_passivations_total";
/// Counter: user actors passivated before their idle time because their shard held more live
/// actors than its share of `[actors] max_live_users`. Counted in [`PASSIVATIONS`] too.
pub const EVICTED: &str = "sentinel_user_actors_evicted_total";
/// Gauge: passivated users' states kept in memory ([`crate::ScorerConfig::parked_state_bytes`]).
pub const PARKED_STATES: &str = "sentinel_user_states_parked";
/// Gauge: the memory the parked states hold, by estimate (bytes).
pub const PARKED_BYTES: &str = "sentinel_user_states_parked_bytes";
/// Counter: user actors started for a user whose snapshot or history existed (restored from
/// the store or from its parked state).
pub const RESTORES: &str = "sentinel_user_actor_restores_total";
/// Counter: user states loaded as their actor started, by what the store held (`kind`):
/// `new` (nothing; the embedded store answers that from memory, without a read), `snapshot`
/// (a snapshot and no decision after it) or `replay` (decisions replayed); or `parked` (the
/// state kept in memory when the user was passivated, no read).
pub const USER_RESTORES: &str = "sentinel_user_restores_total";
/// Histogram: users whose restore points one store call read (restores of users starting
/// together are batched).
pub const RESTORE_BATCH_SIZE: &str = "sentinel_user_restore_batch_size";
/// Counter: user actors restarted by their supervisor after a failure.
pub const RESTARTS: &str = "sentinel_user_actor_restarts_total";
/// Counter: events later than the allowed lateness (decided, kept out of windows).
pub const LATE_EVENTS: &str = "sentinel_late_events_total";
/// Counter: redelivered events answered with their stored decision.
pub const REDELIVERED: &str = "sentinel_redelivered_events_total";
/// Histogram: seconds a decision waited for its entities' distinct-user counts.
pub const ENTITY_LOOKUP_SECONDS: &str = "sentinel_entity_lookup_duration_seconds";
/// Counter: entity counts that stayed unknown (owner unreachable or too slow); rules comparing
/// them did not fire.
pub const ENTITY_LOOKUP_FAILURES: &str = "sentinel_entity_lookup_failures_total";
/// Gauge: cluster members this node places entities on (itself included).
pub const ENTITY_OWNERS: &str = "sentinel_entity_owners";
/// Counter: rule hits by rule and mode (`active` or `shadow`).
pub const RULE_HITS: &str = "sentinel_rule_hits_total";
/// Histogram: seconds the user actor spent computing one decision.
pub const SCORING_SECONDS: &str = "sentinel_scoring_duration_seconds";

/// The handles of the series user actors, their shards and entity lookups record, per event
/// or per actor started and stopped.
pub(crate) struct ActorMetrics {
    /// [`ACTORS_LIVE`].
    pub live: Gauge,
    /// [`USER_RESTORES`], one series per kind, in the order of [`Source::KINDS`].
    user_restores: [Counter; 4],
    /// [`PARKED_STATES`].
    pub parked_states: Gauge,
    /// [`PARKED_BYTES`].
    pub parked_bytes: Gauge,
    /// [`ENTITY_LOOKUP_SECONDS`].
    pub entity_lookup: Histogram,
    /// [`ENTITY_LOOKUP_FAILURES`].
    pub entity_lookup_failures: Counter,
    /// [`SCORING_SECONDS`].
    pub scoring: Histogram,
    /// [`LATE_EVENTS`].
    pub late: Counter,
    /// [`REDELIVERED`].
    pub redelivered: Counter,
    /// [`PASSIVATIONS`].
    pub passivations: Counter,
    /// [`RESTORES`].
    pub restores: Counter,
    /// [`EVICTED`].
    pub evicted: Counter,
}

/// The user actors' handles, registered on first use.
pub(crate) static ACTOR: LazyLock<ActorMetrics> = LazyLock::new(|| ActorMetrics {
    live: metrics::gauge!(ACTORS_LIVE),
    user_restores: Source::KINDS.map(|kind| metrics::counter!(USER_RESTORES, "kind" => kind)),
    parked_states: metrics::gauge!(PARKED_STATES),
    parked_bytes: metrics::gauge!(PARKED_BYTES),
    entity_lookup: metrics::histogram!(ENTITY_LOOKUP_SECONDS),
    entity_lookup_failures: metrics::counter!(ENTITY_LOOKUP_FAILURES),
    scoring: metrics::histogram!(SCORING_SECONDS),
    late: metrics::counter!(LATE_EVENTS),
    redelivered: metrics::counter!(REDELIVERED),
    passivations: metrics::counter!(PASSIVATIONS),
    restores: metrics::counter!(RESTORES),
    evicted: metrics::counter!(EVICTED),
});

impl ActorMetrics {
    /// Counts one user state loaded from what `source` says the store held.
    pub fn user_restored(&self, source: Source) {
        self.user_restores[source.kind_index()].increment(1);
    }
}

/// [`RULE_HITS`] handles by rule name, one table per mode (active, shadow): a series is
/// registered at its first hit, so rules that never fire in a mode export nothing for it.
static RULE_HIT_COUNTERS: LazyLock<[RwLock<HashMap<String, Counter>>; 2]> =
    LazyLock::new(Default::default);

/// Counts one hit of `rule` in `mode`.
pub(crate) fn rule_hit(rule: &str, mode: Mode) {
    let (table, mode) = match mode {
        Mode::Shadow => (&RULE_HIT_COUNTERS[1], "shadow"),
        _ => (&RULE_HIT_COUNTERS[0], "active"),
    };
    if let Some(counter) = table
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(rule)
    {
        counter.increment(1);
        return;
    }
    table
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(rule.to_owned())
        .or_insert_with(|| metrics::counter!(RULE_HITS, "rule" => rule.to_owned(), "mode" => mode))
        .increment(1);
}

/// Help texts, and zeroed series so dashboards and alerts see a zero from the start. The node
/// calls this once its recorder is installed.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(ACTORS_LIVE, "Live user actors.");
    describe_counter!(
        PASSIVATIONS,
        "User actors passivated: idle, over the live limit, on a rebalance or at shutdown."
    );
    describe_counter!(
        EVICTED,
        "User actors passivated early because their shard was at its live-actor limit."
    );
    describe_counter!(
        RESTORES,
        "User actors started for a user with history, restored from the store or a parked state."
    );
    describe_counter!(
        USER_RESTORES,
        "User states loaded as their actor started, by what the store held (kind: new, snapshot, replay) or parked (kept in memory at passivation)."
    );
    describe_gauge!(PARKED_STATES, "Passivated users' states kept in memory.");
    describe_gauge!(
        PARKED_BYTES,
        Unit::Bytes,
        "Memory the parked user states hold, by estimate."
    );
    describe_histogram!(
        RESTORE_BATCH_SIZE,
        "Users whose restore points one store call read."
    );
    describe_counter!(RESTARTS, "User actors restarted after a failure.");
    describe_counter!(LATE_EVENTS, "Events later than the allowed lateness.");
    describe_counter!(REDELIVERED, "Redelivered events answered from the store.");
    describe_histogram!(
        ENTITY_LOOKUP_SECONDS,
        Unit::Seconds,
        "Time a decision waited for its entities' distinct-user counts."
    );
    describe_counter!(
        ENTITY_LOOKUP_FAILURES,
        "Entity counts that stayed unknown (owner unreachable or too slow)."
    );
    describe_gauge!(
        ENTITY_OWNERS,
        "Cluster members this node places entities on, itself included."
    );
    describe_counter!(RULE_HITS, "Rule hits, by rule and mode.");
    describe_histogram!(
        SCORING_SECONDS,
        Unit::Seconds,
        "Time a user actor spends deciding one event."
    );
    for name in [ACTORS_LIVE, PARKED_STATES, PARKED_BYTES] {
        metrics::gauge!(name).increment(0.0);
    }
    for name in [
        RESTARTS,
        PASSIVATIONS,
        EVICTED,
        RESTORES,
        LATE_EVENTS,
        REDELIVERED,
    ] {
        metrics::counter!(name).increment(0);
    }
}
