//! The result of a load run: built from a [`Recorder`], printed as a table, written as
//! `report.json` and plotted as `report.svg`.
//!
//! [`Recorder`]: crate::loadgen::Recorder

mod build;
mod notes;
pub mod stats;
mod steps;
mod svg;
mod table;

pub use build::{build, RunInfo};
pub use steps::KEEP_UP;
pub use svg::render as render_svg;
pub use table::render as render_table;

use crate::loadgen::{Counts, Population, RateSchedule};
use chrono::{DateTime, Utc};
use sentinel_simulator::{Scenario, TransactionIds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything a run measured, in the shape of `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `kafka` or `http`.
    pub mode: String,
    /// Brokers and topic, or the node's URL.
    pub target: String,
    /// Wall-clock start of the run.
    pub started_at: DateTime<Utc>,
    /// The traffic that was asked for.
    pub config: RunConfig,
    /// Seconds spent sending (the hard stop, or less if the run was cut short).
    pub send_secs: f64,
    /// Events sent.
    pub sent: u64,
    /// Events whose decision came back.
    pub decided: u64,
    /// Events that can never be decided (refused or undeliverable), by reason.
    pub failed: BTreeMap<String, u64>,
    /// Events still without a decision when the drain timeout ran out.
    pub undecided: u64,
    /// Decisions read that this run was not waiting for (earlier runs, repeats).
    pub unmatched_decisions: u64,
    /// Sent and decided events per second.
    pub throughput: Throughput,
    /// End-to-end latency of every decided event.
    pub latency_ms: Latency,
    /// Largest sampled lag (sent minus decided minus failed).
    pub lag_max: u64,
    /// Fraud detection against the simulator's labels.
    pub detection: Detection,
    /// One point per wall-clock second.
    pub seconds: Vec<SecondPoint>,
    /// Each rate step (one step for a steady rate) against the objective.
    pub steps: Vec<StepResult>,
    /// Highest target rate of the unbroken run of passing steps from the first: the sustained
    /// maximum. `None` when the first step already failed.
    pub sustained_max_per_sec: Option<f64>,
    /// How to read the numbers.
    pub notes: Vec<String>,
}

/// What the run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Simulator seed.
    pub seed: u64,
    /// Simulated users.
    pub users: u32,
    /// How often each user pays (absent in reports written before it existed: dense).
    #[serde(default)]
    pub population: Population,
    /// Fraction of user turns that inject fraud.
    pub fraud_ratio: f64,
    /// How transactions were named (absent in reports written before it existed: sequential).
    #[serde(default)]
    pub transaction_ids: TransactionIds,
    /// Target send rate over time.
    pub schedule: RateSchedule,
    /// Hard stop of sending.
    pub duration_secs: u64,
    /// Longest wait for outstanding decisions after the stop.
    pub drain_secs: u64,
    /// Latency objective of a passing step.
    pub p99_objective_ms: f64,
}

/// Throughput over the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Sent events over the sending time.
    pub sent_per_sec: f64,
    /// Decided events over the time from the start to the last decision (at least the sending
    /// time).
    pub decided_per_sec: f64,
}

/// Latency percentiles in milliseconds (`None` without decisions).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Decided events measured.
    pub count: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

/// Detection of the labelled fraud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// One row per scenario that occurred.
    pub scenarios: Vec<ScenarioDetection>,
    /// Unlabelled traffic (its flagged events are false positives).
    pub normal: Counts,
    /// Decided events flagged (review or decline).
    pub flagged: u64,
    /// Flagged events that carried a label.
    pub labelled_flagged: u64,
    /// `labelled_flagged / flagged`.
    pub precision: Option<f64>,
}

/// Recall of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioDetection {
    /// The scenario.
    pub scenario: Scenario,
    /// Its events' counts.
    #[serde(flatten)]
    pub counts: Counts,
    /// `flagged / decided`.
    pub recall: Option<f64>,
}

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondPoint {
    /// Seconds since the start.
    pub second: u64,
    /// Events sent in this second.
    pub sent: u64,
    /// Decisions received in this second.
    pub decided: u64,
    /// 99th percentile latency of the events sent in this second.
    pub p99_ms: Option<f64>,
    /// Lag sampled in this second.
    pub lag: Option<u64>,
}

/// One rate step against the objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// First second of the step.
    pub start_second: u64,
    /// Seconds in the step (the last may be cut by the hard stop).
    pub secs: u64,
    /// Rate asked for.
    pub target_per_sec: f64,
    /// Rate sent.
    pub sent_per_sec: f64,
    /// Rate of decisions received during the step.
    pub decided_per_sec: f64,
    /// Events sent in the step that never got a decision.
    pub undecided: u64,
    /// 99th percentile latency of the events sent in the step.
    pub p99_ms: Option<f64>,
    /// Sent at least [`KEEP_UP`] of the target, decided at least [`KEEP_UP`] of the sent rate
    /// during the step, every event decided in the end, and p99 within the objective.
    pub passed: bool,
}

/// Paths of the files [`write()`] produced.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.json`.
    pub json: PathBuf,
    /// `report.svg`.
    pub svg: PathBuf,
}

/// Writes `report.json` and `report.svg` into `dir`, creating it.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let json = dir.join("report.json");
    let svg = dir.join("report.svg");
    std::fs::write(&json, serde_json::to_vec_pretty(report)?)?;
    std::fs::write(&svg, render_svg(report))?;
    Ok(Written { json, svg })
}

#[cfg(test)]
mod tests;
