use super::*;

/// Uniform features; fraud exactly when `x0` is in a middle band and `x1` is high.
fn band(n: usize, seed: u64) -> (Vec<FeatureVector>, Vec<bool>) {
    let mut rng = SplitMix64::new(seed);
    let data: Vec<FeatureVector> = (0..n)
        .map(|_| std::array::from_fn(|_| rng.unit()))
        .collect();
    let labels = data
        .iter()
        .map(|x| (0.4..0.6).contains(&x[0]) && x[1] > 0.7)
        .collect();
    (data, labels)
}

fn fit(data: &[FeatureVector], labels: &[bool], config: &BoostConfig) -> BoostedParams {
    let refs: Vec<&FeatureVector> = data.iter().collect();
    BoostedParams::fit(&refs, labels, config, &mut |_| {}).unwrap()
}

fn small() -> BoostConfig {
    BoostConfig {
        trees: 30,
        max_depth: 3,
        learning_rate: 0.3,
        ..BoostConfig::default()
    }
}

fn at(x0: f64, x1: f64) -> FeatureVector {
    let mut x = [0.5; N_FEATURES];
    x[0] = x0;
    x[1] = x1;
    x
}

#[test]
fn learns_a_band_no_line_separates_and_reports_progress() {
    let (data, labels) = band(5_000, 1);
    let refs: Vec<&FeatureVector> = data.iter().collect();
    let mut reported = Vec::new();
    let params =
        BoostedParams::fit(&refs, &labels, &small(), &mut |done| reported.push(done)).unwrap();
    assert_eq!(reported, (1..=30).collect::<Vec<u32>>());
    let prior = labels.iter().filter(|&&l| l).count() as f64 / labels.len() as f64;
    assert_eq!(params.base_score, (prior / (1.0 - prior)).ln());
    let trees = Boosted::new(&params).unwrap();
    let inside = trees.margin(&at(0.5, 0.9));
    for outside in [at(0.2, 0.9), at(0.8, 0.9), at(0.5, 0.3)] {
        assert!(inside > trees.margin(&outside) + 3.0, "{inside}");
    }
    assert!(sigmoid(inside) > 0.9 && sigmoid(trees.margin(&at(0.2, 0.2))) < 0.05);
}

#[test]
fn contributions_sum_to_the_margin_minus_the_bias() {
    let (data, labels) = band(3_000, 2);
    let trees = Boosted::new(&fit(&data, &labels, &small())).unwrap();
    let mut out = [f64::NAN; N_FEATURES];
    for x in band(200, 3).0 {
        let margin = trees.contributions(&x, &mut out);
        assert_eq!(margin, trees.margin(&x));
        let sum: f64 = out.iter().sum();
        assert!((trees.bias() + sum - margin).abs() < 1e-9, "{margin}");
    }
    // The band's features carry the explanation of a fraud.
    trees.contributions(&at(0.5, 0.9), &mut out);
    assert!(out[0] > 0.5 && out[1] > 0.5, "{out:?}");
    assert!(out[2..].iter().all(|c| c.abs() < out[1]), "{out:?}");
}

#[test]
fn the_seed_fixes_the_subsampled_trees() {
    let (data, labels) = band(2_000, 4);
    let config = BoostConfig {
        subsample: 0.6,
        seed: 9,
        ..small()
    };
    let a = fit(&data, &labels, &config);
    assert_eq!(a, fit(&data, &labels, &config));
    let other = fit(&data, &labels, &BoostConfig { seed: 10, ..config });
    assert_ne!(a, other);
}

#[test]
fn training_margins_are_what_the_scorer_computes_for_sampled_and_left_out_rows() {
    let (data, labels) = band(2_000, 7);
    let refs: Vec<&FeatureVector> = data.iter().collect();
    let config = BoostConfig {
        subsample: 0.5,
        ..small()
    };
    let (params, margins) = boost(&refs, &labels, &config, &mut |_| {}).unwrap();
    let trees = Boosted::new(&params).unwrap();
    for (x, margin) in data.iter().zip(margins) {
        assert_eq!(trees.margin(x), margin);
    }
}

#[test]
fn depth_bounds_the_trees() {
    let (data, labels) = band(2_000, 5);
    let config = BoostConfig {
        max_depth: 2,
        ..small()
    };
    let p = fit(&data, &labels, &config);
    let ends = p
        .roots
        .iter()
        .skip(1)
        .map(|&r| r as usize)
        .chain([p.feature.len()]);
    for (&root, end) in p.roots.iter().zip(ends) {
        assert!(
            end - root as usize <= 7,
            "a depth-2 tree has at most 7 nodes"
        );
    }
}

