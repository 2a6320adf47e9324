//! Rate steps against the latency objective, and the sustained maximum.

use super::stats::{per_sec, quantile_ms};
use super::{RunConfig, StepResult};
use crate::loadgen::Second;
use hdrhistogram::Histogram;

/// Fraction of the target a step must send, and of its sent rate it must decide while it
/// runs, to count as keeping up (a little slack for decisions still in flight at the step's
/// end).
pub const KEEP_UP: f64 = 0.95;

/// Evaluates each step (the whole run for a steady rate) that started before `send_secs`.
pub fn evaluate(config: &RunConfig, send_secs: f64, seconds: &[Second]) -> Vec<StepResult> {
    let total = send_secs.ceil().max(0.0) as u64;
    let len = config.schedule.step_secs().unwrap_or(total.max(1));
    let mut results = Vec::new();
    let mut start = 0u64;
    let mut k = 0u64;
    while start < total {
        let end = (start + len).min(total);
        let span = &seconds[(start as usize).min(seconds.len())..(end as usize).min(seconds.len())];
        let secs = (end as f64).min(send_secs) - start as f64;
        let sent: u64 = span.iter().map(|s| s.sent).sum();
        let decided: u64 = span.iter().map(|s| s.decided).sum();
        let mut latency = Histogram::<u64>::new(2).expect("valid sigfig");
        for s in span {
            latency.add(&s.latency).expect("auto-resizing histogram");
        }
        let undecided = sent.saturating_sub(latency.len());
        let target = config.schedule.step_rate(k);
        let sent_rate = per_sec(sent, secs);
        let decided_rate = per_sec(decided, secs);
        let p99 = quantile_ms(&latency, 0.99);
        let passed = sent > 0
            && sent_rate >= KEEP_UP * target
            && decided_rate >= KEEP_UP * sent_rate
            && undecided == 0
            && p99.is_some_and(|p| p <= config.p99_objective_ms);
        results.push(StepResult {
            start_second: start,
            secs: end - start,
            target_per_sec: target,
            sent_per_sec: sent_rate,
            decided_per_sec: decided_rate,
            undecided,
            p99_ms: p99,
            passed,
        });
        start = end;
        k += 1;
    }
    results
}

/// The highest target among the steps that passed without a failing step before them.
pub fn sustained_max(steps: &[StepResult]) -> Option<f64> {
    steps
        .iter()
        .take_while(|s| s.passed)
        .map(|s| s.target_per_sec)
        .reduce(f64::max)
}
