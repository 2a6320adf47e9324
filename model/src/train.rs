//! Training: fit on an earlier period, calibrate on its tail, evaluate on a later period.
//!
//! ```text
//! time ──► [ fit: forest + supervised ][ calibrate ] | split_at | [ evaluate ]
//! ```

use crate::artifact::{
    Artifact, Calibration, ModelFamily, Params, Standardization, SupervisedInfo, SupervisedParams,
    TrainingInfo,
};
use crate::boosted::{BoostConfig, BoostedParams};
use crate::features::{FeatureVector, N_FEATURES};
use crate::forest::IsolationForest;
use crate::metrics::Evaluation;
use crate::model::{Model, Supervised};
use crate::supervised::LogisticParams;
use chrono::{DateTime, Utc};

/// One labelled event's features.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Event time, ms since the epoch.
    pub time_ms: i64,
    /// The features, computed as live scoring computes them.
    pub features: FeatureVector,
    /// Labelled fraud.
    pub fraud: bool,
}

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Where the samples came from, recorded in the artifact.
    pub source: String,
    /// Seed of the forest's sampling and splits.
    pub seed: u64,
    /// The supervised family to fit.
    pub family: ModelFamily,
    /// Hyper-parameters of the boosted trees (family `Boosted`).
    pub boost: BoostConfig,
    /// Trees in the isolation forest.
    pub trees: u32,
    /// Points per tree.
    pub sample_size: u32,
    /// L2 penalty of the logistic regression (family `Logistic`).
    pub alpha: f64,
    /// Solver iterations of the logistic regression and of the calibration.
    pub max_iterations: u64,
    /// Events from this time on are held out for evaluation.
    pub split_at: DateTime<Utc>,
    /// Share of the training period (its latest events) used to calibrate.
    pub calibration_fraction: f64,
    /// Threshold of the reported confusion matrix.
    pub threshold: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            source: String::new(),
            seed: 1,
            family: ModelFamily::default(),
            boost: BoostConfig::default(),
            trees: 64,
            sample_size: 128,
            alpha: 0.01,
            max_iterations: 300,
            split_at: DateTime::<Utc>::MIN_UTC,
            calibration_fraction: 0.25,
            threshold: 0.5,
        }
    }
}

/// Steps of training, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainStage {
    /// Growing the isolation forest.
    Forest,
    /// Fitting the logistic regression.
    Supervised,
    /// Fitting the boosted trees: `trees_done` of `trees` so far.
    Boosting {
        /// Trees finished.
        trees_done: u32,
        /// Trees to fit.
        trees: u32,
    },
    /// Fitting the calibration.
    Calibration,
    /// Scoring the held-out period.
    Evaluation,
}

/// Why training failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// A period lacks events or one of the classes.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// A hyper-parameter is out of range.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// The solver failed.
    #[error("fitting failed: {0}")]
    Fit(String),
}

