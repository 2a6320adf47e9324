//! The load generator: drives a running node with simulated traffic and measures it.
//!
//! One run: the [`Simulator`] (steady rate, no daily rhythm) feeds a [`Sink`] — Kafka
//! ([`kafka`]) or HTTP ([`http`]) — paced against the wall clock by the [`RateSchedule`] until
//! the hard stop; then the run waits up to the drain timeout for outstanding decisions, and the
//! [`Recorder`]'s measurements become a [`Report`] (table, `report.json`, `report.svg`).
//!
//! [`Report`]: crate::report::Report

mod clock;
pub mod echo;
pub mod http;
pub mod kafka;
mod pacer;
mod progress;
mod recorder;
mod schedule;
mod traffic;

pub use clock::now_us;
pub use pacer::Sink;
pub use recorder::{Counts, Recorder, Second, Totals};
pub use schedule::RateSchedule;
pub use traffic::{population_capacity, Population};

use crate::report::{self, Report, RunConfig, RunInfo, Written};
use sentinel_simulator::{Simulator, TransactionIds};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The recorder shared by the sender, the decision reader and the progress line.
pub type Shared = Arc<Mutex<Recorder>>;

/// Locks the shared recorder (a panic elsewhere does not hide the measurements).
pub fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Recorder> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// What to send, for how long, and where the report goes.
#[derive(Debug, Clone)]
pub struct TrafficOptions {
    /// Target rate over time.
    pub schedule: RateSchedule,
    /// Hard stop of sending, seconds.
    pub duration_secs: u64,
    /// Longest wait for outstanding decisions after the stop, seconds.
    pub drain_secs: u64,
    /// Simulator seed.
    pub seed: u64,
    /// Simulated users.
    pub users: u32,
    /// How often each user pays (dense: as the rate needs; realistic: a few times a day).
    pub population: Population,
    /// Fraction of user turns that inject fraud.
    pub fraud_ratio: f64,
    /// How the simulator names transactions (sequential, or random as many gateways send).
    pub transaction_ids: TransactionIds,
    /// p99 objective of a passing rate step, milliseconds.
    pub p99_objective_ms: f64,
    /// Where `report.json` and `report.svg` go.
    pub report_dir: PathBuf,
    /// Print the live progress line on stderr.
    pub progress: bool,
}

/// Where the traffic goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// Produce to Kafka, read decisions from the output topics.
    Kafka(kafka::KafkaTarget),
    /// POST to a node's REST API.
    Http(http::HttpTarget),
}

/// Interruptions asked for by the user (Ctrl-C): the first stops sending, the second stops
/// waiting for decisions.
#[derive(Debug, Clone, Default)]
pub struct Interrupts(Arc<AtomicU32>);

