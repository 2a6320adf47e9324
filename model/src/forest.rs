//! Isolation Forest (Liu, Ting & Zhou, 2008): anomalies are isolated by fewer random splits.
//!
//! Trees are stored flat, in pre-order: a split node's left child is the next node, its right
//! child is at `right[i]`. A leaf (`feature == LEAF`) stores, in `value`, the expected extra
//! path length `c(size)` of the points it still held, so scoring is a loop over arrays.
//!
//! Hand-written rather than taken from a crate on purpose: these flat arrays are the artifact's
//! stored form, and they keep scoring allocation-free (`model/tests/no_alloc.rs`).

use crate::features::{FeatureVector, N_FEATURES};
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// `feature` of a leaf node.
pub const LEAF: u8 = u8::MAX;

/// The learned forest, as stored in the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestParams {
    /// Points drawn (without replacement) to grow each tree.
    pub sample_size: u32,
    /// Index of each tree's root node.
    pub roots: Vec<u32>,
    /// Per node: the split feature, or 255 for a leaf.
    pub feature: Vec<u8>,
    /// Per node: the split threshold (go left when `x < value`), or a leaf's `c(size)`.
    pub value: Vec<f32>,
    /// Per node: the right child of a split (0 for leaves).
    pub right: Vec<u32>,
}

/// A validated forest, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForest {
    params: ForestParams,
    /// `c(sample_size)`: the average path length that normalises the score.
    norm: f64,
}

