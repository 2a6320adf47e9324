//! The supervised part: L2-regularised logistic regression fitted with linfa.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// A fitted logistic regression: `logit = intercept + Σ weights[i] · x[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogisticParams {
    /// One weight per input column.
    pub weights: Vec<f64>,
    /// The bias.
    pub intercept: f64,
}

impl LogisticParams {
    /// Fits on `rows` (each `columns` wide, row-major) against `labels` (true = positive).
    pub fn fit(
        rows: Vec<f64>,
        columns: usize,
        labels: &[bool],
        alpha: f64,
        max_iterations: u64,
    ) -> Result<LogisticParams, String> {
        let records = Array2::from_shape_vec((labels.len(), columns), rows)
            .map_err(|e| format!("feature matrix: {e}"))?;
        let targets: Array1<usize> = labels.iter().map(|&l| usize::from(l)).collect();
        let fitted = LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(max_iterations)
            .fit(&Dataset::new(records, targets))
            .map_err(|e| e.to_string())?;
        // linfa's positive class is the more frequent one; flip so the logit favours `true`.
        let sign = if fitted.labels().pos.class == 1 {
            1.0
        } else {
            -1.0
        };
        Ok(LogisticParams {
            weights: fitted.params().iter().map(|w| sign * w).collect(),
            intercept: sign * fitted.intercept(),
        })
    }

    /// The logit for one row.
    pub fn logit(&self, x: &[f64]) -> f64 {
        self.intercept + self.weights.iter().zip(x).map(|(w, x)| w * x).sum::<f64>()
    }
}

/// `1 / (1 + e^-z)`.
pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_a_separable_problem() {
        let xs: Vec<f64> = (0..200).map(|i| f64::from(i) / 100.0 - 1.0).collect();
        let labels: Vec<bool> = xs.iter().map(|&x| x > 0.3).collect();
        let p = LogisticParams::fit(xs, 1, &labels, 0.01, 200).unwrap();
        assert!(p.weights[0] > 0.0, "{p:?}");
        assert!(sigmoid(p.logit(&[0.9])) > 0.5 && sigmoid(p.logit(&[-0.5])) < 0.5);
    }

    #[test]
    fn one_class_is_an_error_not_a_panic() {
        assert!(LogisticParams::fit(vec![0.0, 1.0], 1, &[false, false], 0.1, 10).is_err());
    }
}
