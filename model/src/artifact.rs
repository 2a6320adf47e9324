//! The versioned model file: what was trained, on what, how well it did, and the parameters.
//!
//! The checksum covers everything but the id and itself, so a flipped digit is caught even when
//! the JSON still parses; the id is derived from the checksum, so equal models have equal ids.

use crate::boosted::{BoostConfig, BoostedParams};
use crate::features::{FEATURE_NAMES, N_FEATURES};
use crate::forest::ForestParams;
use crate::metrics::Evaluation;
use crate::supervised::LogisticParams;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The artifact format this code reads and writes (2: the supervised part names its family).
pub const FORMAT_VERSION: u32 = 2;

/// A model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Layout of this file; only [`FORMAT_VERSION`] is read.
    pub format_version: u32,
    /// `m-` and the first 12 hex digits of the checksum: the model's version on decisions.
    pub model_id: String,
    /// SHA-256 (hex) of the file without `model_id` and `checksum`.
    pub checksum: String,
    /// The features the model reads, in order; must equal the code's.
    pub feature_names: Vec<String>,
    /// Where the training data came from.
    pub training: TrainingInfo,
    /// Figures on the held-out, later period.
    pub evaluation: Evaluation,
    /// The learned parameters.
    pub params: Params,
}

/// Where and how a model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    /// The data source, e.g. `simulator seed=7 events=200000` or a CSV path.
    pub source: String,
    /// Seed of the isolation forest (the boosted trees record theirs in `supervised`).
    pub seed: u64,
    /// First event time trained on.
    pub train_from: Option<DateTime<Utc>>,
    /// Events at or after this time were held out for evaluation.
    pub split_at: DateTime<Utc>,
    /// Last event time evaluated on.
    pub eval_until: Option<DateTime<Utc>>,
    /// Events used for fitting (calibration split included).
    pub train_events: u64,
    /// Of which labelled fraud.
    pub train_frauds: u64,
    /// Trees in the isolation forest.
    pub trees: u32,
    /// The supervised family and its hyper-parameters.
    pub supervised: SupervisedInfo,
}

/// The supervised model families.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFamily {
    /// Logistic regression on standardized features.
    Logistic,
    /// Gradient-boosted trees.
    #[default]
    Boosted,
}

/// A supervised family's hyper-parameters, as recorded in [`TrainingInfo`]:
/// `{"family": "logistic", "alpha": …}` or `{"family": "boosted", "trees": …, …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case", deny_unknown_fields)]
pub enum SupervisedInfo {
    /// Logistic regression.
    Logistic {
        /// L2 penalty.
        alpha: f64,
    },
    /// Gradient-boosted trees.
    Boosted(BoostConfig),
}

impl SupervisedInfo {
    /// Which family.
    pub fn family(&self) -> ModelFamily {
        match self {
            SupervisedInfo::Logistic { .. } => ModelFamily::Logistic,
            SupervisedInfo::Boosted(_) => ModelFamily::Boosted,
        }
    }
}

/// The learned parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The supervised model, producing a logit (margin) from the features.
    pub supervised: SupervisedParams,
    /// The anomaly model over raw features.
    pub forest: ForestParams,
    /// How the two combine into the final score.
    pub calibration: Calibration,
}

/// The supervised model's parameters, tagged with its family:
/// `{"family": "logistic", "standardization": …, "logistic": …}` or
/// `{"family": "boosted", "base_score": …, "roots": …, …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case", deny_unknown_fields)]
pub enum SupervisedParams {
    /// Logistic regression over standardized features.
    Logistic {
        /// How raw features are standardized.
        standardization: Standardization,
        /// The regression over standardized features.
        logistic: LogisticParams,
    },
    /// Gradient-boosted trees over raw features.
    Boosted(BoostedParams),
}

impl SupervisedParams {
    /// Which family.
    pub fn family(&self) -> ModelFamily {
        match self {
            SupervisedParams::Logistic { .. } => ModelFamily::Logistic,
            SupervisedParams::Boosted(_) => ModelFamily::Boosted,
        }
    }
}

/// `z[i] = (x[i] - mean[i]) / scale[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standardization {
    /// Training mean per feature.
    pub mean: Vec<f64>,
    /// Training standard deviation per feature (1 where constant).
    pub scale: Vec<f64>,
}

