//! Training on synthetic labelled data, determinism, round trips and refused files, for both
//! supervised families.

use chrono::{DateTime, Utc};
use sentinel_model::{
    train, Artifact, BoostConfig, Model, ModelError, ModelFamily, Sample, SupervisedInfo,
    SupervisedParams, TrainConfig, TrainStage, FEATURE_NAMES, N_FEATURES,
};

/// Legit events cluster near zero; fraud has a large first feature and a set flag.
fn samples(n: usize) -> Vec<Sample> {
    let mut state = 12345u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let fraud = i % 25 == 0;
            let mut features = [0.0; N_FEATURES];
            for f in &mut features {
                *f = next();
            }
            if fraud {
                features[1] += 1.5 + next();
                features[13] = 1.0;
            }
            Sample {
                time_ms: i as i64 * 1_000,
                features,
                fraud,
            }
        })
        .collect()
}

fn config() -> TrainConfig {
    TrainConfig {
        source: "synthetic".into(),
        seed: 7,
        split_at: DateTime::<Utc>::from_timestamp_millis(3_000_000).unwrap(),
        ..TrainConfig::default()
    }
}

fn logistic() -> TrainConfig {
    TrainConfig {
        family: ModelFamily::Logistic,
        ..config()
    }
}

fn trained() -> (Artifact, Model) {
    train(&samples(4_000), &config(), &mut |_| {}).unwrap()
}

fn trained_logistic() -> (Artifact, Model) {
    train(&samples(4_000), &logistic(), &mut |_| {}).unwrap()
}

#[test]
fn both_families_learn_separable_fraud_and_report_held_out_figures() {
    for (artifact, model) in [trained(), trained_logistic()] {
        learns_separable_fraud(&artifact, &model);
    }
}

fn learns_separable_fraud(artifact: &Artifact, model: &Model) {
    let e = &artifact.evaluation;
    assert_eq!(e.events, 1_000);
    assert!(e.auc_roc.unwrap() > 0.95, "{e:?}");
    assert!(e.confusion.true_positives > 0);
    let fraud = &samples(4_000)[3_000];
    let out = model.score(&fraud.features);
    assert!(out.score > 0.5, "{out:?}");
    // The reason codes name the features that tell fraud apart.
    let reasons = [FEATURE_NAMES[1], FEATURE_NAMES[13]];
    assert!(reasons.contains(&out.top_features[0].0), "{out:?}");
    let legit = &samples(4_000)[3_001];
    assert!(model.score(&legit.features).score < 0.5);
}

#[test]
fn a_fixed_seed_gives_byte_identical_models() {
    let subsampled = TrainConfig {
        boost: BoostConfig {
            subsample: 0.7,
            seed: 3,
            ..BoostConfig::default()
        },
        ..config()
    };
    let fit = |config: &TrainConfig| train(&samples(4_000), config, &mut |_| {}).unwrap().0;
    let a = fit(&subsampled);
    let b = fit(&subsampled);
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.checksum, b.checksum);
    let mut other = subsampled.clone();
    other.boost.seed = 4;
    assert_ne!(a.model_id, fit(&other).model_id);
    other = TrainConfig {
        seed: 8,
        ..logistic()
    };
    assert_ne!(trained_logistic().0.model_id, fit(&other).model_id);
}

#[test]
fn round_trips_through_json_recording_the_family() {
    for (artifact, model) in [trained(), trained_logistic()] {
        let loaded = Model::from_json(artifact.to_json().as_bytes()).unwrap();
        assert_eq!(loaded.artifact(), &artifact);
        for s in samples(200) {
            assert_eq!(loaded.score(&s.features), model.score(&s.features));
        }
    }
    let (boosted, _) = trained();
    assert_eq!(boosted.params.supervised.family(), ModelFamily::Boosted);
    assert_eq!(
        boosted.training.supervised,
        SupervisedInfo::Boosted(BoostConfig::default())
    );
    let json = boosted.to_json();
    assert!(json.contains("\"family\": \"boosted\""), "{json:.400}");
    let (linear, _) = trained_logistic();
    assert_eq!(linear.params.supervised.family(), ModelFamily::Logistic);
    assert_eq!(linear.training.supervised.family(), ModelFamily::Logistic);
}

#[test]
fn boosting_reports_progress_per_tree() {
    let mut stages = Vec::new();
    let three = TrainConfig {
        boost: BoostConfig {
            trees: 3,
            ..BoostConfig::default()
        },
        ..config()
    };
    train(&samples(4_000), &three, &mut |stage| stages.push(stage)).unwrap();
    let boosting = |trees_done| TrainStage::Boosting {
        trees_done,
        trees: 3,
    };
    assert_eq!(
        stages,
        [
            TrainStage::Forest,
            boosting(0),
            boosting(1),
            boosting(2),
            boosting(3),
            TrainStage::Calibration,
            TrainStage::Evaluation
        ]
    );
    let bad = TrainConfig {
        boost: BoostConfig {
            learning_rate: 2.0,
            ..BoostConfig::default()
        },
        ..config()
    };
    let err = train(&samples(4_000), &bad, &mut |_| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid training configuration: learning_rate must be within (0, 1]"
    );
}

