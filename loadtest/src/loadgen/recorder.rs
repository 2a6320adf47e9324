//! Every measurement of a run: what was sent, which decisions came back, how long they took.
//!
//! Both transports feed the same [`Recorder`]: [`Recorder::sent`] before an event leaves,
//! [`Recorder::decided`] when its decision arrives (matched by transaction id, so decisions of
//! other runs are ignored), [`Recorder::failed`] when it can never be decided.

use hdrhistogram::Histogram;
use sentinel_event::Outcome;
use sentinel_simulator::Scenario;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Significant figures of the per-second latency histograms (1% resolution is plenty for a
/// plot); the whole-run histogram keeps three.
const SECOND_SIGFIG: u8 = 2;
const RUN_SIGFIG: u8 = 3;

/// Counts of one class of events (one scenario, or normal traffic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Events sent.
    pub sent: u64,
    /// Events whose decision came back.
    pub decided: u64,
    /// Decided events whose outcome was review or decline.
    pub flagged: u64,
}

/// An event on its way.
#[derive(Debug, Clone, Copy)]
struct Pending {
    sent_us: i64,
    label: Option<Scenario>,
}

/// Measurements of one wall-clock second of the run.
#[derive(Debug, Clone)]
pub struct Second {
    /// Events sent during this second.
    pub sent: u64,
    /// Decisions received during this second.
    pub decided: u64,
    /// Latencies (µs) of the events *sent* during this second, so a slow second shows the load
    /// that caused it.
    pub latency: Histogram<u64>,
    /// Sent minus decided (and minus failed), sampled once in this second.
    pub lag: Option<u64>,
}

impl Second {
    fn new() -> Second {
        Second {
            sent: 0,
            decided: 0,
            latency: Histogram::new(SECOND_SIGFIG).expect("valid sigfig"),
            lag: None,
        }
    }
}

/// Progress so far, for the live line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Totals {
    /// Events sent.
    pub sent: u64,
    /// Decisions matched.
    pub decided: u64,
    /// Events that can never be decided (refused, delivery failed).
    pub failed: u64,
    /// Sent, not yet decided, not failed.
    pub outstanding: u64,
    /// Median latency so far, µs.
    pub p50_us: u64,
    /// 99th percentile latency so far, µs.
    pub p99_us: u64,
}

/// The measurements of a run.
#[derive(Debug)]
pub struct Recorder {
    start_us: i64,
    pending: HashMap<String, Pending>,
    sent: u64,
    decided: u64,
    failed: u64,
    unmatched: u64,
    latency: Histogram<u64>,
    seconds: Vec<Second>,
    normal: Counts,
    scenarios: BTreeMap<Scenario, Counts>,
    failures: BTreeMap<String, u64>,
    lag_max: u64,
    last_decided_us: Option<i64>,
}

