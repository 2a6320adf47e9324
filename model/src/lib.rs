//! SentinelStream's machine-learned risk score.
//!
//! - [`features`]: the fixed, named feature vector every model reads. The values are computed
//!   by `sentinel-engine` from the event and the user's state, by one function shared by live
//!   scoring and training.
//! - [`IsolationForest`]: an unsupervised anomaly score (no labels needed), flat arrays.
//! - Supervised part, one of two families ([`ModelFamily`]): gradient-boosted trees written here
//!   ([`Boosted`], the default) or logistic regression fitted with linfa on standardized features.
//! - [`Model`]: the loaded, validated artifact; [`Model::score`] combines both parts into a
//!   calibrated 0..1 score with reason codes, without allocating.
//! - [`Artifact`]: the versioned JSON file; [`train()`] builds one and evaluates it on a later,
//!   held-out period ([`metrics`]).

mod artifact;
mod boosted;
pub mod card_precision;
pub mod features;
mod forest;
pub mod metrics;
mod model;
mod rng;
mod supervised;
mod train;

pub use artifact::{
    Artifact, Calibration, ModelError, ModelFamily, Params, Standardization, SupervisedInfo,
    SupervisedParams, TrainingInfo, FORMAT_VERSION,
};
pub use boosted::{BoostConfig, Boosted, BoostedParams};
pub use features::{FeatureVector, FEATURE_NAMES, N_FEATURES};
pub use forest::{ForestParams, IsolationForest};
pub use metrics::{Confusion, Evaluation};
pub use model::{Model, ModelOutput, TOP_FEATURES};
pub use supervised::LogisticParams;
pub use train::{evaluate, train, Sample, TrainConfig, TrainError, TrainStage};