impl Interrupts {
    /// Records one interruption.
    pub fn raise(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A finished run.
#[derive(Debug)]
pub struct RunResult {
    /// The report.
    pub report: Report,
    /// The files written.
    pub written: Written,
}

/// Runs a load test against `target` and writes its report.
pub async fn run(
    opts: &TrafficOptions,
    target: &Target,
    interrupts: Interrupts,
) -> anyhow::Result<RunResult> {
    anyhow::ensure!(opts.duration_secs > 0, "--duration-secs must be positive");
    anyhow::ensure!(opts.schedule.peak_rate() > 0.0, "the rate must be positive");
    let mut notes = Vec::new();
    let capacity = population_capacity(opts.users);
    if let Population::Realistic { payments_per_day } = opts.population {
        let event_rate = opts
            .population
            .event_rate(opts.users, opts.schedule.peak_rate());
        notes.push(format!(
            "Realistic population: {} card holders paying {payments_per_day} times a day each \
             ({event_rate:.1} events per second of event time), so event time ran up to {:.0} \
             times faster than the wall clock and a holder's previous payment was typically \
             hours earlier.",
            opts.users,
            opts.schedule.peak_rate() / event_rate
        ));
    } else if capacity < opts.schedule.peak_rate() {
        notes.push(format!(
            "{} users produce at most {:.0} events per second of event time; the peak rate is \
             {:.0}, so event time ran faster than the wall clock and the simulation started in \
             the past. Use --users >= 45 x rate for realistic per-user timing.",
            opts.users,
            capacity,
            opts.schedule.peak_rate()
        ));
    }
    let mut sim = opts.simulator(chrono::Utc::now());
    let shared: Shared = Arc::new(Mutex::new(Recorder::new(now_us())));
    let (mode, target_name) = match target {
        Target::Kafka(k) if k.echo => (
            "kafka-echo",
            format!("{} topic {} (echoed, no node)", k.brokers, k.topic),
        ),
        Target::Kafka(k) => ("kafka", format!("{} topic {}", k.brokers, k.topic)),
        Target::Http(h) => ("http", h.url.clone()),
    };
    tracing::info!(mode, target = %target_name, schedule = ?opts.schedule, duration_secs = opts.duration_secs, "starting");

    let (send_secs, reader) = match target {
        Target::Kafka(k) => {
            let echo = k.echo.then(|| echo::Echo::start(k)).transpose()?;
            let reader = kafka::DecisionReader::start(k, shared.clone())?;
            if let Some(echo) = &echo {
                echo.wait_assigned(Duration::from_secs(30)).await;
            }
            reader.wait_assigned(Duration::from_secs(30)).await;
            let mut sink = kafka::KafkaSink::new(k, shared.clone())?;
            let secs = drive(opts, &mut sim, &mut sink, &shared, &interrupts).await;
            if let Some(echo) = echo {
                let echoed = echo.stop().await;
                tracing::info!(echoed, "echo stopped");
            }
            (secs?, Some(reader))
        }
        Target::Http(h) => {
            let mut sink = http::HttpSink::new(h, shared.clone())?;
            let secs = drive(opts, &mut sim, &mut sink, &shared, &interrupts).await?;
            (secs, None)
        }
    };
    if let Some(reader) = reader {
        reader.stop().await;
    }

    let info = RunInfo {
        mode: mode.to_owned(),
        target: target_name,
        started_at: chrono::DateTime::from_timestamp_micros(lock(&shared).start_us())
            .unwrap_or_default(),
        config: RunConfig {
            seed: opts.seed,
            users: opts.users,
            population: opts.population,
            fraud_ratio: opts.fraud_ratio,
            transaction_ids: opts.transaction_ids,
            schedule: opts.schedule,
            duration_secs: opts.duration_secs,
            drain_secs: opts.drain_secs,
            p99_objective_ms: opts.p99_objective_ms,
        },
        send_secs,
        notes,
    };
    let report = report::build(info, &lock(&shared));
    let written = report::write(&report, &opts.report_dir)?;
    tracing::info!(json = %written.json.display(), svg = %written.svg.display(), "report written");
    Ok(RunResult { report, written })
}

/// Waits until `flag` is set, at most `limit` (then warns and goes on); logs `what` when it is.
async fn wait_for(flag: &AtomicBool, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    while !flag.load(Ordering::SeqCst) {
        if Instant::now() >= deadline {
            tracing::warn!("not yet {what}; starting anyway");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!("{what}");
}

/// Sends until the hard stop (or the first interruption), then waits for the outstanding
/// decisions, with the progress line running throughout; returns the seconds spent sending.
async fn drive<S: Sink>(
    opts: &TrafficOptions,
    sim: &mut Simulator,
    sink: &mut S,
    shared: &Shared,
    interrupts: &Interrupts,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    lock(shared).set_start(now_us());
    let progress = progress::Progress::spawn(shared.clone(), opts.progress);
    let limit = Duration::from_secs(opts.duration_secs);
    let result = pacer::pace(sim, &opts.schedule, limit, sink, start, || {
        interrupts.count() > 0
    })
    .await;
    let secs = start.elapsed().as_secs_f64().min(limit.as_secs_f64());
    match &result {
        Ok(sent) => tracing::info!(sent, secs, "sending stopped; waiting for decisions"),
        Err(e) => tracing::error!(error = %e, "sending failed; waiting for decisions"),
    }
    drain(opts, shared, interrupts).await;
    progress.stop().await;
    result.map(|_| secs)
}

/// Waits until every sent event is decided or failed, the drain timeout passes, or a second
/// interruption comes.
async fn drain(opts: &TrafficOptions, shared: &Shared, interrupts: &Interrupts) {
    let deadline = Instant::now() + Duration::from_secs(opts.drain_secs);
    loop {
        let outstanding = lock(shared).totals().outstanding;
        if outstanding == 0 {
            return;
        }
        if Instant::now() >= deadline || interrupts.count() > 1 {
            let some = lock(shared).some_outstanding(3);
            tracing::warn!(outstanding, examples = ?some, "stopped waiting for decisions");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
