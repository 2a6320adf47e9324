//! Gradient-boosted trees with logistic loss: the stronger supervised family.
//!
//! Written here rather than taken from a crate: linfa has no gradient boosting (linfa-trees fits
//! classification trees whose leaves hold a class, with no leaf values or regression trees to
//! fit gradients, and linfa-ensemble's random forest returns majority votes); the Rust GBDT
//! crates are unmaintained (gbdt-rs) or bind C++ (LightGBM, XGBoost). Scoring must also be
//! flat and allocation-free, and the trees must live in our versioned, checksummed artifact.
//!
//! Training is second-order histogram boosting, as in LightGBM or XGBoost's `hist`: features
//! are cut into at most 64 quantile bins ([`bins`]), each tree is grown depth-first on the
//! gradient histograms with Newton leaves ([`grow`]). The first margin is the log-odds of the
//! training fraud rate, so a 1% class starts where it belongs.
//!
//! Trees are stored flat, in pre-order. A node with `left == right == 0` is a leaf; any other
//! node sends `x` to `left` when `x[feature] <= threshold`, else to `right`, and both children
//! come after it within its tree, so every walk ends. `value` is a leaf's output, or an internal
//! node's expected output (the hessian-weighted mean of its children), used by
//! [`Boosted::contributions`].

mod bins;
mod grow;

use crate::artifact::ModelError;
use crate::features::{FeatureVector, N_FEATURES};
use crate::rng::SplitMix64;
use crate::supervised::sigmoid;
use bins::Bins;
use grow::{GradPair, Grower, Scratch};
use serde::{Deserialize, Serialize};

/// Hyper-parameters of the boosted trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoostConfig {
    /// Trees fitted, one after the other.
    pub trees: u32,
    /// Splits from root to leaf, at most (1..=16).
    pub max_depth: u32,
    /// Shrinkage of each tree's leaves, in (0, 1].
    pub learning_rate: f64,
    /// Share of the rows each tree learns from, drawn anew per tree, in (0, 1].
    pub subsample: f64,
    /// L2 penalty on leaf values (≥ 0).
    pub lambda: f64,
    /// Least hessian (about: rows × p(1-p)) on each side of a split (> 0).
    pub min_child_hessian: f64,
    /// Seed of the row sampling.
    pub seed: u64,
}

impl Default for BoostConfig {
    fn default() -> Self {
        BoostConfig {
            trees: 150,
            max_depth: 5,
            learning_rate: 0.1,
            subsample: 1.0,
            lambda: 1.0,
            min_child_hessian: 1.0,
            seed: 1,
        }
    }
}

impl BoostConfig {
    /// Names the first out-of-range hyper-parameter.
    pub fn check(&self) -> Result<(), String> {
        let unit = |v: f64| v > 0.0 && v <= 1.0;
        let problem = if self.trees == 0 {
            "trees must be at least 1"
        } else if !(1..=16).contains(&self.max_depth) {
            "max_depth must be within 1..=16"
        } else if !unit(self.learning_rate) {
            "learning_rate must be within (0, 1]"
        } else if !unit(self.subsample) {
            "subsample must be within (0, 1]"
        } else if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            "lambda must be a finite number ≥ 0"
        } else if !(self.min_child_hessian > 0.0 && self.min_child_hessian.is_finite()) {
            "min_child_hessian must be a finite number > 0"
        } else {
            return Ok(());
        };
        Err(problem.into())
    }
}

/// The trees, as stored in the artifact (see the module docs for the layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoostedParams {
    /// Margin before any tree: the log-odds of the training fraud rate.
    pub base_score: f64,
    /// Index of each tree's root node; a tree runs to the next root (the last to the end).
    pub roots: Vec<u32>,
    /// Per node: the feature a split reads (0 for leaves).
    pub feature: Vec<u16>,
    /// Per node: go left when `x[feature] <= threshold` (0 for leaves).
    pub threshold: Vec<f64>,
    /// Per node: the left child (0 for leaves).
    pub left: Vec<u32>,
    /// Per node: the right child (0 for leaves).
    pub right: Vec<u32>,
    /// Per node: a leaf's output, or an internal node's expected output.
    pub value: Vec<f64>,
}

impl BoostedParams {
    /// Fits `config.trees` trees to `labels` (true = fraud) on `data`, reporting each finished
    /// tree's count to `progress`. The same data, config and seed give identical trees.
    pub fn fit(
        data: &[&FeatureVector],
        labels: &[bool],
        config: &BoostConfig,
        progress: &mut dyn FnMut(u32),
    ) -> Result<BoostedParams, String> {
        boost(data, labels, config, progress).map(|(params, _)| params)
    }
}

