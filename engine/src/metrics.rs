//! Engine metrics (the one the pure engine records itself; the actors crate has the rest).

/// Counter: entities (cards, devices, IPs, merchants) forgotten after the retention or to stay
/// within memory bounds.
pub const ENTITIES_EVICTED: &str = "sentinel_entities_evicted_total";
