//! The simulator configured for a load run, and events encoded for the wire.
//!
//! Labels stay out of the event JSON: the encoded body is the bare [`Transaction`]; the
//! scenario travels separately (a Kafka header, or not at all over HTTP).
//!
//! [`Transaction`]: sentinel_event::Transaction

use super::schedule::RateSchedule;
use chrono::{DateTime, Utc};
use sentinel_simulator::{SimConfig, Simulator, MIN_GAP_MS};
use serde::{Deserialize, Serialize};

/// Most events per second of event time a population of `users` can produce: every user waits
/// at least `MIN_GAP_MS` between normal transactions.
pub fn population_capacity(users: u32) -> f64 {
    f64::from(users.max(1)) * 1_000.0 / MIN_GAP_MS as f64
}

/// Who sends the traffic: how often each simulated card holder pays.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Population {
    /// Holders pay as often as the send rate needs (every `users / rate` seconds on average,
    /// at least 45 s apart), so event time keeps pace with the wall clock and a holder comes
    /// back within minutes: mostly warm users.
    #[default]
    Dense,
    /// Card holders who pay `payments_per_day` times a day each ([`SimConfig::realistic`]).
    /// The send rate is far above what such a population pays per second of event time, so
    /// event time runs that much faster than the wall clock (and starts hours in the past):
    /// nearly every event comes from a holder last seen hours of event time earlier.
    Realistic {
        /// Payments per holder and day, on average.
        payments_per_day: f64,
    },
}

impl Population {
    /// Events per second of event time `users` produce at a peak send rate of `peak`.
    pub fn event_rate(self, users: u32, peak: f64) -> f64 {
        let wanted = match self {
            Population::Dense => peak,
            Population::Realistic { payments_per_day } => {
                SimConfig::realistic(0, users, payments_per_day).rate_per_sec
            }
        };
        wanted.min(population_capacity(users)).max(1e-3)
    }
}

/// The simulator configuration for a run: a steady rate (no daily rhythm) at the schedule's
/// peak (dense) or the population's daily rate (realistic), starting early enough that the
/// last event's timestamp is not ahead of the wall clock.
///
/// The sender paces by count, so event time advances at `sent rate / simulated rate` per wall
/// second: slower than the wall clock while a ramp is below its peak (events look slightly
/// old, which the node accepts), faster when the population cannot or (realistic) does not
/// reach the peak rate. In that case the start moves back by the expected overrun, since the
/// node refuses events too far in its future.
pub fn sim_config(
    schedule: &RateSchedule,
    duration_secs: u64,
    seed: u64,
    users: u32,
    fraud_ratio: f64,
    population: Population,
    now: DateTime<Utc>,
) -> SimConfig {
    let peak = schedule.peak_rate();
    let capacity = population_capacity(users);
    let event_rate = population.event_rate(users, peak);
    let planned = schedule.events_by(std::time::Duration::from_secs(duration_secs)) as f64;
    let span_secs = planned / event_rate;
    let ahead_secs = (span_secs - duration_secs as f64).max(0.0);
    if population == Population::Dense && capacity < peak {
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
    let base = match population {
        Population::Dense => SimConfig {
            seed,
            users,
            rate_per_sec: peak,
            daily_rhythm: false,
            ..SimConfig::default()
        },
        Population::Realistic { payments_per_day } => {
            SimConfig::realistic(seed, users, payments_per_day)
        }
    };
    SimConfig {
        fraud_ratio,
        start: now - chrono::Duration::milliseconds((ahead_secs * 1_000.0) as i64),
        ..base
    }
}

impl super::TrafficOptions {
    /// The simulator configuration of a run with these options started at `now`: what
    /// [`run`](super::run) sends, and what a test replays to know which events it sent.
    pub fn sim_config(&self, now: DateTime<Utc>) -> SimConfig {
        sim_config(
            &self.schedule,
            self.duration_secs,
            self.seed,
            self.users,
            self.fraud_ratio,
            self.population,
            now,
        )
    }

    /// The simulator of a run with these options started at `now`, ids named as configured.
    pub fn simulator(&self, now: DateTime<Utc>) -> Simulator {
        Simulator::new(self.sim_config(now)).with_transaction_ids(self.transaction_ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_simulator::Simulator;

    #[test]
    fn encoded_events_never_carry_labels() {
        let now = Utc::now();
        let schedule = RateSchedule::Steady { rate: 100.0 };
        let mut sim = Simulator::new(sim_config(
            &schedule,
            5,
            7,
            2_000,
            0.5,
            Population::Dense,
            now,
        ));
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

    /// At 10,000 events/s, more than four in five of a realistic population's events come from
    /// holders not seen in the hour of event time before (or never; 87% with this seed), and
    /// the run's event time still ends at the wall clock, not in the future.
    #[test]
    fn realistic_holders_come_back_after_hours() {
        let now = Utc::now();
        let schedule = RateSchedule::Steady { rate: 10_000.0 };
        let population = Population::Realistic {
            payments_per_day: 4.0,
        };
        let holders = 200_000;
        let config = sim_config(&schedule, 10, 3, holders, 0.0, population, now);
        assert!(!config.daily_rhythm);
        // 200,000 holders paying 4 times a day: 9.26 events per second of event time.
        assert!(
            (config.rate_per_sec - 9.259).abs() < 0.01,
            "{}",
            config.rate_per_sec
        );
        let mut sim = Simulator::new(config);
        let mut last_seen = std::collections::HashMap::new();
        let (mut cold, n) = (0, 100_000);
        let mut last_ms = 0;
        for _ in 0..n {
            let e = sim.next_event();
            last_ms = e.txn.timestamp.timestamp_millis();
            match last_seen.insert(e.txn.user_id, last_ms) {
                Some(before) if last_ms - before < 3_600_000 => {}
                _ => cold += 1,
            }
        }
        assert!(
            cold * 5 > n * 4,
            "only {cold} of {n} events from cold holders"
        );
        // 100,000 events of the 10 s run at 9.26/s span three hours of event time, ending
        // about now.
        let skew_ms = last_ms - now.timestamp_millis();
        assert!(skew_ms.abs() < 60_000, "last event {skew_ms} ms from now");
        let dense = sim_config(&schedule, 10, 3, holders, 0.0, Population::Dense, now);
        assert_eq!(dense.rate_per_sec, 10_000.0);
    }

    #[test]
    fn start_moves_back_when_the_population_is_too_small() {
        let now = Utc::now();
        let schedule = RateSchedule::Steady { rate: 1_000.0 };
        let enough = sim_config(&schedule, 60, 1, 100_000, 0.0, Population::Dense, now);
        assert_eq!(enough.start, now);
        assert!(!enough.daily_rhythm);
        let small = sim_config(&schedule, 60, 1, 4_500, 0.0, Population::Dense, now);
        // 4,500 users make at most 100 events/s: 60,000 events span 600 s, 540 s too many.
        assert_eq!((now - small.start).num_seconds(), 540);
    }
}