/// Fits the trees; also returns the margin training tracked for each row, which the scorer
/// must reproduce exactly.
fn boost(
    data: &[&FeatureVector],
    labels: &[bool],
    config: &BoostConfig,
    progress: &mut dyn FnMut(u32),
) -> Result<(BoostedParams, Vec<f64>), String> {
    config.check()?;
    let n = data.len();
    assert_eq!(n, labels.len(), "one label per row");
    let frauds = labels.iter().filter(|&&l| l).count();
    if frauds == 0 || frauds == n || u32::try_from(n).is_err() {
        return Err(format!(
            "boosting needs both classes and fewer than 2^32 rows; got {n} rows, {frauds} fraud"
        ));
    }
    let prior = frauds as f64 / n as f64;
    let base_score = (prior / (1.0 - prior)).ln();
    let bins = Bins::new(data);
    let codes = bins.codes(data);
    let mut out = BoostedParams {
        base_score,
        roots: Vec::with_capacity(config.trees as usize),
        feature: Vec::new(),
        threshold: Vec::new(),
        left: Vec::new(),
        right: Vec::new(),
        value: Vec::new(),
    };
    let mut margin = vec![base_score; n];
    let mut gpair: Vec<GradPair> = vec![[0.0, 0.0]; n];
    let mut rng = SplitMix64::new(config.seed);
    let (mut rows, mut oob) = (Vec::with_capacity(n), Vec::new());
    let mut scratch = Scratch::default();
    for done in 1..=config.trees {
        for ((g, &m), &fraud) in gpair.iter_mut().zip(&margin).zip(labels) {
            let p = sigmoid(m);
            *g = [p - f64::from(u8::from(fraud)), (p * (1.0 - p)).max(1e-16)];
        }
        rows.clear();
        oob.clear();
        for r in 0..n as u32 {
            if config.subsample >= 1.0 || rng.unit() < config.subsample {
                rows.push(r);
            } else {
                oob.push(r);
            }
        }
        if rows.is_empty() {
            rows.push(oob.swap_remove(rng.below(oob.len())));
        }
        Grower {
            codes: &codes,
            bins: &bins,
            config,
            gpair: &gpair,
            margin: &mut margin,
            scratch: &mut scratch,
        }
        .grow(&mut rows, &mut oob, &mut out);
        progress(done);
    }
    Ok((out, margin))
}

/// Trees walked side by side when scoring.
const LANES: usize = 8;

/// A node as the scorer reads it: every field side by side (32 bytes), one load away.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    threshold: f64,
    value: f64,
    left: u32,
    right: u32,
    feature: u16,
}

/// Validated trees, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct Boosted {
    base_score: f64,
    /// `base_score` plus every root's value: the margin the contributions start from.
    bias: f64,
    roots: Vec<u32>,
    nodes: Vec<Node>,
}

/// The error for `field` of the boosted parameters.
fn invalid(field: &'static str, message: String) -> ModelError {
    ModelError::Invalid { field, message }
}

impl Boosted {
    /// Checks the stored trees: array sizes, roots, children in range and pointing forward
    /// within their tree (no cycles), feature indices, finite numbers. Errors name the field
    /// (`params.supervised.<array>`) and the node.
    pub fn new(p: &BoostedParams) -> Result<Boosted, ModelError> {
        let n = p.feature.len();
        for (field, len) in [
            ("params.supervised.threshold", p.threshold.len()),
            ("params.supervised.left", p.left.len()),
            ("params.supervised.right", p.right.len()),
            ("params.supervised.value", p.value.len()),
        ] {
            if len != n {
                return Err(invalid(
                    field,
                    format!("has {len} entries but `feature` has {n}"),
                ));
            }
        }
        if !p.base_score.is_finite() {
            return Err(invalid(
                "params.supervised.base_score",
                "is not a finite number".into(),
            ));
        }
        let roots = "params.supervised.roots";
        if p.roots.first() != Some(&0) {
            return Err(invalid(roots, "must start with node 0".into()));
        }
        if let Some(w) = p.roots.windows(2).find(|w| w[0] >= w[1]) {
            return Err(invalid(
                roots,
                format!("must be increasing, but {} is followed by {}", w[0], w[1]),
            ));
        }
        if *p.roots.last().expect("not empty") as usize >= n {
            return Err(invalid(
                roots,
                format!("a root is at or past the {n} nodes"),
            ));
        }
        let mut nodes = Vec::with_capacity(n);
        for (t, &root) in p.roots.iter().enumerate() {
            let end = p.roots.get(t + 1).map_or(n, |&r| r as usize);
            for i in root as usize..end {
                nodes.push(node(p, i, end)?);
            }
        }
        let bias = p.base_score + p.roots.iter().map(|&r| p.value[r as usize]).sum::<f64>();
        Ok(Boosted {
            base_score: p.base_score,
            bias,
            roots: p.roots.clone(),
            nodes,
        })
    }