#[test]
fn corrupt_truncated_and_mismatched_files_are_refused() {
    let (artifact, _) = trained_logistic();
    let json = artifact.to_json();

    let truncated = &json.as_bytes()[..json.len() / 2];
    assert!(matches!(
        Model::from_json(truncated),
        Err(ModelError::Malformed(_))
    ));
    assert!(matches!(
        Model::from_json(b"not json"),
        Err(ModelError::Malformed(_))
    ));

    // A changed parameter still parses, but no longer matches the checksum.
    let mut tampered = artifact.clone();
    tampered.params.calibration.intercept += 1.0;
    let err = Model::from_json(tampered.to_json().as_bytes()).unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }), "{err}");

    let mut renamed = artifact.clone();
    renamed.feature_names[2] = "something_else".into();
    let err = Model::from_json(renamed.to_json().as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("feature 2 is `something_else`"),
        "{err}"
    );

    let mut fewer = artifact.clone();
    fewer.feature_names.pop();
    assert!(matches!(
        Model::from_json(fewer.to_json().as_bytes()),
        Err(ModelError::FeatureMismatch(_))
    ));

    // An artifact with the previous 35-feature list is refused, naming why.
    let mut old = artifact.clone();
    old.feature_names.truncate(35);
    let err = Model::from_json(old.to_json().as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "model features do not match this build: the file has 35 features, this build \
             computes {N_FEATURES}"
        )
    );

    // Format 1 (before the supervised part named its family) and future formats are refused.
    for found in [1, 99] {
        let other = json.replacen(
            "\"format_version\": 2",
            &format!("\"format_version\": {found}"),
            1,
        );
        let err = Model::from_json(other.as_bytes()).unwrap_err();
        assert_eq!(err, ModelError::UnsupportedFormat { found });
        assert_eq!(
            err.to_string(),
            format!("model file has format_version {found}; this build reads 2")
        );
    }

    // Wrong shapes with a valid checksum (a hand-built file) are refused by validation.
    let mut short = artifact.clone();
    let SupervisedParams::Logistic { logistic, .. } = &mut short.params.supervised else {
        unreachable!("trained as logistic")
    };
    logistic.weights.pop();
    let rebuilt = Artifact::new(short.training, short.evaluation, short.params);
    let err = Model::from_json(rebuilt.to_json().as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Invalid {
                field: "params.supervised.logistic.weights",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn corrupted_trees_in_a_checksummed_file_are_refused_naming_the_field() {
    let (artifact, _) = trained();
    let corrupt = |edit: &dyn Fn(&mut sentinel_model::BoostedParams)| {
        let mut a = artifact.clone();
        let SupervisedParams::Boosted(trees) = &mut a.params.supervised else {
            unreachable!("trained as boosted")
        };
        edit(trees);
        let rebuilt = Artifact::new(a.training, a.evaluation, a.params);
        match Model::from_json(rebuilt.to_json().as_bytes()) {
            Err(ModelError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    let split = |t: &sentinel_model::BoostedParams| t.left.iter().position(|&l| l != 0).unwrap();
    let n = |t: &sentinel_model::BoostedParams| t.feature.len() as u32;
    assert_eq!(
        corrupt(&|t| {
            let i = split(t);
            t.left[i] = n(t);
        }),
        "params.supervised.left"
    );
    assert_eq!(
        corrupt(&|t| {
            let i = split(t);
            t.right[i] = i as u32;
        }),
        "params.supervised.right"
    );
    assert_eq!(
        corrupt(&|t| t.feature[0] = N_FEATURES as u16),
        "params.supervised.feature"
    );
    // JSON has no NaN or infinity (serde writes `null`): such a file does not parse, and an
    // artifact built in memory with one is refused by validation.
    let mut a = artifact.clone();
    let SupervisedParams::Boosted(trees) = &mut a.params.supervised else {
        unreachable!("trained as boosted")
    };
    trees.threshold[0] = f64::NAN;
    let rebuilt = Artifact::new(a.training, a.evaluation, a.params);
    assert!(matches!(
        Model::from_json(rebuilt.to_json().as_bytes()),
        Err(ModelError::Malformed(_))
    ));
    let err = Model::from_artifact(rebuilt).unwrap_err();
    assert_eq!(
        err.to_string(),
        "model parameter `params.supervised.threshold` is invalid: node 0 is not a finite number"
    );
}
