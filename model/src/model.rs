//! A loaded model: parameters in fixed arrays, scoring without allocation.

use crate::artifact::{Artifact, Calibration, ModelError, SupervisedParams};
use crate::boosted::Boosted;
use crate::features::{FeatureVector, FEATURE_NAMES, N_FEATURES};
use crate::forest::IsolationForest;
use crate::supervised::{sigmoid, Linear};

/// Reason codes per decision: the features that pushed the score up most.
pub const TOP_FEATURES: usize = 3;

/// A validated model, ready to score.
#[derive(Clone)]
pub struct Model {
    artifact: Artifact,
    supervised: Supervised,
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

/// The validated supervised part of either family.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Supervised {
    /// Boxed: its four feature-sized arrays would make every variant that large.
    Linear(Box<Linear>),
    Boosted(Boosted),
}

impl Supervised {
    /// Validates stored parameters.
    pub(crate) fn new(params: &SupervisedParams) -> Result<Supervised, ModelError> {
        Ok(match params {
            SupervisedParams::Logistic {
                standardization,
                logistic,
            } => Supervised::Linear(Box::new(Linear::new(standardization, logistic)?)),
            SupervisedParams::Boosted(trees) => Supervised::Boosted(Boosted::new(trees)?),
        })
    }

    /// The logit, with each feature's share of it written to `out` (the logistic regression's
    /// terms, or the trees' path attribution).
    pub(crate) fn contributions(&self, x: &FeatureVector, out: &mut FeatureVector) -> f64 {
        match self {
            Supervised::Linear(linear) => linear.contributions(x, out),
            Supervised::Boosted(trees) => trees.contributions(x, out),
        }
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

impl Model {
    /// Parses and validates a model file.
    pub fn from_json(bytes: &[u8]) -> Result<Model, ModelError> {
        Model::from_artifact(Artifact::from_json(bytes)?)
    }

    /// Validates an artifact's parameters.
    pub fn from_artifact(artifact: Artifact) -> Result<Model, ModelError> {
        let p = &artifact.params;
        let supervised = Supervised::new(&p.supervised)?;
        let c = p.calibration;
        if ![c.supervised, c.anomaly, c.intercept]
            .iter()
            .all(|x| x.is_finite())
        {
            return Err(ModelError::Invalid {
                field: "params.calibration",
                message: "the weights and intercept must be finite numbers".into(),
            });
        }
        let forest =
            IsolationForest::new(p.forest.clone()).map_err(|message| ModelError::Invalid {
                field: "params.forest",
                message,
            })?;
        Ok(Model {
            supervised,
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
        let mut parts = [0.0; N_FEATURES];
        let logit = self.supervised.contributions(x, &mut parts);
        let mut top = [("", f64::NEG_INFINITY); TOP_FEATURES];
        for (i, part) in parts.iter().enumerate() {
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