    /// The margin (log-odds) for `x`: the base score plus one leaf value per tree.
    pub fn margin(&self, x: &FeatureVector) -> f64 {
        self.walk(x, |_, _| {})
    }

    /// Path attribution (Saabas): every split on the way to a leaf adds the change in node
    /// value, `value(child) - value(parent)`, to its feature. Overwrites `out` and returns the
    /// margin, which equals [`Boosted::bias`] plus the sum of `out`.
    pub fn contributions(&self, x: &FeatureVector, out: &mut FeatureVector) -> f64 {
        out.fill(0.0);
        self.walk(x, |parent, child| {
            out[usize::from(parent.feature)] += child.value - parent.value;
        })
    }

    /// Walks every tree to its leaf, calling `step(parent, child)` on each edge taken, and
    /// returns the base score plus the leaves' values (added in tree order, as training did).
    fn walk(&self, x: &FeatureVector, mut step: impl FnMut(&Node, &Node)) -> f64 {
        let mut margin = self.base_score;
        let chunks = self.roots.chunks_exact(LANES);
        let rest = chunks.remainder();
        for roots in chunks {
            let roots: &[u32; LANES] = roots.try_into().expect("exact chunks");
            margin = self.walk_side_by_side(roots, x, margin, &mut step);
        }
        for root in rest {
            margin = self.walk_side_by_side(&[*root], x, margin, &mut step);
        }
        margin
    }

    /// Walks `L` trees side by side: the walks are independent chains of memory loads, so
    /// interleaving them overlaps their latency. Adds their leaves to `margin`, in order.
    fn walk_side_by_side<const L: usize>(
        &self,
        roots: &[u32; L],
        x: &FeatureVector,
        mut margin: f64,
        step: &mut impl FnMut(&Node, &Node),
    ) -> f64 {
        let mut at = roots.map(|r| r as usize);
        let mut walking = true;
        while walking {
            walking = false;
            for a in &mut at {
                let node = &self.nodes[*a];
                if node.left != 0 {
                    let child = next(node, x);
                    step(node, &self.nodes[child]);
                    *a = child;
                    walking = true;
                }
            }
        }
        for a in at {
            margin += self.nodes[a].value;
        }
        margin
    }

    /// The margin with every contribution zero: the base score plus each tree's expected output.
    pub fn bias(&self) -> f64 {
        self.bias
    }
}

/// The child `x` goes to, chosen without a branch (the comparison is unpredictable). Features
/// are finite, so `>` is exactly "not `<=`".
fn next(node: &Node, x: &FeatureVector) -> usize {
    let right = x[usize::from(node.feature)] > node.threshold;
    [node.left, node.right][usize::from(right)] as usize
}

/// Node `i` of the tree that ends before node `end`, checked.
fn node(p: &BoostedParams, i: usize, end: usize) -> Result<Node, ModelError> {
    let feature = p.feature[i];
    if usize::from(feature) >= N_FEATURES {
        return Err(invalid(
            "params.supervised.feature",
            format!("node {i} reads feature {feature}; this build has {N_FEATURES}"),
        ));
    }
    for (field, v) in [
        ("params.supervised.threshold", p.threshold[i]),
        ("params.supervised.value", p.value[i]),
    ] {
        if !v.is_finite() {
            return Err(invalid(field, format!("node {i} is not a finite number")));
        }
    }
    let (left, right) = (p.left[i], p.right[i]);
    if (left, right) != (0, 0) {
        for (field, child) in [
            ("params.supervised.left", left),
            ("params.supervised.right", right),
        ] {
            let c = child as usize;
            if c <= i || c >= end {
                return Err(invalid(
                    field,
                    format!(
                        "node {i} points to node {child}, outside {}..{end}: children come \
                         after their parent within its tree (no cycles)",
                        i + 1
                    ),
                ));
            }
        }
    }
    Ok(Node {
        threshold: p.threshold[i],
        value: p.value[i],
        left,
        right,
        feature,
    })
}

#[cfg(test)]
mod tests;
