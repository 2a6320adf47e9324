//! In-process pipeline benchmark: simulator events -> user actors -> rules -> embedded store.
//!
//! `cargo bench -p sentinel-actors --bench pipeline` prints, as medians over the runs:
//! - the maximum throughput (events decided and durably stored per second), and
//! - p50 / p99 / max decision latency (scheduled send -> durable acknowledgement) at fixed
//!   rates of 1,000 and 10,000 events/s.
//!
//! Options: `--runs N` (default 3), `--events N` for the throughput phase (default 200000),
//! `--seconds S` per paced phase (default 10).

use hdrhistogram::Histogram;
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::PolicyDef;
use sentinel_event::Transaction;
use sentinel_loadtest::simulator::{SimConfig, Simulator};
use sentinel_store::{EmbeddedStore, Store, Writer, WriterConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

struct Options {
    runs: usize,
    events: usize,
    seconds: u64,
}

fn options() -> Options {
    let mut o = Options {
        runs: 3,
        events: 200_000,
        seconds: 10,
    };
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
    };
    if let Some(v) = value("--runs") {
        o.runs = v;
    }
    if let Some(v) = value("--events") {
        o.events = v;
    }
    if let Some(v) = value("--seconds") {
        o.seconds = v as u64;
    }
    o
}

struct Pipeline {
    _dir: tempfile::TempDir,
    scorer: Scorer,
}

async fn pipeline() -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("bench.redb")).unwrap());
    let writer = Writer::start(store, WriterConfig::default());
    let policy = Arc::new(PolicyDef::seed().compile().unwrap());
    let scorer = Scorer::start(writer, policy, ScorerConfig::default())
        .await
        .unwrap();
    Pipeline { _dir: dir, scorer }
}

fn events(count: usize, users: u32, rate: f64, seed: u64) -> Vec<Arc<Transaction>> {
    let config = SimConfig {
        seed,
        users,
        rate_per_sec: rate,
        daily_rhythm: false,
        ..SimConfig::default()
    };
    Simulator::new(config)
        .take(count)
        .map(|e| Arc::new(e.txn))
        .collect()
}

/// Decides `count` events of `users` distinct users as fast as the pipeline takes them (at
/// most 20,000 in flight). With as many users as events, every event starts (and restores) a
/// user actor; with few users, actors stay live and only decide.
async fn max_throughput(count: usize, users: u32, seed: u64) -> f64 {
    let p = pipeline().await;
    let events = events(count, users, 100_000.0, seed);
    let permits = Arc::new(Semaphore::new(20_000));
    let started = Instant::now();
    for event in events {
        let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
        let scorer = p.scorer.clone();
        tokio::spawn(async move {
            scorer.score(event, Instant::now()).await.unwrap();
            drop(permit);
        });
    }
    let _ = permits.acquire_many(20_000).await.unwrap();
    let rate = count as f64 / started.elapsed().as_secs_f64();
    p.scorer.shutdown().await;
    rate
}

/// Sends events at `rate` per second for `seconds`; latency runs from each event's scheduled
/// send time to its durable acknowledgement, so a stalled sender counts against us.
async fn paced(rate: f64, seconds: u64, seed: u64) -> (u64, u64, u64) {
    let p = pipeline().await;
    let count = (rate * seconds as f64) as usize;
    let events = events(count, 100_000, rate, seed);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    for (i, event) in events.into_iter().enumerate() {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let scorer = p.scorer.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            scorer.score(event, due).await.unwrap();
            let _ = tx.send(due.elapsed());
        });
    }
    drop(tx);
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    while let Some(latency) = rx.recv().await {
        h.saturating_record(latency.as_micros() as u64);
    }
    p.scorer.shutdown().await;
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for (label, users) in [
            ("every event a new user", o.events as u32),
            ("5,000 live users", 5_000),
        ] {
            let mut rates = Vec::new();
            for run in 0..o.runs {
                let r = max_throughput(o.events, users, run as u64).await;
                println!("run {run}: {label}: max throughput {r:.0} events/s");
                rates.push(r);
            }
            println!(
                "{label}: max throughput, median of {}: {:.0} events/s",
                o.runs,
                median(rates)
            );
        }
        for rate in [1_000.0, 10_000.0] {
            let mut p50s = Vec::new();
            let mut p99s = Vec::new();
            let mut maxes = Vec::new();
            for run in 0..o.runs {
                let (p50, p99, max) = paced(rate, o.seconds, run as u64).await;
                println!(
                    "run {run}: {rate:.0}/s p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                    p50 as f64 / 1e3,
                    p99 as f64 / 1e3,
                    max as f64 / 1e3
                );
                p50s.push(p50 as f64);
                p99s.push(p99 as f64);
                maxes.push(max as f64);
            }
            println!(
                "{rate:.0} events/s, median of {}: p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                o.runs,
                median(p50s) / 1e3,
                median(p99s) / 1e3,
                median(maxes) / 1e3
            );
        }
    });
}