/// Trains a model on the samples before `config.split_at` and evaluates it on the rest.
pub fn train(
    samples: &[Sample],
    config: &TrainConfig,
    progress: &mut dyn FnMut(TrainStage),
) -> Result<(Artifact, Model), TrainError> {
    if config.family == ModelFamily::Boosted {
        config.boost.check().map_err(TrainError::Config)?;
    }
    let split_ms = config.split_at.timestamp_millis();
    let mut order: Vec<&Sample> = samples.iter().collect();
    order.sort_by_key(|s| s.time_ms);
    let cut = order.partition_point(|s| s.time_ms < split_ms);
    let (before, after) = order.split_at(cut);
    let calibrate_from = before.len()
        - ((before.len() as f64 * config.calibration_fraction.clamp(0.05, 0.5)) as usize);
    let (fit, calibrate) = before.split_at(calibrate_from);
    for (name, part) in [
        ("fit", fit),
        ("calibration", calibrate),
        ("evaluation", after),
    ] {
        let frauds = part.iter().filter(|s| s.fraud).count();
        if frauds == 0 || frauds == part.len() {
            return Err(TrainError::NotEnoughData(format!(
                "the {name} period has {} events of which {frauds} fraud; it needs both classes",
                part.len()
            )));
        }
    }

    progress(TrainStage::Forest);
    let raw: Vec<&FeatureVector> = fit.iter().map(|s| &s.features).collect();
    let forest = IsolationForest::fit(
        &raw,
        config.trees.max(1) as usize,
        config.sample_size as usize,
        config.seed,
    );

    let labels: Vec<bool> = fit.iter().map(|s| s.fraud).collect();
    let supervised = match config.family {
        ModelFamily::Logistic => {
            progress(TrainStage::Supervised);
            fit_logistic(&raw, &labels, config)?
        }
        ModelFamily::Boosted => {
            let trees = config.boost.trees;
            progress(TrainStage::Boosting {
                trees_done: 0,
                trees,
            });
            let boosted = BoostedParams::fit(&raw, &labels, &config.boost, &mut |trees_done| {
                progress(TrainStage::Boosting { trees_done, trees })
            })
            .map_err(TrainError::Fit)?;
            SupervisedParams::Boosted(boosted)
        }
    };

    progress(TrainStage::Calibration);
    let scorer = Supervised::new(&supervised).map_err(|e| TrainError::Fit(e.to_string()))?;
    let mut parts = [0.0; N_FEATURES];
    let mut rows = Vec::with_capacity(calibrate.len() * 2);
    for s in calibrate {
        rows.push(scorer.contributions(&s.features, &mut parts));
        rows.push(forest.score(&s.features));
    }
    let labels: Vec<bool> = calibrate.iter().map(|s| s.fraud).collect();
    let platt = LogisticParams::fit(rows, 2, &labels, 1e-4, config.max_iterations)
        .map_err(TrainError::Fit)?;
    let calibration = Calibration {
        supervised: platt.weights[0],
        anomaly: platt.weights[1],
        intercept: platt.intercept,
    };

    let params = Params {
        supervised,
        forest: forest.params().clone(),
        calibration,
    };
    let unevaluated = Model::from_artifact(Artifact::new(
        training_info(config, before, after),
        Evaluation::of(&[], &[], config.threshold),
        params.clone(),
    ))
    .map_err(|e| TrainError::Fit(e.to_string()))?;

    progress(TrainStage::Evaluation);
    let held_out: Vec<Sample> = after.iter().map(|s| (*s).clone()).collect();
    let evaluation = evaluate(&unevaluated, &held_out, config.threshold);
    let artifact = Artifact::new(training_info(config, before, after), evaluation, params);
    let model =
        Model::from_artifact(artifact.clone()).map_err(|e| TrainError::Fit(e.to_string()))?;
    Ok((artifact, model))
}

/// Scores labelled samples and measures the result.
pub fn evaluate(model: &Model, samples: &[Sample], threshold: f64) -> Evaluation {
    let scores: Vec<f64> = samples
        .iter()
        .map(|s| model.score(&s.features).score)
        .collect();
    let labels: Vec<bool> = samples.iter().map(|s| s.fraud).collect();
    Evaluation::of(&scores, &labels, threshold)
}

fn training_info(config: &TrainConfig, before: &[&Sample], after: &[&Sample]) -> TrainingInfo {
    let time = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms);
    TrainingInfo {
        source: config.source.clone(),
        seed: config.seed,
        train_from: before.first().and_then(|s| time(s.time_ms)),
        split_at: config.split_at,
        eval_until: after.last().and_then(|s| time(s.time_ms)),
        train_events: before.len() as u64,
        train_frauds: before.iter().filter(|s| s.fraud).count() as u64,
        trees: config.trees.max(1),
        supervised: match config.family {
            ModelFamily::Logistic => SupervisedInfo::Logistic {
                alpha: config.alpha,
            },
            ModelFamily::Boosted => SupervisedInfo::Boosted(config.boost.clone()),
        },
    }
}

/// Standardizes the features and fits the logistic regression on them.
fn fit_logistic(
    raw: &[&FeatureVector],
    labels: &[bool],
    config: &TrainConfig,
) -> Result<SupervisedParams, TrainError> {
    let standardization = standardization(raw);
    let mut rows = Vec::with_capacity(raw.len() * N_FEATURES);
    for x in raw {
        rows.extend(standardize(x, &standardization));
    }
    let logistic = LogisticParams::fit(
        rows,
        N_FEATURES,
        labels,
        config.alpha,
        config.max_iterations,
    )
    .map_err(TrainError::Fit)?;
    Ok(SupervisedParams::Logistic {
        standardization,
        logistic,
    })
}

fn standardization(raw: &[&FeatureVector]) -> Standardization {
    let n = raw.len().max(1) as f64;
    let mut mean = vec![0.0; N_FEATURES];
    for x in raw {
        for (m, v) in mean.iter_mut().zip(x.iter()) {
            *m += v / n;
        }
    }
    let mut scale = vec![0.0; N_FEATURES];
    for x in raw {
        for ((s, v), m) in scale.iter_mut().zip(x.iter()).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    for s in &mut scale {
        *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
    }
    Standardization { mean, scale }
}

fn standardize(x: &FeatureVector, s: &Standardization) -> FeatureVector {
    let mut z = [0.0; N_FEATURES];
    for i in 0..N_FEATURES {
        z[i] = (x[i] - s.mean[i]) / s.scale[i];
    }
    z
}
