//! In-process pipeline benchmark: simulator events -> user actors -> rules -> embedded store.
//!
//! `cargo bench -p sentinel-actors --bench pipeline` prints, as medians over the runs:
//! - the maximum throughput (events decided and durably stored per second): every event a
//!   new user, 5,000 live users, and those users' events again (a replay, each answered with
//!   its stored decision), and
//! - p50 / p99 / max decision latency (scheduled send -> durable acknowledgement) at fixed
//!   rates of 1,000 and 10,000 events/s,
//!
//! each with the process's CPU per event over the phase (utime + stime while its events are
//! decided, divided by them; the events are generated before, but this process's sending,
//! and at paced rates its timer wake-up per event, count too).
//!
//! - cold users: every event from a user with no live actor, first new users, then the same
//!   users again after passivation (restored from the store), with the node's CPU per event
//!   (process utime + stime over the round, passivation included, divided by its events).
//!
//! Options: `--runs N` (default 3), `--events N` for the throughput phase (default 200000),
//! `--seconds S` per paced phase (default 10), `--paced-users N` sending the paced phases
//! (default 100000: at 10,000/s for 10 s nearly every event is a user's first; 5000 keeps them
//! warm), `--cold-users N` per cold round (default 50000), `--only cold` to run the cold phase
//! alone, `--only new` the maximum throughput with every event a new user alone (with
//! `--events` over the default 50,000 live users, each new user past them evicts the least
//! recently active one, as a node with many card holders does), `--only warm` the warm users'
//! maximum throughput alone (for a profile), `--only redelivered` the same warm users' events
//! decided a second time (a topic replayed after an offset reset: every event a duplicate,
//! answered with its stored decision), `--engine lsm|redb` for the embedded store
//! (default `lsm`, a new node's), `--parked-mib N` for the memory of passivated users' parked
//! states (default the node's; 0 restores every returning user from the store).

