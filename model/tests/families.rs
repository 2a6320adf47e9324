//! The boosted trees against the logistic regression on a problem with an interaction: fraud
//! when `x0` lies in a middle band AND `x1` is high (about 2% of events), measured on a later,
//! held-out period.

use chrono::{DateTime, Utc};
use sentinel_model::{train, ModelFamily, Sample, TrainConfig, N_FEATURES};

fn samples(n: usize) -> Vec<Sample> {
    let mut state = 99u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let features: [f64; N_FEATURES] = std::array::from_fn(|_| next());
            let in_band = (0.45..0.55).contains(&features[0]) && features[1] > 0.8;
            // A little label noise both ways, as real labels have.
            let fraud = if in_band {
                next() < 0.9
            } else {
                next() < 0.002
            };
            Sample {
                time_ms: i as i64 * 1_000,
                features,
                fraud,
            }
        })
        .collect()
}

#[test]
fn boosted_trees_beat_the_logistic_regression_on_held_out_average_precision() {
    let data = samples(40_000);
    let frauds = data.iter().filter(|s| s.fraud).count();
    assert!((600..1_000).contains(&frauds), "{frauds} frauds");
    let config = |family| TrainConfig {
        source: "band".into(),
        family,
        split_at: DateTime::<Utc>::from_timestamp_millis(30_000_000).unwrap(),
        ..TrainConfig::default()
    };
    let ap = |family| {
        let (artifact, _) = train(&data, &config(family), &mut |_| {}).unwrap();
        artifact.evaluation.average_precision.unwrap()
    };
    let (boosted, logistic) = (ap(ModelFamily::Boosted), ap(ModelFamily::Logistic));
    assert!(
        boosted > 0.6 && boosted > logistic + 0.4,
        "boosted {boosted:.3}, logistic {logistic:.3}"
    );
}
