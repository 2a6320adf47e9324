//! Engine metrics (the one the pure engine records itself; the actors crate has the rest).

/// Counter: entities (cards, devices, IPs, merchants) forgotten after the retention or to stay
/// within memory bounds.
pub const ENTITIES_EVICTED: &str = "sentinel_entities_evicted_total";

/// Help texts, and the counter at zero. The node calls this once its recorder is installed.
pub fn describe() {
    metrics::describe_counter!(
        ENTITIES_EVICTED,
        "Entities forgotten after their retention or to stay within memory bounds."
    );
    metrics::counter!(ENTITIES_EVICTED).increment(0);
}
