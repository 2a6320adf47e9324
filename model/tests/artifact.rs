//! Training on synthetic labelled data, determinism, round trips and refused files.

use chrono::{DateTime, Utc};
use sentinel_model::{
    train, Artifact, Model, ModelError, Sample, TrainConfig, FEATURE_NAMES, N_FEATURES,
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

fn trained() -> (Artifact, Model) {
    train(&samples(4_000), &config(), &mut |_| {}).unwrap()
}

#[test]
fn learns_separable_fraud_and_reports_held_out_figures() {
    let (artifact, model) = trained();
    let e = &artifact.evaluation;
    assert_eq!(e.events, 1_000);
    assert!(e.auc_roc.unwrap() > 0.95, "{e:?}");
    assert!(e.confusion.true_positives > 0);
    let fraud = &samples(4_000)[3_000];
    let out = model.score(&fraud.features);
    assert!(out.score > 0.5, "{out:?}");
    assert!(out
        .top_features
        .iter()
        .any(|(name, _)| *name == FEATURE_NAMES[1]));
    let legit = &samples(4_000)[3_001];
    assert!(model.score(&legit.features).score < 0.5);
}

#[test]
fn a_fixed_seed_gives_byte_identical_models() {
    let (a, _) = trained();
    let (b, _) = trained();
    assert_eq!(a.to_json(), b.to_json());
    let other = TrainConfig {
        seed: 8,
        ..config()
    };
    let (c, _) = train(&samples(4_000), &other, &mut |_| {}).unwrap();
    assert_ne!(a.model_id, c.model_id);
}

#[test]
fn round_trips_through_json() {
    let (artifact, model) = trained();
    let loaded = Model::from_json(artifact.to_json().as_bytes()).unwrap();
    assert_eq!(loaded.artifact(), &artifact);
    for s in samples(200) {
        assert_eq!(loaded.score(&s.features), model.score(&s.features));
    }
}

#[test]
fn corrupt_truncated_and_mismatched_files_are_refused() {
    let (artifact, _) = trained();
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
    tampered.params.logistic.intercept += 1.0;
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
        "model features do not match this build: the file has 35 features, this build computes 46"
    );

    let future = json.replacen("\"format_version\": 1", "\"format_version\": 99", 1);
    assert_eq!(
        Model::from_json(future.as_bytes()).unwrap_err(),
        ModelError::UnsupportedFormat { found: 99 }
    );

    // Wrong shapes with a valid checksum (a hand-built file) are refused by validation.
    let mut short = artifact.clone();
    short.params.logistic.weights.pop();
    let rebuilt = Artifact::new(short.training, short.evaluation, short.params);
    let err = Model::from_json(rebuilt.to_json().as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Invalid {
                field: "params.logistic.weights",
                ..
            }
        ),
        "{err}"
    );
}