/// Platt scaling over both parts: `score = σ(supervised · logit + anomaly · a + intercept)`,
/// where `logit` is the supervised model's (the logistic logit or the trees' margin).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Weight of the supervised model's logit.
    pub supervised: f64,
    /// Weight of the isolation-forest anomaly score.
    pub anomaly: f64,
    /// Bias.
    pub intercept: f64,
}

/// Why a model file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// Not JSON, truncated, or the wrong shape.
    #[error("model file is not a valid artifact: {0}")]
    Malformed(String),
    /// Written by an incompatible version.
    #[error("model file has format_version {found}; this build reads {FORMAT_VERSION}")]
    UnsupportedFormat {
        /// The file's version.
        found: u32,
    },
    /// Trained on different features than this code computes.
    #[error("model features do not match this build: {0}")]
    FeatureMismatch(String),
    /// The content changed after it was written.
    #[error("model checksum mismatch: the file says {stated}, its content hashes to {actual}")]
    Checksum {
        /// What the file claims.
        stated: String,
        /// What the content hashes to.
        actual: String,
    },
    /// Parameters of the wrong size or value.
    #[error("model parameter `{field}` is invalid: {message}")]
    Invalid {
        /// Which parameter.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The checksummed part of the artifact.
#[derive(Serialize)]
struct Body<'a> {
    format_version: u32,
    feature_names: &'a [String],
    training: &'a TrainingInfo,
    evaluation: &'a Evaluation,
    params: &'a Params,
}

impl Artifact {
    /// Builds an artifact for this code's features, computing its checksum and id.
    pub fn new(training: TrainingInfo, evaluation: Evaluation, params: Params) -> Artifact {
        let mut artifact = Artifact {
            format_version: FORMAT_VERSION,
            model_id: String::new(),
            checksum: String::new(),
            feature_names: FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect(),
            training,
            evaluation,
            params,
        };
        artifact.checksum = artifact.content_hash();
        artifact.model_id = format!("m-{}", &artifact.checksum[..12]);
        artifact
    }

    fn content_hash(&self) -> String {
        let body = Body {
            format_version: self.format_version,
            feature_names: &self.feature_names,
            training: &self.training,
            evaluation: &self.evaluation,
            params: &self.params,
        };
        let bytes = serde_json::to_vec(&body).expect("plain data serializes");
        hex::encode(Sha256::digest(&bytes))
    }

    /// Pretty JSON, as written to disk.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serializes")
    }

    /// Parses and checks a model file: format, features, checksum and id. Parameter shapes are
    /// checked when it becomes a [`crate::Model`].
    pub fn from_json(bytes: &[u8]) -> Result<Artifact, ModelError> {
        // Read the version first, so a future format gets a clear answer, not a shape error.
        #[derive(Deserialize)]
        struct Version {
            format_version: Option<u32>,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| ModelError::Malformed(e.to_string()))?;
        match version.format_version {
            Some(FORMAT_VERSION) => {}
            Some(found) => return Err(ModelError::UnsupportedFormat { found }),
            None => {
                return Err(ModelError::Malformed(
                    "missing field `format_version`".into(),
                ))
            }
        }
        let artifact: Artifact =
            serde_json::from_slice(bytes).map_err(|e| ModelError::Malformed(e.to_string()))?;
        artifact.check_features()?;
        let actual = artifact.content_hash();
        if artifact.checksum != actual {
            return Err(ModelError::Checksum {
                stated: artifact.checksum,
                actual,
            });
        }
        let id = format!("m-{}", &actual[..12]);
        if artifact.model_id != id {
            return Err(ModelError::Invalid {
                field: "model_id",
                message: format!("must be `{id}`, derived from the checksum"),
            });
        }
        Ok(artifact)
    }

    fn check_features(&self) -> Result<(), ModelError> {
        if self.feature_names.len() != N_FEATURES {
            return Err(ModelError::FeatureMismatch(format!(
                "the file has {} features, this build computes {N_FEATURES}",
                self.feature_names.len()
            )));
        }
        for (i, (file, code)) in self.feature_names.iter().zip(FEATURE_NAMES).enumerate() {
            if file != code {
                return Err(ModelError::FeatureMismatch(format!(
                    "feature {i} is `{file}` in the file but `{code}` in this build"
                )));
            }
        }
        Ok(())
    }
}
