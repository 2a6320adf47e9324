//! Turning a [`Recorder`]'s measurements into a [`Report`].

use super::stats::{max_ms, per_sec, precision, quantile_ms, recall};
use super::Throughput;
use super::{notes, steps, Detection, Latency, Report, RunConfig, ScenarioDetection, SecondPoint};
use crate::loadgen::Recorder;
use chrono::{DateTime, Utc};

/// What the report needs to know besides the measurements.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `kafka` or `http`.
    pub mode: String,
    /// Where the traffic went.
    pub target: String,
    /// Wall-clock start.
    pub started_at: DateTime<Utc>,
    /// The traffic asked for.
    pub config: RunConfig,
    /// Seconds actually spent sending.
    pub send_secs: f64,
    /// Extra notes from the run (e.g. the population could not reach the rate).
    pub notes: Vec<String>,
}

/// The report of a finished run.
pub fn build(info: RunInfo, rec: &Recorder) -> Report {
    let totals = rec.totals();
    let h = rec.latency();
    let decided_secs = rec
        .last_decided_us()
        .map(|t| (t - rec.start_us()) as f64 / 1e6)
        .unwrap_or(0.0)
        .max(info.send_secs);
    let seconds: Vec<SecondPoint> = rec
        .seconds()
        .iter()
        .enumerate()
        .map(|(i, s)| SecondPoint {
            second: i as u64,
            sent: s.sent,
            decided: s.decided,
            p99_ms: quantile_ms(&s.latency, 0.99),
            lag: s.lag,
        })
        .collect();
    let scenarios: Vec<ScenarioDetection> = rec
        .scenarios()
        .iter()
        .map(|(&scenario, &counts)| ScenarioDetection {
            scenario,
            counts,
            recall: recall(counts.flagged, counts.decided),
        })
        .collect();
    let labelled_flagged: u64 = scenarios.iter().map(|s| s.counts.flagged).sum();
    let flagged = labelled_flagged + rec.normal().flagged;
    let step_results = steps::evaluate(&info.config, info.send_secs, rec.seconds());
    let sustained = steps::sustained_max(&step_results);
    let detection = Detection {
        scenarios,
        normal: rec.normal(),
        flagged,
        labelled_flagged,
        precision: precision(labelled_flagged, flagged),
    };
    let mut report = Report {
        mode: info.mode,
        target: info.target,
        started_at: info.started_at,
        send_secs: info.send_secs,
        sent: totals.sent,
        decided: totals.decided,
        failed: rec.failures().clone(),
        undecided: totals.outstanding,
        unmatched_decisions: rec.unmatched(),
        throughput: Throughput {
            sent_per_sec: per_sec(totals.sent, info.send_secs),
            decided_per_sec: per_sec(totals.decided, decided_secs),
        },
        latency_ms: Latency {
            count: h.len(),
            p50: quantile_ms(h, 0.5),
            p95: quantile_ms(h, 0.95),
            p99: quantile_ms(h, 0.99),
            max: max_ms(h),
        },
        lag_max: rec.lag_max(),
        detection,
        seconds,
        steps: step_results,
        sustained_max_per_sec: sustained,
        notes: Vec::new(),
        config: info.config,
    };
    report.notes = notes::explain(&report, info.notes);
    report
}
