//! The few distributions the simulator draws from, built on a seeded `StdRng` so a seed fixes
//! the whole stream (no `rand_distr` dependency needed).

use rand::rngs::StdRng;
use rand::Rng;

/// Exponential with the given mean (inverse transform; `1 - u` keeps the log finite).
pub fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    if mean <= 0.0 {
        return 0.0;
    }
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// Standard normal (Box-Muller, one output used: simpler than caching the pair).
pub fn standard_normal(rng: &mut StdRng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A lognormal factor `exp(sigma * z)` (median 1) redrawn until it lies in `[low, high]`, so
/// amounts keep realistic spread while staying inside hard bounds the rules depend on.
pub fn bounded_lognormal(rng: &mut StdRng, sigma: f64, low: f64, high: f64) -> f64 {
    // ~85% of draws land inside the bounds used here; the cap only guards degenerate bounds.
    for _ in 0..16 {
        let f = (sigma * standard_normal(rng)).exp();
        if (low..=high).contains(&f) {
            return f;
        }
    }
    1.0_f64.clamp(low, high)
}

/// Index drawn from integer weights (the weights are tiny constant tables).
pub fn weighted(rng: &mut StdRng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut x = rng.random_range(0..total.max(1));
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn moments_are_about_right() {
        let mut rng = StdRng::seed_from_u64(1);
        let n = 200_000;
        let mean = (0..n).map(|_| exponential(&mut rng, 55.0)).sum::<f64>() / n as f64;
        assert!((mean - 55.0).abs() < 1.0, "{mean}");
        let z: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let m = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.02 && (var - 1.0).abs() < 0.02, "{m} {var}");
        for _ in 0..10_000 {
            let f = bounded_lognormal(&mut rng, 0.5, 0.55, 2.5);
            assert!((0.55..=2.5).contains(&f));
        }
        let counts = (0..10_000).fold([0u32; 3], |mut c, _| {
            c[weighted(&mut rng, &[1, 0, 3])] += 1;
            c
        });
        assert_eq!(counts[1], 0);
        assert!((2_300..2_700).contains(&counts[0]), "{counts:?}");
    }
}