#[test]
fn bad_configs_and_one_class_data_are_errors() {
    let (data, labels) = band(100, 6);
    let refs: Vec<&FeatureVector> = data.iter().collect();
    for (config, expected) in [
        (
            BoostConfig {
                trees: 0,
                ..small()
            },
            "trees",
        ),
        (
            BoostConfig {
                max_depth: 0,
                ..small()
            },
            "max_depth",
        ),
        (
            BoostConfig {
                learning_rate: 0.0,
                ..small()
            },
            "learning_rate",
        ),
        (
            BoostConfig {
                subsample: 1.5,
                ..small()
            },
            "subsample",
        ),
        (
            BoostConfig {
                lambda: f64::NAN,
                ..small()
            },
            "lambda",
        ),
        (
            BoostConfig {
                min_child_hessian: 0.0,
                ..small()
            },
            "min_child_hessian",
        ),
    ] {
        let err = BoostedParams::fit(&refs, &labels, &config, &mut |_| {}).unwrap_err();
        assert!(err.starts_with(expected), "{err}");
    }
    let err = BoostedParams::fit(&refs, &[false; 100], &small(), &mut |_| {}).unwrap_err();
    assert!(err.contains("both classes"), "{err}");
}

/// A valid two-tree model: a split with two leaves, then a single leaf.
fn valid() -> BoostedParams {
    BoostedParams {
        base_score: -2.0,
        roots: vec![0, 3],
        feature: vec![4, 0, 0, 0],
        threshold: vec![1.5, 0.0, 0.0, 0.0],
        left: vec![1, 0, 0, 0],
        right: vec![2, 0, 0, 0],
        value: vec![0.1, -0.2, 0.4, 0.05],
    }
}

fn refused(p: &BoostedParams) -> (&'static str, String) {
    match Boosted::new(p) {
        Err(ModelError::Invalid { field, message }) => (field, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_valid_model_scores_by_hand() {
    let trees = Boosted::new(&valid()).unwrap();
    let mut x = [0.0; N_FEATURES];
    x[4] = 1.5; // at the threshold: left
    assert_eq!(trees.margin(&x), -2.0 - 0.2 + 0.05);
    x[4] = 1.6;
    assert_eq!(trees.margin(&x), -2.0 + 0.4 + 0.05);
    let mut out = [0.0; N_FEATURES];
    trees.contributions(&x, &mut out);
    assert!((out[4] - 0.3).abs() < 1e-12);
    assert!((trees.bias() - (-2.0 + 0.1 + 0.05)).abs() < 1e-12);
}

#[test]
fn corrupted_trees_are_refused_naming_the_field_and_node() {
    let mut p = valid();
    p.left[0] = 9;
    assert_eq!(
        refused(&p),
        (
            "params.supervised.left",
            "node 0 points to node 9, outside 1..3: children come after their parent within \
             its tree (no cycles)"
                .into()
        )
    );

    let mut cycle = valid();
    cycle.right[0] = 0;
    let (field, message) = refused(&cycle);
    assert_eq!(field, "params.supervised.right");
    assert!(message.starts_with("node 0 points to node 0"), "{message}");

    // A child in the next tree is out of range too.
    let mut across = valid();
    across.right[0] = 3;
    assert_eq!(refused(&across).0, "params.supervised.right");

    let mut feature = valid();
    feature.feature[0] = N_FEATURES as u16;
    assert_eq!(
        refused(&feature),
        (
            "params.supervised.feature",
            format!("node 0 reads feature {N_FEATURES}; this build has {N_FEATURES}")
        )
    );

    let mut nan = valid();
    nan.threshold[0] = f64::NAN;
    assert_eq!(
        refused(&nan),
        (
            "params.supervised.threshold",
            "node 0 is not a finite number".into()
        )
    );
    let mut inf = valid();
    inf.value[2] = f64::INFINITY;
    assert_eq!(
        refused(&inf),
        (
            "params.supervised.value",
            "node 2 is not a finite number".into()
        )
    );
    let mut base = valid();
    base.base_score = f64::NAN;
    assert_eq!(refused(&base).0, "params.supervised.base_score");

    let mut short = valid();
    short.value.pop();
    assert_eq!(
        refused(&short),
        (
            "params.supervised.value",
            "has 3 entries but `feature` has 4".into()
        )
    );

    for roots in [vec![], vec![1, 3], vec![0, 3, 3], vec![0, 4]] {
        let p = BoostedParams { roots, ..valid() };
        assert_eq!(refused(&p).0, "params.supervised.roots");
    }
}
