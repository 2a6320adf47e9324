//! The live one-line summary the node prints while it runs.

use hdrhistogram::Histogram;
use sentinel_event::Outcome;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counters and a latency histogram for the current reporting interval.
pub struct LiveStats {
    outcomes: [AtomicU64; 3],
    rejected: AtomicU64,
    duplicates: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl LiveStats {
    /// Empty statistics.
    pub fn new() -> Self {
        LiveStats {
            outcomes: Default::default(),
            rejected: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ),
        }
    }

    /// Records one new decision.
    pub fn record(&self, outcome: Outcome, latency: Duration) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut h) = self.latency_us.lock() {
            h.saturating_record(us.max(1));
        }
    }

    /// Records one event that could not be decided.
    pub fn record_rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one event answered with the decision already stored for its transaction id (a
    /// redelivery or a retry): not a new decision, so not in the rate, but work the node did.
    pub fn record_duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the interval's figures and starts a new interval.
    pub fn take(&self, elapsed: Duration) -> Summary {
        let [approve, review, decline] =
            [0, 1, 2].map(|i| self.outcomes[i].swap(0, Ordering::Relaxed));
        let (p50, p99) = match self.latency_us.lock() {
            Ok(mut h) => {
                let figures = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
                h.reset();
                figures
            }
            Err(_) => (0, 0),
        };
        Summary {
            elapsed,
            approve,
            review,
            decline,
            rejected: self.rejected.swap(0, Ordering::Relaxed),
            duplicates: self.duplicates.swap(0, Ordering::Relaxed),
            p50_us: p50,
            p99_us: p99,
        }
    }
}

/// One interval's figures.
pub struct Summary {
    elapsed: Duration,
    approve: u64,
    review: u64,
    decline: u64,
    rejected: u64,
    duplicates: u64,
    p50_us: u64,
    p99_us: u64,
}

impl Summary {
    /// The summary line, e.g. `1003 ev/s | approve 4968 review 21 decline 26 | fraud rate
    /// 0.94% | p50 0.8 ms p99 3.1 ms | rejected 0 | duplicates 0 | live actors 4521`. The rate,
    /// outcomes and latencies are new decisions'; `duplicates` counts events answered with a
    /// stored decision, so a node replaying a topic it already decided does not read as idle.
    pub fn line(&self, live_actors: usize) -> String {
        let decided = self.approve + self.review + self.decline;
        let rate = decided as f64 / self.elapsed.as_secs_f64().max(1e-9);
        let fraud = if decided == 0 {
            0.0
        } else {
            100.0 * (self.review + self.decline) as f64 / decided as f64
        };
        format!(
            "{rate:.0} ev/s | approve {} review {} decline {} | fraud rate {fraud:.2}% | p50 {:.1} ms p99 {:.1} ms | rejected {} | duplicates {} | live actors {live_actors}",
            self.approve,
            self.review,
            self.decline,
            self.p50_us as f64 / 1000.0,
            self.p99_us as f64 / 1000.0,
            self.rejected,
            self.duplicates,
        )
    }
}

/// Prints a summary line every `every` until `stop` fires.
pub async fn print_every(
    stats: std::sync::Arc<LiveStats>,
    scorer: sentinel_actors::Scorer,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut last = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let summary = stats.take(last.elapsed());
        last = Instant::now();
        println!("{}", summary.line(scorer.live_actors().await));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_and_resets() {
        let stats = LiveStats::new();
        for _ in 0..98 {
            stats.record(Outcome::Approve, Duration::from_millis(1));
        }
        stats.record(Outcome::Review, Duration::from_millis(2));
        stats.record(Outcome::Decline, Duration::from_millis(50));
        stats.record_rejected();
        for _ in 0..3 {
            stats.record_duplicate();
        }
        let line = stats.take(Duration::from_secs(1)).line(7);
        // Duplicates are answers, not new decisions: neither in the rate nor the outcomes.
        assert!(
            line.starts_with("100 ev/s | approve 98 review 1 decline 1 | fraud rate 2.00%"),
            "{line}"
        );
        assert!(line.contains("p50 1.0 ms p99 2.0 ms"), "{line}");
        assert!(line.contains("| rejected 1 | duplicates 3 |"), "{line}");
        assert!(line.ends_with("live actors 7"), "{line}");
        let line = stats.take(Duration::from_secs(1)).line(0);
        assert!(line.starts_with("0 ev/s | approve 0"), "{line}");
        assert!(line.contains("| rejected 0 | duplicates 0 |"), "{line}");
    }
}