use hdrhistogram::Histogram;
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::PolicyDef;
use sentinel_event::Transaction;
use sentinel_simulator::{SimConfig, Simulator};
use sentinel_store::{EmbeddedEngine, Store, Writer, WriterConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The node's allocator, configured as the node does (node/src/main.rs), so the figures are the
/// node's.
#[global_allocator]
static ALLOCATOR: sentinel_allocator::MiMalloc = sentinel_allocator::MiMalloc;

struct Options {
    runs: usize,
    events: usize,
    seconds: u64,
    cold_users: usize,
    paced_users: u32,
    /// `--only cold|new|warm|redelivered`: one phase alone.
    only: Option<String>,
    setup: Setup,
}

/// What each measured pipeline is built with.
#[derive(Clone, Copy)]
struct Setup {
    engine: EmbeddedEngine,
    /// `ScorerConfig::parked_state_bytes`.
    parked_bytes: usize,
}

fn options() -> Options {
    let mut o = Options {
        runs: 3,
        events: 200_000,
        seconds: 10,
        cold_users: 50_000,
        paced_users: 100_000,
        only: None,
        setup: Setup {
            engine: EmbeddedEngine::Lsm,
            parked_bytes: ScorerConfig::default().parked_state_bytes,
        },
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
    if let Some(v) = value("--cold-users") {
        o.cold_users = v;
    }
    if let Some(v) = value("--paced-users") {
        o.paced_users = v as u32;
    }
    if let Some(mib) = value("--parked-mib") {
        o.setup.parked_bytes = mib << 20;
    }
    if let Some(at) = args.iter().position(|a| a == "--only") {
        let only = args.get(at + 1).map(String::as_str).unwrap_or_default();
        assert!(
            ["cold", "new", "warm", "redelivered"].contains(&only),
            "--only {only:?}: expected cold, new, warm or redelivered"
        );
        o.only = Some(only.to_owned());
    }
    if let Some(name) = args.windows(2).find(|w| w[0] == "--engine").map(|w| &w[1]) {
        o.setup.engine = [EmbeddedEngine::Lsm, EmbeddedEngine::Redb]
            .into_iter()
            .find(|engine| engine.as_str() == name)
            .unwrap_or_else(|| panic!("--engine {name}: expected lsm or redb"));
    }
    o
}

struct Pipeline {
    _dir: tempfile::TempDir,
    scorer: Scorer,
}

async fn pipeline(setup: Setup) -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        sentinel_store::open_embedded(dir.path(), setup.engine, Default::default()).unwrap();
    let writer = Writer::start(store, WriterConfig::default());
    let policy = Arc::new(PolicyDef::seed().compile().unwrap());
    let config = ScorerConfig {
        parked_state_bytes: setup.parked_bytes,
        ..ScorerConfig::default()
    };
    let scorer = Scorer::start(writer, policy, config).await.unwrap();
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
/// user actor; with few users, actors stay live and only decide. Returns events per second
/// and CPU µs per event.
async fn max_throughput(setup: Setup, count: usize, users: u32, seed: u64) -> (f64, f64) {
    let p = pipeline(setup).await;
    let events = events(count, users, 100_000.0, seed);
    let cpu = cpu_seconds();
    let (rate, _) = decide_all(&p.scorer, events).await;
    let cpu_us = (cpu_seconds() - cpu) * 1e6 / count as f64;
    p.scorer.shutdown().await;
    (rate, cpu_us)
}

/// Decides `count` events of `users` distinct users, then decides them all again as fast as
/// the pipeline takes them: every event of the second pass is a duplicate, answered with the
/// decision stored the first time. Returns the second pass's events per second and CPU µs per
/// event.
async fn redelivered(setup: Setup, count: usize, users: u32, seed: u64) -> (f64, f64) {
    let p = pipeline(setup).await;
    let events = events(count, users, 100_000.0, seed);
    decide_all(&p.scorer, events.clone()).await;
    let cpu = cpu_seconds();
    let (rate, duplicates) = decide_all(&p.scorer, events).await;
    assert_eq!(
        duplicates, count,
        "every event of the second pass is a duplicate"
    );
    let cpu_us = (cpu_seconds() - cpu) * 1e6 / count as f64;
    p.scorer.shutdown().await;
    (rate, cpu_us)
}

/// Decides `events` as fast as the pipeline takes them (at most 20,000 in flight); returns
/// events per second and how many were answered as duplicates.
async fn decide_all(scorer: &Scorer, events: Vec<Arc<Transaction>>) -> (f64, usize) {
    let count = events.len();
    let permits = Arc::new(Semaphore::new(20_000));
    let duplicates = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    for event in events {
        let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
        let scorer = scorer.clone();
        let duplicates = Arc::clone(&duplicates);
        tokio::spawn(async move {
            let stored = scorer.score(event, Instant::now()).await.unwrap();
            if stored.duplicate {
                duplicates.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    let _ = permits.acquire_many(20_000).await.unwrap();
    let rate = count as f64 / started.elapsed().as_secs_f64();
    (rate, duplicates.load(Ordering::Relaxed))
}

/// One paced phase's figures: latency percentiles in µs, CPU µs per event.
struct Paced {
    p50: u64,
    p99: u64,
    max: u64,
    cpu_us: f64,
}

/// Sends events at `rate` per second for `seconds`; latency runs from each event's scheduled
/// send time to its durable acknowledgement, so a stalled sender counts against us.
async fn paced(setup: Setup, rate: f64, seconds: u64, users: u32, seed: u64) -> Paced {
    let p = pipeline(setup).await;
    let count = (rate * seconds as f64) as usize;
    let events = events(count, users, rate, seed);
    let cpu = cpu_seconds();
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
    let cpu_us = (cpu_seconds() - cpu) * 1e6 / count as f64;
    p.scorer.shutdown().await;
    Paced {
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
        cpu_us,
    }
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces) start at field 3; utime and stime
    // are fields 14 and 15.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("getconf");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    })
}

/// One cold round's figures.
struct Round {
    rate: f64,
    cpu_us: f64,
}

/// Decides one event for each of `events`' users (all distinct, none live), then passivates
/// them all, as idle users are: the round's CPU includes the snapshot written at passivation.
async fn cold_round(scorer: &Scorer, events: Vec<Arc<Transaction>>) -> Round {
    let count = events.len();
    let cpu = cpu_seconds();
    let (rate, _) = decide_all(scorer, events).await;
    scorer.passivate_all().await;
    Round {
        rate,
        cpu_us: (cpu_seconds() - cpu) * 1e6 / count as f64,
    }
}

/// Two cold rounds over `users` users: their first events (new users), then their second
/// events (each user passivated after the first, so restored from the store).
async fn cold(setup: Setup, users: usize, seed: u64) -> [Round; 2] {
    let p = pipeline(setup).await;
    let mut all = events(2 * users, 10_000, 100_000.0, seed);
    // One event per user per round: the simulator's events, each given to a distinct user.
    for (i, event) in all.iter_mut().enumerate() {
        let event = Arc::make_mut(event);
        event.user_id = format!("cold-{seed}-{}", i % users);
        event.transaction_id = format!("cold-{seed}-{i}");
    }
    let second = all.split_off(users);
    let new = cold_round(&p.scorer, all).await;
    let restored = cold_round(&p.scorer, second).await;
    p.scorer.shutdown().await;
    [new, restored]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    sentinel_allocator::configure();
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("embedded store engine: {}", o.setup.engine.as_str());
    runtime.block_on(async {
        let mut figures: [Vec<(f64, f64)>; 2] = Default::default();
        let phase_runs = |phase: &str| o.only.as_deref().is_none_or(|only| only == phase);
        for run in (0..o.runs).filter(|_| phase_runs("cold")) {
            let rounds = cold(o.setup, o.cold_users, run as u64).await;
            for (i, (label, round)) in ["a new user", "a passivated user"]
                .iter()
                .zip(rounds)
                .enumerate()
            {
                println!(
                    "run {run}: cold, every event from {label}: {:.0} events/s, {:.1} us CPU/event",
                    round.rate, round.cpu_us
                );
                figures[i].push((round.rate, round.cpu_us));
            }
        }
        for (label, runs) in ["a new user", "a passivated user"]
            .iter()
            .zip(figures)
            .filter(|_| phase_runs("cold"))
        {
            let (rates, cpus): (Vec<f64>, Vec<f64>) = runs.into_iter().unzip();
            println!(
                "cold, every event from {label}, median of {}: {:.0} events/s, {:.1} us CPU/event",
                o.runs,
                median(rates),
                median(cpus)
            );
        }
        for (phase, label, users) in [
            ("new", "every event a new user", o.events as u32),
            ("warm", "5,000 live users", 5_000),
            ("redelivered", "5,000 live users' events again", 5_000),
        ]
        .into_iter()
        .filter(|(phase, _, _)| phase_runs(phase))
        {
            let mut rates = Vec::new();
            let mut cpus = Vec::new();
            for run in 0..o.runs {
                let (r, cpu) = if phase == "redelivered" {
                    redelivered(o.setup, o.events, users, run as u64).await
                } else {
                    max_throughput(o.setup, o.events, users, run as u64).await
                };
                println!(
                    "run {run}: {label}: max throughput {r:.0} events/s, {cpu:.1} us CPU/event"
                );
                rates.push(r);
                cpus.push(cpu);
            }
            println!(
                "{label}: max throughput, median of {}: {:.0} events/s, {:.1} us CPU/event",
                o.runs,
                median(rates),
                median(cpus)
            );
        }
        if o.only.is_some() {
            return;
        }
        for rate in [1_000.0, 10_000.0] {
            let mut p50s = Vec::new();
            let mut p99s = Vec::new();
            let mut maxes = Vec::new();
            let mut cpus = Vec::new();
            for run in 0..o.runs {
                let r = paced(o.setup, rate, o.seconds, o.paced_users, run as u64).await;
                println!(
                    "run {run}: {rate:.0}/s p50 {:.2} ms p99 {:.2} ms max {:.2} ms, {:.1} us CPU/event",
                    r.p50 as f64 / 1e3,
                    r.p99 as f64 / 1e3,
                    r.max as f64 / 1e3,
                    r.cpu_us
                );
                p50s.push(r.p50 as f64);
                p99s.push(r.p99 as f64);
                maxes.push(r.max as f64);
                cpus.push(r.cpu_us);
            }
            println!(
                "{rate:.0} events/s, median of {}: p50 {:.2} ms p99 {:.2} ms max {:.2} ms, {:.1} us CPU/event",
                o.runs,
                median(p50s) / 1e3,
                median(p99s) / 1e3,
                median(maxes) / 1e3,
                median(cpus)
            );
        }
    });
}
