//! A loaded model: parameters in fixed arrays, scoring without allocation.

use crate::artifact::{Artifact, Calibration, ModelError};
use crate::features::{FeatureVector, FEATURE_NAMES, N_FEATURES};
use crate::forest::IsolationForest;
use crate::supervised::sigmoid;

/// Reason codes per decision: the features that pushed the score up most.
pub const TOP_FEATURES: usize = 3;

/// A validated model, ready to score.
#[derive(Clone)]
pub struct Model {
    artifact: Artifact,
    mean: FeatureVector,
    inv_scale: FeatureVector,
    weights: FeatureVector,
    intercept: f64,
    forest: IsolationForest,
    calibration: Calibration,
}

impl std::fmt::Debug for Model {
    /// The id only: the parameters are thousands of numbers, and policies that carry a model
    /// get logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// One event's model output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelOutput {
    /// Calibrated fraud probability, 0..1.
    pub score: f64,
    /// Isolation-forest anomaly score, 0..1.
    pub anomaly: f64,
    /// The features with the largest contributions to the score, largest first, with their
    /// contribution to the calibrated logit.
    pub top_features: [(&'static str, f64); TOP_FEATURES],
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

impl Model {
    /// Parses and validates a model file.
    pub fn from_json(bytes: &[u8]) -> Result<Model, ModelError> {
        Model::from_artifact(Artifact::from_json(bytes)?)
    }

    /// Validates an artifact's parameters.
    pub fn from_artifact(artifact: Artifact) -> Result<Model, ModelError> {
        let p = &artifact.params;
        let mean = array("params.standardization.mean", &p.standardization.mean)?;
        let scale = array("params.standardization.scale", &p.standardization.scale)?;
        if scale.iter().any(|&s| s <= 0.0) {
            return Err(ModelError::Invalid {
                field: "params.standardization.scale",
                message: "every scale must be positive".into(),
            });
        }
        let weights = array("params.logistic.weights", &p.logistic.weights)?;
        let c = p.calibration;
        if ![p.logistic.intercept, c.supervised, c.anomaly, c.intercept]
            .iter()
            .all(|x| x.is_finite())
        {
            return Err(ModelError::Invalid {
                field: "params.calibration",
                message: "intercepts and calibration weights must be finite numbers".into(),
            });
        }
        let forest =
            IsolationForest::new(p.forest.clone()).map_err(|message| ModelError::Invalid {
                field: "params.forest",
                message,
            })?;
        Ok(Model {
            inv_scale: scale.map(|s| 1.0 / s),
            mean,
            weights,
            intercept: p.logistic.intercept,
            forest,
            calibration: c,
            artifact,
        })
    }

    /// The model's id, recorded on decisions as its version.
    pub fn id(&self) -> &str {
        &self.artifact.model_id
    }

    /// The artifact it was loaded from.
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// Scores one feature vector.
    pub fn score(&self, x: &FeatureVector) -> ModelOutput {
        let c = self.calibration;
        let mut logit = self.intercept;
        let mut top = [("", f64::NEG_INFINITY); TOP_FEATURES];
        for i in 0..N_FEATURES {
            let part = self.weights[i] * (x[i] - self.mean[i]) * self.inv_scale[i];
            logit += part;
            let contribution = c.supervised * part;
            // Insertion into the short, sorted top list.
            if contribution > top[TOP_FEATURES - 1].1 {
                let mut at = TOP_FEATURES - 1;
                while at > 0 && contribution > top[at - 1].1 {
                    top[at] = top[at - 1];
                    at -= 1;
                }
                top[at] = (FEATURE_NAMES[i], contribution);
            }
        }
        let anomaly = self.forest.score(x);
        let score = sigmoid(c.supervised * logit + c.anomaly * anomaly + c.intercept);
        ModelOutput {
            score: if score.is_finite() { score } else { 1.0 },
            anomaly,
            top_features: top,
        }
    }
}
