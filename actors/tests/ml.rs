//! The machine-learned score end to end inside the actors: training on the simulator's labelled
//! traffic through the same feature code as live scoring, held-out quality, and parity between
//! the training path and real user actors, analyst labels (entity-risk features) included.

use chrono::{DateTime, TimeZone, Utc};
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::{EntityActivity, EntityRisk, FeatureReplay, LabelSighting, PolicyDef};
use sentinel_event::Outcome;
use sentinel_model::{train, Model, Sample, TrainConfig};
use sentinel_rules::{Action, Mode, RuleDef};
use sentinel_simulator::{analyst_labels, Feedback, Scenario, SimConfig, SimEvent, Simulator};
use sentinel_store::{EmbeddedStore, Store, Writer, WriterConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LATENESS_MS: i64 = 300_000;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn simulate(events: usize, seed: u64, rate_per_sec: f64) -> Vec<SimEvent> {
    let mut sim = Simulator::new(SimConfig {
        seed,
        users: 1_000,
        rate_per_sec,
        fraud_ratio: 0.03,
        start: start(),
        daily_rhythm: true,
        scenarios: Scenario::ALL.to_vec(),
    });
    (0..events).map(|_| sim.next_event()).collect()
}

/// The entity-risk index of `events` with late analyst feedback, squeezed into the simulated
/// hours: chargebacks 1 to 20 minutes after the fraud, confirmations of 5 % of legit events 1
/// to 10 minutes after; events see labels 5 minutes old.
fn labels(events: &[SimEvent]) -> Arc<EntityRisk> {
    let feedback = Feedback {
        chargeback_share: 0.8,
        chargeback_delay: (chrono::Duration::minutes(1), chrono::Duration::minutes(20)),
        confirm_share: 0.05,
        confirm_delay: (chrono::Duration::minutes(1), chrono::Duration::minutes(10)),
    };
    let mut activity = EntityActivity::default();
    let mut times = std::collections::HashMap::new();
    for e in events {
        activity.record_event(&e.txn);
        times.insert(e.txn.transaction_id.as_str(), e.txn.event_time_ms());
    }
    let sightings = analyst_labels(events, &feedback, 3).into_iter().map(|l| {
        let event_ms = times[l.transaction_id.as_str()];
        l.with_parts(|at, merchant, device, fraud| {
            LabelSighting::new(event_ms, at, merchant, device, fraud)
        })
    });
    Arc::new(EntityRisk::build(300_000, &activity, sightings))
}

fn samples(events: &[SimEvent], labels: &Arc<EntityRisk>) -> Vec<Sample> {
    let mut replay = FeatureReplay::new(LATENESS_MS, Arc::clone(labels));
    events
        .iter()
        .map(|e| Sample {
            time_ms: e.txn.event_time_ms(),
            features: replay.features(&e.txn),
            fraud: e.label.is_some(),
        })
        .collect()
}

/// Trains on the first 70% of the simulated period and holds out the rest.
fn trained(events: &[SimEvent], labels: &Arc<EntityRisk>) -> Model {
    let split = events[events.len() * 7 / 10].txn.timestamp;
    let config = TrainConfig {
        source: "simulator".into(),
        split_at: split,
        ..TrainConfig::default()
    };
    let (artifact, model) = train(&samples(events, labels), &config, &mut |_| {}).unwrap();
    assert!(artifact.training.train_frauds > 0);
    model
}

#[test]
fn simulator_traffic_trains_a_model_with_high_held_out_auc() {
    let events = simulate(40_000, 11, 5.0);
    let model = trained(&events, &labels(&events));
    let e = &model.artifact().evaluation;
    assert!(e.events > 10_000 && e.frauds > 50, "{e:?}");
    let auc = e.auc_roc.unwrap();
    assert!(auc > 0.9, "held-out AUC-ROC {auc}: {e:?}");
    assert!(e.average_precision.unwrap() > 0.3, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_user_actors_compute_the_same_features_as_training() {
    // Slow enough that the 3,000 compared events span hours: entity counts cover complete
    // hours, so the labels reach the features within the compared stretch.
    let events = simulate(30_000, 5, 0.3);
    let labels = labels(&events);
    let model = Arc::new(trained(&events, &labels));

    // A live node's actors with the model active and a rule on its score.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    let mut def = PolicyDef::seed();
    def.rules.push(RuleDef {
        name: "ml_high".into(),
        expression: "ml.score >= 0.9".into(),
        action: Action::Review,
        priority: 1,
        mode: Mode::Active,
        description: "the model is confident".into(),
    });
    let mut policy = def.compile().unwrap();
    policy.models.champion = Some(Arc::clone(&model));
    policy.models.entity_risk.publish(Arc::clone(&labels));
    let config = ScorerConfig {
        shards: 2,
        passivate_after: Duration::from_secs(600),
        lateness: Duration::from_millis(LATENESS_MS as u64),
        snapshot_every: 50,
        ..ScorerConfig::default()
    };
    let scorer = Scorer::start(writer, Arc::new(policy), config)
        .await
        .unwrap();

    // The training path over the same events.
    let expected = samples(&events[..3_000], &labels);
    // The index moves features and scores, so equal scores below check it too.
    let unlabelled = samples(&events[..3_000], &Arc::new(EntityRisk::default()));
    let entity = |s: &Sample| s.features[sentinel_model::N_FEATURES - 12..].to_vec();
    let share = sentinel_model::features::index_of("merchant_fraud_share_30d").unwrap();
    assert!(expected.iter().any(|s| s.features[share] > 0.0));
    assert!(unlabelled.iter().all(|s| entity(s) == [0.0; 12]));
    assert!(expected
        .iter()
        .zip(&unlabelled)
        .any(|(a, b)| model.score(&a.features).score != model.score(&b.features).score));
    let mut high = 0;
    for (event, sample) in events[..3_000].iter().zip(&expected) {
        let stored = scorer
            .score(Arc::new(event.txn.clone()), Instant::now())
            .await
            .unwrap();
        let d = &stored.decision;
        let ml =
            d.ml.as_ref()
                .expect("every decision carries the model's score");
        let offline = model.score(&sample.features);
        assert_eq!(ml.score, offline.score, "{}", d.transaction_id);
        assert_eq!(ml.anomaly, offline.anomaly, "{}", d.transaction_id);
        let names: Vec<&str> = offline.top_features.iter().map(|(n, _)| *n).collect();
        assert_eq!(ml.top_features, names);
        assert_eq!(ml.model_version, model.id());
        let rule_fired = d.reasons.iter().any(|r| r.rule == "ml_high");
        assert_eq!(rule_fired, ml.score >= 0.9, "{}", d.transaction_id);
        if rule_fired {
            high += 1;
            assert_ne!(d.outcome, Outcome::Approve);
        }
    }
    assert!(high > 0, "the model never reached 0.9 on 3,000 events");
}
