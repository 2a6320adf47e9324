//! The linear supervised family: L2-regularised logistic regression fitted with linfa on
//! standardized features (also used to fit the Platt calibration).

use crate::artifact::{ModelError, Standardization};
use crate::features::{FeatureVector, N_FEATURES};
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

/// A validated logistic model over standardized features, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Linear {
    mean: FeatureVector,
    inv_scale: FeatureVector,
    weights: FeatureVector,
    intercept: f64,
}

fn array(field: &'static str, v: &[f64]) -> Result<FeatureVector, ModelError> {
    let out: FeatureVector = v.try_into().map_err(|_| ModelError::Invalid {
        field,
        message: format!("has {} values, expected {N_FEATURES}", v.len()),
    })?;
    if let Some(i) = out.iter().position(|x| !x.is_finite()) {
        return Err(ModelError::Invalid {
            field,
            message: format!("value {i} is not a finite number"),
        });
    }
    Ok(out)
}

impl Linear {
    /// Checks sizes, finiteness and positive scales.
    pub(crate) fn new(
        standardization: &Standardization,
        logistic: &LogisticParams,
    ) -> Result<Linear, ModelError> {
        let mean = array(
            "params.supervised.standardization.mean",
            &standardization.mean,
        )?;
        let scale = array(
            "params.supervised.standardization.scale",
            &standardization.scale,
        )?;
        if scale.iter().any(|&s| s <= 0.0) {
            return Err(ModelError::Invalid {
                field: "params.supervised.standardization.scale",
                message: "every scale must be positive".into(),
            });
        }
        let weights = array("params.supervised.logistic.weights", &logistic.weights)?;
        if !logistic.intercept.is_finite() {
            return Err(ModelError::Invalid {
                field: "params.supervised.logistic.intercept",
                message: "is not a finite number".into(),
            });
        }
        Ok(Linear {
            inv_scale: scale.map(|s| 1.0 / s),
            mean,
            weights,
            intercept: logistic.intercept,
        })
    }

    /// Writes each feature's term of the logit into `out` and returns the logit.
    pub(crate) fn contributions(&self, x: &FeatureVector, out: &mut FeatureVector) -> f64 {
        let mut logit = self.intercept;
        for i in 0..N_FEATURES {
            out[i] = self.weights[i] * (x[i] - self.mean[i]) * self.inv_scale[i];
            logit += out[i];
        }
        logit
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