/// Average path length of an unsuccessful binary-search-tree search among `n` points.
fn c(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        n => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

impl IsolationForest {
    /// Grows `trees` trees on `data`, each from `sample_size` points drawn with `seed`.
    pub fn fit(data: &[&FeatureVector], trees: usize, sample_size: usize, seed: u64) -> Self {
        let psi = sample_size.clamp(1, data.len().max(1));
        let height_limit = (psi as f64).log2().ceil() as usize;
        let mut rng = SplitMix64::new(seed);
        let mut params = ForestParams {
            sample_size: psi as u32,
            roots: Vec::with_capacity(trees),
            feature: Vec::new(),
            value: Vec::new(),
            right: Vec::new(),
        };
        let mut indices: Vec<usize> = (0..data.len()).collect();
        for _ in 0..trees {
            // Partial Fisher-Yates: the first `psi` indices become the sample.
            for i in 0..psi.min(indices.len()) {
                let j = i + rng.below(indices.len() - i);
                indices.swap(i, j);
            }
            let mut sample: Vec<usize> = indices[..psi.min(indices.len())].to_vec();
            params.roots.push(params.feature.len() as u32);
            grow(data, &mut sample, 0, height_limit, &mut rng, &mut params);
        }
        IsolationForest::new(params).expect("a freshly grown forest is well formed")
    }

    /// Checks the stored arrays (sizes, child indices, features, finite values).
    pub fn new(params: ForestParams) -> Result<Self, String> {
        let n = params.feature.len();
        if params.value.len() != n || params.right.len() != n {
            return Err("forest arrays `feature`, `value` and `right` differ in length".into());
        }
        if params.roots.is_empty() || params.sample_size == 0 {
            return Err("forest has no trees".into());
        }
        if params.roots.iter().any(|&r| r as usize >= n) {
            return Err("forest root index out of range".into());
        }
        for i in 0..n {
            if !params.value[i].is_finite() {
                return Err(format!("forest node {i} has a non-finite value"));
            }
            if params.feature[i] == LEAF {
                continue;
            }
            // Children come after their parent, so every walk ends.
            if usize::from(params.feature[i]) >= N_FEATURES
                || i + 1 >= n
                || (params.right[i] as usize) <= i + 1
                || params.right[i] as usize >= n
            {
                return Err(format!("forest node {i} is malformed"));
            }
        }
        Ok(IsolationForest {
            norm: c(params.sample_size as usize),
            params,
        })
    }

    /// The stored arrays.
    pub fn params(&self) -> &ForestParams {
        &self.params
    }

    /// Anomaly score in 0..1: about 0.5 and below is ordinary, close to 1 is anomalous.
    pub fn score(&self, x: &FeatureVector) -> f64 {
        let p = &self.params;
        let mut total = 0.0;
        for &root in &p.roots {
            let mut i = root as usize;
            let mut depth = 0.0;
            while p.feature[i] != LEAF {
                let f = usize::from(p.feature[i]);
                i = if x[f] < f64::from(p.value[i]) {
                    i + 1
                } else {
                    p.right[i] as usize
                };
                depth += 1.0;
            }
            total += depth + f64::from(p.value[i]);
        }
        let mean = total / p.roots.len() as f64;
        if self.norm == 0.0 {
            0.5
        } else {
            2f64.powf(-mean / self.norm)
        }
    }
}

/// Grows one subtree over `sample` in pre-order.
fn grow(
    data: &[&FeatureVector],
    sample: &mut [usize],
    depth: usize,
    height_limit: usize,
    rng: &mut SplitMix64,
    out: &mut ForestParams,
) {
    let me = out.feature.len();
    let leaf = |out: &mut ForestParams, size: usize| {
        out.feature.push(LEAF);
        out.value.push(c(size) as f32);
        out.right.push(0);
    };
    if depth >= height_limit || sample.len() <= 1 {
        return leaf(out, sample.len());
    }
    // A random feature that still varies in this sample; start at a random one and walk on.
    let start = rng.below(N_FEATURES);
    let mut split = None;
    for k in 0..N_FEATURES {
        let f = (start + k) % N_FEATURES;
        let (lo, hi) = sample
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &s| {
                (lo.min(data[s][f]), hi.max(data[s][f]))
            });
        if lo < hi {
            // Stored as f32; split with the stored value so training and scoring agree.
            let inside = |t: f32| f64::from(t) > lo && f64::from(t) <= hi;
            let mut t = (lo + rng.unit() * (hi - lo)) as f32;
            if !inside(t) {
                t = hi as f32;
            }
            if inside(t) {
                split = Some((f, t));
                break;
            }
        }
    }
    let Some((f, t)) = split else {
        return leaf(out, sample.len());
    };
    let mut left = 0;
    for i in 0..sample.len() {
        if data[sample[i]][f] < f64::from(t) {
            sample.swap(i, left);
            left += 1;
        }
    }
    out.feature.push(f as u8);
    out.value.push(t);
    out.right.push(0);
    let (l, r) = sample.split_at_mut(left);
    grow(data, l, depth + 1, height_limit, rng, out);
    out.right[me] = out.feature.len() as u32;
    grow(data, r, depth + 1, height_limit, rng, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(v: f64) -> FeatureVector {
        let mut x = [0.0; N_FEATURES];
        x[0] = v;
        x[1] = v * 0.5;
        x
    }

    #[test]
    fn outliers_score_higher_and_seed_fixes_the_forest() {
        let data: Vec<FeatureVector> = (0..500).map(|i| point((i % 50) as f64 / 50.0)).collect();
        let data: Vec<&FeatureVector> = data.iter().collect();
        let a = IsolationForest::fit(&data, 50, 128, 7);
        let b = IsolationForest::fit(&data, 50, 128, 7);
        assert_eq!(a, b);
        assert!(a.score(&point(40.0)) > a.score(&point(0.5)) + 0.1);
        assert_ne!(IsolationForest::fit(&data, 50, 128, 8), a);
    }

    #[test]
    fn malformed_arrays_are_refused() {
        let data: Vec<FeatureVector> = (0..100).map(|i| point(i as f64)).collect();
        let data: Vec<&FeatureVector> = data.iter().collect();
        let mut p = IsolationForest::fit(&data, 3, 16, 1).params().clone();
        let split = p.feature.iter().position(|&f| f != LEAF).unwrap();
        p.right[split] = split as u32; // a cycle
        assert!(IsolationForest::new(p.clone()).is_err());
        p.value.pop();
        assert!(IsolationForest::new(p).is_err());
    }
}
