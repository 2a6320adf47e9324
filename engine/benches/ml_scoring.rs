//! Cost of the machine-learned score per event, on the shipped model (`model/default_model.json`:
//! 46 features, boosted trees, a 64-tree isolation forest) and simulator traffic with late
//! analyst labels (the entity-risk features read an index of the traffic's merchant and device
//! activity and the labels with a day's delay, as a node does by default).
//!
//! `cargo bench -p sentinel-engine --bench ml_scoring` prints medians over the runs of:
//! - inference: `Model::score` on a computed feature vector (supervised part + forest +
//!   calibration + reason codes);
//! - extraction: `extract_features` for an event against its user's state;
//! - the whole live step: `UserState::decide` under the seed policy without and with the model,
//!   and the difference (what the model adds to each decision);
//!
//! and counts heap allocations inside extraction and inference (expected: zero).
//! Options: `--runs N` (default 5), `--events N` (default 100000).

use sentinel_engine::{
    entry_of, extract_features, EntityActivity, EntityCounts, EntityRisk, EventFacts,
    FeatureReplay, LabelSighting, Lists, Placement, PolicyDef, UserState, DEFAULT_LABEL_DELAY_MS,
};
use sentinel_event::Transaction;
use sentinel_model::{FeatureVector, Model, N_FEATURES};
use sentinel_simulator::{analyst_labels, Feedback, Scenario, SimConfig, SimEvent, Simulator};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Counts allocations so the bench can show the scoring path makes none.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Nanoseconds per event of `step` over `events`, one figure per run, and the heap
/// allocations made inside the steps.
fn per_event(runs: usize, events: usize, mut step: impl FnMut() -> f64) -> (Vec<f64>, u64) {
    let mut times = Vec::with_capacity(runs);
    let mut allocations = 0;
    for _ in 0..runs {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let start = Instant::now();
        black_box(step());
        let elapsed = start.elapsed();
        allocations += ALLOCATIONS.load(Ordering::Relaxed) - before;
        times.push(elapsed.as_nanos() as f64 / events as f64);
    }
    (times, allocations)
}

fn main() {
    let runs = arg("--runs", 5);
    let n = arg("--events", 100_000);
    let model = Arc::new(
        Model::from_json(include_bytes!("../../model/default_model.json"))
            .expect("the shipped model loads"),
    );
    let mut sim = Simulator::new(SimConfig {
        seed: 3,
        users: 2_000,
        rate_per_sec: 0.1,
        fraud_ratio: 0.01,
        start: chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .into(),
        daily_rhythm: true,
        scenarios: Scenario::ALL.to_vec(),
    });
    let simulated: Vec<SimEvent> = (0..n).map(|_| sim.next_event()).collect();
    let mut activity = EntityActivity::default();
    let mut times = HashMap::new();
    for e in &simulated {
        activity.record_event(&e.txn);
        times.insert(e.txn.transaction_id.clone(), e.txn.event_time_ms());
    }
    let sightings = analyst_labels(&simulated, &Feedback::default(), 3)
        .into_iter()
        .map(|l| {
            let event_ms = times[&l.transaction_id];
            l.with_parts(|at, m, d, fraud| LabelSighting::new(event_ms, at, m, d, fraud))
        });
    let labels = Arc::new(EntityRisk::build(
        DEFAULT_LABEL_DELAY_MS,
        &activity,
        sightings,
    ));
    let events: Vec<Arc<Transaction>> = simulated.into_iter().map(|e| Arc::new(e.txn)).collect();
    let lateness = 300_000;

    // Inference alone, on the features the training path computes.
    let mut replay = FeatureReplay::new(lateness, Arc::clone(&labels));
    let features: Vec<FeatureVector> = events.iter().map(|e| replay.features(e)).collect();
    let (inference, inference_allocs) = per_event(runs, n, || {
        features.iter().map(|x| model.score(x).score).sum()
    });

    // Extraction alone: each event against its user's state as it stood before it.
    let mut states: HashMap<&str, UserState> = HashMap::new();
    let mut prior = Vec::with_capacity(n);
    for e in &events {
        let state = states.entry(e.user_id.as_str()).or_default();
        prior.push(state.clone());
        state.observe(e, lateness);
    }
    let lists = Lists::default();
    let entries: Vec<_> = events.iter().map(|e| entry_of(e)).collect();
    let (extraction, extraction_allocs) = per_event(runs, n, || {
        let mut out = [0.0; N_FEATURES];
        let mut sum = 0.0;
        for ((e, entry), state) in events.iter().zip(&entries).zip(&prior) {
            let facts = EventFacts {
                event: e,
                current: entry,
                placement: Placement::InWindow,
                window: &state.window,
                profile: &state.profile,
                lists: &lists,
                ml: None,
                entities: &EntityCounts::default(),
            };
            extract_features(&facts, &labels, &mut out);
            sum += out[0];
        }
        sum
    });

    // The live step without and with the model.
    let without = Arc::new(PolicyDef::seed().compile().unwrap());
    let mut with = PolicyDef::seed().compile().unwrap();
    with.models.champion = Some(Arc::clone(&model));
    with.models.entity_risk.publish(Arc::clone(&labels));
    let with = Arc::new(with);
    let decide = |policy: &Arc<sentinel_engine::Policy>| {
        per_event(runs, n, || {
            let mut users: HashMap<&str, UserState> = HashMap::new();
            let mut sum = 0.0;
            for e in &events {
                let state = users.entry(e.user_id.as_str()).or_default();
                sum += state
                    .decide(Arc::clone(e), policy, lateness, Instant::now())
                    .score;
            }
            sum
        })
    };
    let (plain, _) = decide(&without);
    let (scored, _) = decide(&with);

    let (i, x) = (median(inference), median(extraction));
    let (p, s) = (median(plain), median(scored));
    println!("ml scoring, {n} simulator events, median of {runs} runs (ns per event):");
    println!("  inference (Model::score)         {i:>8.0}   allocations: {inference_allocs}");
    println!("  feature extraction               {x:>8.0}   allocations: {extraction_allocs}");
    println!("  extraction + inference           {:>8.0}", i + x);
    println!("  UserState::decide, no model      {p:>8.0}");
    println!("  UserState::decide, with model    {s:>8.0}");
    println!("  added by the model per decision  {:>8.0}", s - p);
}
