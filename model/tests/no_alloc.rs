//! Scoring allocates nothing, for either family: a counting allocator is installed for this
//! test binary only (per thread, so tests running in parallel do not disturb each other).

use chrono::{DateTime, Utc};
use sentinel_model::{
    train, Boosted, FeatureVector, Model, ModelFamily, Sample, SupervisedParams, TrainConfig,
    N_FEATURES,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn samples() -> Vec<Sample> {
    (0..3_000)
        .map(|i| {
            let features: FeatureVector =
                std::array::from_fn(|f| ((i * 7 + f * 13) % 101) as f64 / 101.0);
            Sample {
                time_ms: i as i64 * 1_000,
                features,
                fraud: i % 30 == 0 || features[2] > 0.97,
            }
        })
        .collect()
}

fn trained(family: ModelFamily) -> Model {
    let config = TrainConfig {
        family,
        split_at: DateTime::<Utc>::from_timestamp_millis(2_200_000).unwrap(),
        ..TrainConfig::default()
    };
    train(&samples(), &config, &mut |_| {}).unwrap().1
}

#[test]
fn scoring_either_family_allocates_nothing() {
    let data = samples();
    for family in [ModelFamily::Boosted, ModelFamily::Logistic] {
        let model = trained(family);
        let mut total = 0.0;
        let n = allocations_during(|| {
            for s in &data {
                total += model.score(&s.features).score;
            }
        });
        assert_eq!(n, 0, "{family:?} allocated while scoring");
        assert!(total > 0.0);
    }
}

#[test]
fn margins_and_contributions_allocate_nothing() {
    let model = trained(ModelFamily::Boosted);
    let SupervisedParams::Boosted(params) = &model.artifact().params.supervised else {
        unreachable!("trained as boosted")
    };
    let trees = Boosted::new(params).unwrap();
    let data = samples();
    let mut out = [0.0; N_FEATURES];
    let mut total = 0.0;
    let n = allocations_during(|| {
        for s in &data {
            total += trees.margin(&s.features) + trees.contributions(&s.features, &mut out);
        }
    });
    assert_eq!(n, 0);
    assert!(total.is_finite());
}

#[test]
fn the_counter_sees_allocations() {
    // black_box: an instrumented (coverage) build elided the unused allocation altogether.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 10]))) > 0);
}
