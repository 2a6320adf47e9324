//! The target send rate over wall-clock time: steady, or stepped up in a ramp.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How fast to send, as a function of the time since the run started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RateSchedule {
    /// The same rate for the whole run.
    Steady {
        /// Events per second.
        rate: f64,
    },
    /// `from` for the first step, then `from + k * increment` for step `k`, capped at `to`.
    /// The increment is chosen so the last step of the run reaches `to` (see
    /// [`RateSchedule::ramp`]).
    Ramp {
        /// Rate of the first step, events per second.
        from: f64,
        /// Rate of the last step, events per second.
        to: f64,
        /// Length of one step in seconds.
        step_secs: u64,
        /// Rate added per step.
        increment: f64,
    },
}

impl RateSchedule {
    /// A ramp from `from` to `to` over the steps that fit in `duration_secs` (at least two
    /// steps when the duration allows it), in equal increments.
    pub fn ramp(from: f64, to: f64, step_secs: u64, duration_secs: u64) -> RateSchedule {
        let step_secs = step_secs.max(1);
        let steps = duration_secs.div_ceil(step_secs).max(1);
        let increment = if steps > 1 {
            (to - from) / (steps - 1) as f64
        } else {
            0.0
        };
        RateSchedule::Ramp {
            from,
            to,
            step_secs,
            increment,
        }
    }

    /// Target rate at `elapsed` since the start.
    pub fn rate_at(&self, elapsed: Duration) -> f64 {
        match *self {
            RateSchedule::Steady { rate } => rate,
            RateSchedule::Ramp { .. } => self.step_rate(self.step_at(elapsed)),
        }
    }

    /// The highest rate the schedule asks for.
    pub fn peak_rate(&self) -> f64 {
        match *self {
            RateSchedule::Steady { rate } => rate,
            RateSchedule::Ramp { from, to, .. } => from.max(to),
        }
    }

    /// Index of the ramp step at `elapsed` (always 0 for a steady rate).
    pub fn step_at(&self, elapsed: Duration) -> u64 {
        match *self {
            RateSchedule::Steady { .. } => 0,
            RateSchedule::Ramp { step_secs, .. } => elapsed.as_secs() / step_secs,
        }
    }

    /// Target rate of step `k`.
    pub fn step_rate(&self, k: u64) -> f64 {
        match *self {
            RateSchedule::Steady { rate } => rate,
            RateSchedule::Ramp {
                from,
                to,
                increment,
                ..
            } => {
                let rate = from + increment * k as f64;
                if increment >= 0.0 {
                    rate.min(to)
                } else {
                    rate.max(to)
                }
            }
        }
    }

    /// Length of a ramp step in seconds (`None` for a steady rate).
    pub fn step_secs(&self) -> Option<u64> {
        match *self {
            RateSchedule::Steady { .. } => None,
            RateSchedule::Ramp { step_secs, .. } => Some(step_secs),
        }
    }

    /// Events the schedule has asked for by `elapsed` (the integral of the rate), rounded
    /// down. The sender sends until it has sent this many, so it paces against the wall clock
    /// and catches up after a stall.
    pub fn events_by(&self, elapsed: Duration) -> u64 {
        let t = elapsed.as_secs_f64();
        let total = match *self {
            RateSchedule::Steady { rate } => rate * t,
            RateSchedule::Ramp { step_secs, .. } => {
                let len = step_secs as f64;
                let full = (t / len).floor() as u64;
                let done: f64 = (0..full).map(|k| self.step_rate(k) * len).sum();
                done + self.step_rate(full) * (t - full as f64 * len)
            }
        };
        total.max(0.0).floor() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_integral() {
        let s = RateSchedule::Steady { rate: 200.0 };
        assert_eq!(s.events_by(Duration::from_secs(5)), 1000);
        assert_eq!(s.events_by(Duration::from_millis(2500)), 500);
        assert_eq!(s.peak_rate(), 200.0);
    }

    #[test]
    fn ramp_steps_reach_the_top() {
        let s = RateSchedule::ramp(1000.0, 4000.0, 10, 40);
        let rates: Vec<f64> = (0..4).map(|k| s.step_rate(k)).collect();
        assert_eq!(rates, vec![1000.0, 2000.0, 3000.0, 4000.0]);
        assert_eq!(s.step_rate(9), 4000.0);
        assert_eq!(s.rate_at(Duration::from_secs(15)), 2000.0);
        assert_eq!(s.events_by(Duration::from_secs(15)), 10_000 + 10_000);
        assert_eq!(s.events_by(Duration::from_secs(40)), 100_000);
    }
}
