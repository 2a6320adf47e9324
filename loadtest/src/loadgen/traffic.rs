//! The simulator configured for a load run, and events encoded for the wire.
//!
//! Labels stay out of the event JSON: the encoded body is the bare [`Transaction`]; the
//! scenario travels separately (a Kafka header, or not at all over HTTP).
//!
//! [`Transaction`]: sentinel_event::Transaction

use super::schedule::RateSchedule;
use crate::simulator::{SimConfig, MIN_GAP_MS};
use chrono::{DateTime, Utc};

/// Most events per second of event time a population of `users` can produce: every user waits
/// at least `MIN_GAP_MS` between normal transactions.
pub fn population_capacity(users: u32) -> f64 {
    f64::from(users.max(1)) * 1_000.0 / MIN_GAP_MS as f64
}

/// The simulator configuration for a run: a steady rate (no daily rhythm) at the schedule's
/// peak, starting early enough that the last event's timestamp is not ahead of the wall clock.
///
/// The sender paces by count, so event time advances at `sent rate / simulated rate` per wall
/// second: slower than the wall clock while a ramp is below its peak (events look slightly
/// old, which the node accepts), faster when the population cannot reach the peak rate. In
/// that case the start moves back by the expected overrun, since the node refuses events too
/// far in its future.
pub fn sim_config(
    schedule: &RateSchedule,
    duration_secs: u64,
    seed: u64,
    users: u32,
    fraud_ratio: f64,
    now: DateTime<Utc>,
) -> SimConfig {
    let peak = schedule.peak_rate();
    let capacity = population_capacity(users);
    let event_rate = peak.min(capacity).max(1e-3);
    let planned = schedule.events_by(std::time::Duration::from_secs(duration_secs)) as f64;
    let span_secs = planned / event_rate;
    let ahead_secs = (span_secs - duration_secs as f64).max(0.0);
    if capacity < peak {
        tracing::warn!(
            users,
            peak_rate = peak,
            capacity = capacity.round(),
            "the population cannot produce the peak rate in event time (each user waits at least \
             45 s); event time will run ahead of the wall clock, so the simulation starts {:.0} s \
             in the past; use --users >= 45 x rate for realistic per-user timing",
            ahead_secs
        );
    }
    SimConfig {
        seed,
        users,
        rate_per_sec: peak,
        fraud_ratio,
        start: now - chrono::Duration::milliseconds((ahead_secs * 1_000.0) as i64),
        daily_rhythm: false,
        ..SimConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::Simulator;

    #[test]
    fn encoded_events_never_carry_labels() {
        let now = Utc::now();
        let schedule = RateSchedule::Steady { rate: 100.0 };
        let mut sim = Simulator::new(sim_config(&schedule, 5, 7, 2_000, 0.5, now));
        let mut labelled = 0;
        for _ in 0..2_000 {
            let e = sim.next_event();
            let json = serde_json::to_string(&e.txn).unwrap();
            if let Some(s) = e.label {
                labelled += 1;
                assert!(!json.contains(s.as_str()), "{json}");
            }
            assert!(!json.contains("metadata"), "{json}");
        }
        assert!(labelled > 0);
    }

    #[test]
    fn start_moves_back_when_the_population_is_too_small() {
        let now = Utc::now();
        let schedule = RateSchedule::Steady { rate: 1_000.0 };
        let enough = sim_config(&schedule, 60, 1, 100_000, 0.0, now);
        assert_eq!(enough.start, now);
        assert!(!enough.daily_rhythm);
        let small = sim_config(&schedule, 60, 1, 4_500, 0.0, now);
        // 4,500 users make at most 100 events/s: 60,000 events span 600 s, 540 s too many.
        assert_eq!((now - small.start).num_seconds(), 540);
    }
}
