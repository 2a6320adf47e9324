//! One regression tree on the gradients, grown depth-first from gradient histograms.
//!
//! Each node's histogram sums `(gradient, hessian)` per feature and bin over its rows. Only the
//! smaller child's is built from rows; the larger one's is the parent's minus it, so a level
//! costs at most half the rows. Splits maximise the second-order gain with an L2 penalty and
//! a minimum hessian per child; leaves hold the Newton step `-G / (H + λ)` times the learning
//! rate. Internal nodes hold the hessian-weighted mean of their children (the node's expected
//! output), which path attribution needs.

use super::bins::{Bins, Codes, MAX_BINS};
use super::{BoostConfig, BoostedParams};
use crate::features::N_FEATURES;

/// `(gradient, hessian)` of one row or a sum of rows.
pub(crate) type GradPair = [f64; 2];

/// Sums per feature and bin.
type Hist = [[GradPair; MAX_BINS]; N_FEATURES];

/// Gains at or below this are rounding noise, not a split.
const MIN_GAIN: f64 = 1e-6;

/// Buffers kept across trees.
#[derive(Default)]
pub(crate) struct Scratch {
    right_rows: Vec<u32>,
    hists: Vec<Box<Hist>>,
}

/// What one tree grows from.
pub(crate) struct Grower<'a> {
    pub codes: &'a Codes,
    pub bins: &'a Bins,
    pub config: &'a BoostConfig,
    /// Per row: the loss's gradient and hessian at the current margin.
    pub gpair: &'a [GradPair],
    /// Per row: the current margin, to which each row's leaf value is added.
    pub margin: &'a mut [f64],
    pub scratch: &'a mut Scratch,
}

struct Split {
    feature: usize,
    bin: usize,
    left: GradPair,
}

impl Grower<'_> {
    /// Appends one tree to `out`, learning from `rows` (the sample) and also moving the
    /// margins of the out-of-sample rows `oob`. Both lists are reordered.
    pub(crate) fn grow(&mut self, rows: &mut [u32], oob: &mut [u32], out: &mut BoostedParams) {
        let mut hist = self.hist();
        self.fill(&mut hist, rows);
        let sum = hist[0]
            .iter()
            .fold([0.0, 0.0], |s, c| [s[0] + c[0], s[1] + c[1]]);
        out.roots.push(out.feature.len() as u32);
        self.node(rows, oob, Some(hist), sum, 0, out);
    }

    /// Grows the subtree over `rows` in pre-order; returns its node value.
    fn node(
        &mut self,
        rows: &mut [u32],
        oob: &mut [u32],
        hist: Option<Box<Hist>>,
        sum: GradPair,
        depth: u32,
        out: &mut BoostedParams,
    ) -> f64 {
        let me = out.feature.len();
        out.feature.push(0);
        out.threshold.push(0.0);
        out.left.push(0);
        out.right.push(0);
        out.value.push(0.0);
        let split = hist.as_deref().and_then(|h| self.best_split(h, sum));
        let left_rows = split
            .as_ref()
            .map(|s| self.partition(rows, s))
            .filter(|&n| n > 0 && n < rows.len());
        let (Some(split), Some(left_rows)) = (split, left_rows) else {
            let value = -sum[0] / (sum[1] + self.config.lambda) * self.config.learning_rate;
            for &r in rows.iter().chain(oob.iter()) {
                self.margin[r as usize] += value;
            }
            out.value[me] = value;
            self.scratch.hists.extend(hist);
            return value;
        };
        let left_oob = self.partition(oob, &split);
        let (rows_l, rows_r) = rows.split_at_mut(left_rows);
        let (oob_l, oob_r) = oob.split_at_mut(left_oob);
        let sum_l = split.left;
        let sum_r = [sum[0] - sum_l[0], sum[1] - sum_l[1]];
        let (hist_l, hist_r) = match hist {
            Some(mut parent) if depth + 1 < self.config.max_depth => {
                let mut small = self.hist();
                let left_is_small = rows_l.len() <= rows_r.len();
                self.fill(&mut small, if left_is_small { rows_l } else { rows_r });
                for (p, s) in parent.iter_mut().zip(small.iter()) {
                    for (p, s) in p.iter_mut().zip(s) {
                        p[0] -= s[0];
                        p[1] -= s[1];
                    }
                }
                if left_is_small {
                    (Some(small), Some(parent))
                } else {
                    (Some(parent), Some(small))
                }
            }
            // The children are leaves: no histograms needed.
            hist => {
                self.scratch.hists.extend(hist);
                (None, None)
            }
        };
        out.feature[me] = split.feature as u16;
        out.threshold[me] = self.bins.threshold(split.feature, split.bin);
        out.left[me] = out.feature.len() as u32;
        let value_l = self.node(rows_l, oob_l, hist_l, sum_l, depth + 1, out);
        out.right[me] = out.feature.len() as u32;
        let value_r = self.node(rows_r, oob_r, hist_r, sum_r, depth + 1, out);
        let value = (sum_l[1] * value_l + sum_r[1] * value_r) / (sum_l[1] + sum_r[1]);
        out.value[me] = value;
        value
    }

    /// A zeroed histogram, reused when one is free.
    fn hist(&mut self) -> Box<Hist> {
        match self.scratch.hists.pop() {
            Some(mut h) => {
                h.iter_mut().for_each(|f| f.fill([0.0, 0.0]));
                h
            }
            None => Box::new([[[0.0, 0.0]; MAX_BINS]; N_FEATURES]),
        }
    }

    fn fill(&self, hist: &mut Hist, rows: &[u32]) {
        for &r in rows {
            let r = r as usize;
            let g = self.gpair[r];
            for (cells, &code) in hist.iter_mut().zip(self.codes.row(r)) {
                let cell = &mut cells[usize::from(code)];
                cell[0] += g[0];
                cell[1] += g[1];
            }
        }
    }

    /// The split with the largest gain, if any beats [`MIN_GAIN`] with enough hessian on both
    /// sides. Ties keep the first (lowest feature, then lowest bin): deterministic.
    fn best_split(&self, hist: &Hist, sum: GradPair) -> Option<Split> {
        let lambda = self.config.lambda;
        let min = self.config.min_child_hessian;
        let parent = sum[0] * sum[0] / (sum[1] + lambda);
        let mut best = None;
        let mut best_gain = MIN_GAIN;
        for (feature, cells) in hist.iter().enumerate() {
            let mut left = [0.0, 0.0];
            for (bin, cell) in cells[..self.bins.count(feature) - 1].iter().enumerate() {
                left[0] += cell[0];
                left[1] += cell[1];
                let right = [sum[0] - left[0], sum[1] - left[1]];
                if right[1] < min {
                    break;
                }
                if left[1] < min {
                    continue;
                }
                let gain = left[0] * left[0] / (left[1] + lambda)
                    + right[0] * right[0] / (right[1] + lambda)
                    - parent;
                if gain > best_gain {
                    best_gain = gain;
                    best = Some(Split { feature, bin, left });
                }
            }
        }
        best
    }

    /// Moves the rows going left to the front, keeping the order on each side (so histogram
    /// passes read the codes in ascending rows); returns how many went left.
    fn partition(&mut self, rows: &mut [u32], split: &Split) -> usize {
        let right = &mut self.scratch.right_rows;
        right.clear();
        let column = self.codes.column(split.feature);
        let mut left = 0;
        for i in 0..rows.len() {
            let r = rows[i];
            if usize::from(column[r as usize]) <= split.bin {
                rows[left] = r;
                left += 1;
            } else {
                right.push(r);
            }
        }
        rows[left..].copy_from_slice(right);
        left
    }
}