/// Records `value` in an auto-resizing histogram (`saturating_record` would clamp to its current
/// range instead of growing it).
fn record(h: &mut Histogram<u64>, value: u64) {
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

impl Recorder {
    /// An empty recorder for a run that started at `start_us` (wall clock, µs).
    pub fn new(start_us: i64) -> Recorder {
        Recorder {
            start_us,
            pending: HashMap::new(),
            sent: 0,
            decided: 0,
            failed: 0,
            unmatched: 0,
            latency: Histogram::new(RUN_SIGFIG).expect("valid sigfig"),
            seconds: Vec::new(),
            normal: Counts::default(),
            scenarios: BTreeMap::new(),
            failures: BTreeMap::new(),
            lag_max: 0,
            last_decided_us: None,
        }
    }

    /// Moves the start of the run to `start_us` (when sending begins, after the set-up).
    pub fn set_start(&mut self, start_us: i64) {
        self.start_us = start_us;
    }

    /// Start of the run, wall clock µs.
    pub fn start_us(&self) -> i64 {
        self.start_us
    }

    fn second_mut(&mut self, at_us: i64) -> &mut Second {
        let index = ((at_us - self.start_us).max(0) / 1_000_000) as usize;
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, Second::new);
        }
        &mut self.seconds[index]
    }

    fn counts_mut(&mut self, label: Option<Scenario>) -> &mut Counts {
        match label {
            None => &mut self.normal,
            Some(s) => self.scenarios.entry(s).or_default(),
        }
    }

    /// An event is about to leave at `now_us`.
    pub fn sent(&mut self, transaction_id: String, label: Option<Scenario>, now_us: i64) {
        self.sent += 1;
        self.second_mut(now_us).sent += 1;
        self.counts_mut(label).sent += 1;
        self.pending.insert(
            transaction_id,
            Pending {
                sent_us: now_us,
                label,
            },
        );
    }

    /// A decision arrived at `now_us`. Returns false (and counts it as unmatched) when the
    /// transaction id is not one this run sent and is still waiting for: a decision of an
    /// earlier run, or a repeated publication.
    pub fn decided(&mut self, transaction_id: &str, outcome: Outcome, now_us: i64) -> bool {
        let Some(p) = self.pending.remove(transaction_id) else {
            self.unmatched += 1;
            return false;
        };
        let latency = (now_us - p.sent_us).max(0) as u64;
        self.decided += 1;
        self.last_decided_us = Some(self.last_decided_us.unwrap_or(now_us).max(now_us));
        record(&mut self.latency, latency);
        self.second_mut(now_us).decided += 1;
        record(&mut self.second_mut(p.sent_us).latency, latency);
        let flagged = matches!(outcome, Outcome::Review | Outcome::Decline);
        let counts = self.counts_mut(p.label);
        counts.decided += 1;
        counts.flagged += u64::from(flagged);
        true
    }

    /// The event will never be decided (`reason` names why, e.g. `http 422`).
    pub fn failed(&mut self, transaction_id: &str, reason: &str) {
        if self.pending.remove(transaction_id).is_some() {
            self.failed += 1;
            *self.failures.entry(reason.to_owned()).or_default() += 1;
        }
    }

    /// Samples the lag (sent minus decided minus failed) into the current second and returns
    /// it.
    pub fn sample_lag(&mut self, now_us: i64) -> u64 {
        let lag = self.pending.len() as u64;
        self.lag_max = self.lag_max.max(lag);
        self.second_mut(now_us).lag = Some(lag);
        lag
    }

    /// Totals so far.
    pub fn totals(&self) -> Totals {
        let q = |q: f64| {
            if self.latency.is_empty() {
                0
            } else {
                self.latency.value_at_quantile(q)
            }
        };
        Totals {
            sent: self.sent,
            decided: self.decided,
            failed: self.failed,
            outstanding: self.pending.len() as u64,
            p50_us: q(0.5),
            p99_us: q(0.99),
        }
    }

    /// Latencies of every decided event, µs.
    pub fn latency(&self) -> &Histogram<u64> {
        &self.latency
    }

    /// Per-second measurements, second 0 first.
    pub fn seconds(&self) -> &[Second] {
        &self.seconds
    }

    /// Normal (unlabelled) traffic.
    pub fn normal(&self) -> Counts {
        self.normal
    }

    /// Labelled traffic per scenario (only scenarios that occurred).
    pub fn scenarios(&self) -> &BTreeMap<Scenario, Counts> {
        &self.scenarios
    }

    /// Failed events by reason.
    pub fn failures(&self) -> &BTreeMap<String, u64> {
        &self.failures
    }

    /// Decisions that matched nothing this run was waiting for.
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }

    /// Largest sampled lag.
    pub fn lag_max(&self) -> u64 {
        self.lag_max
    }

    /// When the last decision arrived, wall clock µs.
    pub fn last_decided_us(&self) -> Option<i64> {
        self.last_decided_us
    }

    /// A few transaction ids still waiting for a decision (for the log).
    pub fn some_outstanding(&self, n: usize) -> Vec<String> {
        self.pending.keys().take(n).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_decisions_and_ignores_strangers() {
        let mut r = Recorder::new(0);
        r.sent("a".into(), None, 100);
        r.sent("b".into(), Some(Scenario::MassiveAmount), 1_500_000);
        r.sent("c".into(), None, 1_600_000);
        assert!(r.decided("a", Outcome::Approve, 2_100));
        assert!(
            !r.decided("a", Outcome::Approve, 3_000),
            "a repeat is not counted"
        );
        assert!(!r.decided("old-run", Outcome::Decline, 3_000));
        assert!(r.decided("b", Outcome::Review, 2_500_000));
        r.failed("c", "http 422");
        let t = r.totals();
        assert_eq!((t.sent, t.decided, t.failed, t.outstanding), (3, 2, 1, 0));
        assert_eq!(r.unmatched(), 2);
        assert_eq!(
            r.normal(),
            Counts {
                sent: 2,
                decided: 1,
                flagged: 0
            }
        );
        assert_eq!(
            r.scenarios()[&Scenario::MassiveAmount],
            Counts {
                sent: 1,
                decided: 1,
                flagged: 1
            }
        );
        // Sent in second 1, decided in second 2: latency belongs to second 1.
        assert_eq!(r.seconds()[1].latency.len(), 1);
        assert_eq!(r.seconds()[2].decided, 1);
        assert_eq!(r.seconds()[1].sent, 2);
        assert_eq!(r.failures()["http 422"], 1);
    }

    #[test]
    fn long_latencies_grow_the_histograms() {
        let mut r = Recorder::new(0);
        r.sent("a".into(), None, 0);
        r.decided("a", Outcome::Approve, 3_000_000);
        let run = r.totals().p99_us;
        assert!((2_995_000..=3_005_000).contains(&run), "{run}");
        let second = r.seconds()[0].latency.value_at_quantile(0.99);
        assert!((2_950_000..=3_050_000).contains(&second), "{second}");
    }

    #[test]
    fn lag_is_what_is_still_waiting() {
        let mut r = Recorder::new(0);
        for i in 0..5 {
            r.sent(i.to_string(), None, 10);
        }
        r.decided("0", Outcome::Approve, 20);
        assert_eq!(r.sample_lag(1_000_001), 4);
        r.decided("1", Outcome::Approve, 20);
        assert_eq!(r.sample_lag(2_000_001), 3);
        assert_eq!(r.lag_max(), 4);
        assert_eq!(r.seconds()[1].lag, Some(4));
    }
}
