//! Fit time of the boosted trees (default configuration) on synthetic rows with about 1% fraud.
//!
//! `cargo run --release -p sentinel-model --example boost_fit_time -- [ROWS] [SUBSAMPLE]`
//! (default 200000 rows, subsample 1).

use sentinel_model::{BoostConfig, Boosted, BoostedParams, FeatureVector, N_FEATURES};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map_or(200_000, |a| a.parse().expect("ROWS"));
    let subsample: f64 = args.next().map_or(1.0, |a| a.parse().expect("SUBSAMPLE"));
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    // Continuous, skewed, count-like and binary columns, as the real features are.
    let data: Vec<FeatureVector> = (0..rows)
        .map(|_| {
            std::array::from_fn(|f| match f % 4 {
                0 => next(),
                1 => -next().ln(),
                2 => (next() * 20.0).floor(),
                _ => f64::from(u8::from(next() < 0.1)),
            })
        })
        .collect();
    let labels: Vec<bool> = data
        .iter()
        .map(|x| (0.4..0.6).contains(&x[0]) && x[1] > 3.0 || next() < 0.003)
        .collect();
    let refs: Vec<&FeatureVector> = data.iter().collect();
    let config = BoostConfig {
        subsample,
        ..BoostConfig::default()
    };
    let start = Instant::now();
    let params = BoostedParams::fit(&refs, &labels, &config, &mut |_| {}).expect("fits");
    let fit = start.elapsed();
    let trees = Boosted::new(&params).expect("valid");
    // Live scoring reads a vector just computed, so score a cache-sized set many times.
    let hot = &data[..data.len().min(1_000)];
    let start = Instant::now();
    let total: f64 = (0..100)
        .map(|_| hot.iter().map(|x| trees.margin(x)).sum::<f64>())
        .sum();
    let margin = start.elapsed().as_nanos() as f64 / (100 * hot.len()) as f64;
    let mut out = [0.0; N_FEATURES];
    let start = Instant::now();
    let total: f64 = total
        + (0..100)
            .map(|_| {
                hot.iter()
                    .map(|x| trees.contributions(x, &mut out))
                    .sum::<f64>()
            })
            .sum::<f64>();
    let explain = start.elapsed().as_nanos() as f64 / (100 * hot.len()) as f64;
    println!(
        "{rows} rows x {N_FEATURES} features, {} fraud: {} trees ({} nodes) fitted in {:.2} s; \
         margin {margin:.0} ns/row, with contributions {explain:.0} ns/row (checksum {total:.3})",
        labels.iter().filter(|&&l| l).count(),
        config.trees,
        params.feature.len(),
        fit.as_secs_f64(),
    );
}
