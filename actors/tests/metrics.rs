//! The user actors' metrics count what happened, read through a real Prometheus recorder.
//!
//! The actors keep their series as handles taken on first use, so the recorder is installed
//! before anything is scored, and this file is its own test binary with one test: no other
//! test's actors share its counters.

use chrono::{TimeZone, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rust_decimal::Decimal;
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::PolicyDef;
use sentinel_event::Transaction;
use sentinel_store::conformance::decision;
use sentinel_store::{EmbeddedStore, Store, WriteOp, Writer, WriterConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The value of the series `series` (name and labels, as rendered) in `text`.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .unwrap()
}

fn restores(metrics: &PrometheusHandle, kind: &str) -> f64 {
    let series = format!("sentinel_user_restores_total{{kind=\"{kind}\"}}");
    value(&metrics.render(), &series)
}

fn live(metrics: &PrometheusHandle) -> f64 {
    value(&metrics.render(), "sentinel_user_actors_live")
}

fn event(id: &str, user: &str, minute: u32) -> Arc<Transaction> {
    Arc::new(Transaction {
        transaction_id: id.into(),
        user_id: user.into(),
        card_id: Some(format!("card-{user}")),
        device_id: Some(format!("dev-{user}")),
        ip: None,
        amount: Decimal::from(25),
        currency: "EUR".into(),
        merchant_id: Some("m-1".into()),
        merchant_name: None,
        merchant_category: None,
        channel: None,
        kind: None,
        location: None,
        timestamp: Utc.with_ymd_and_hms(2026, 11, 22, 11, minute, 0).unwrap(),
        metadata: None,
        base: None,
    })
}

/// Live actors go up and down with spawns and stops; each restore is counted under what the
/// store held (nothing, a snapshot, decisions to replay) or as parked; each entity lookup is
/// timed; the parked states' gauges follow them.
#[tokio::test]
async fn user_actor_series_count_spawns_stops_restores_and_lookups() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
    sentinel_actors::metrics::describe();

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    // A user with a stored decision and no snapshot: its actor replays the decision.
    let replayed = decision("r-0", "replayed", 1, 1);
    let ops = vec![WriteOp::Decision(Arc::new(replayed))];
    store.write_batch(ops).await.unwrap();
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    // The seed policy counts devices' distinct users, so every event here is looked up.
    let policy = Arc::new(PolicyDef::seed().compile().unwrap());
    let config = ScorerConfig {
        shards: 2,
        passivate_after: Duration::from_secs(3600),
        // Every passivation snapshots, so a passivated user comes back from a snapshot.
        passivation_snapshot_after: 1,
        ..ScorerConfig::default()
    };
    let scorer = Scorer::start(writer, policy, config).await.unwrap();
    let score = |id: &str, user: &str, minute: u32| {
        let event = event(id, user, minute);
        let scorer = &scorer;
        async move { scorer.score(event, Instant::now()).await.unwrap() }
    };
    assert_eq!(live(&metrics), 0.0);

    score("a-1", "a", 10).await;
    score("b-1", "b", 10).await;
    assert_eq!(restores(&metrics, "new"), 2.0);
    assert_eq!(live(&metrics), 2.0);

    assert_eq!(scorer.passivate_all().await, 2);
    assert_eq!(live(&metrics), 0.0);
    let text = metrics.render();
    assert_eq!(value(&text, "sentinel_user_actor_passivations_total"), 2.0);

    score("a-2", "a", 11).await;
    assert_eq!(restores(&metrics, "snapshot"), 1.0);
    score("r-1", "replayed", 12).await;
    assert_eq!(restores(&metrics, "replay"), 1.0);
    assert_eq!(restores(&metrics, "new"), 2.0, "no user counted twice");
    assert_eq!(live(&metrics), 2.0);

    let text = metrics.render();
    let lookups = value(&text, "sentinel_entity_lookup_duration_seconds_count");
    assert_eq!(lookups, 4.0, "one entity lookup per event");
    scorer.shutdown().await;

    // One live actor: each new user parks the last one's state, which the next start takes.
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    let policy = Arc::new(PolicyDef::seed().compile().unwrap());
    let config = ScorerConfig {
        shards: 1,
        max_live_users: 1,
        ..config
    };
    let scorer = Scorer::start(writer, policy, config).await.unwrap();
    let parked = |metrics: &PrometheusHandle| {
        let text = metrics.render();
        let states = value(&text, "sentinel_user_states_parked");
        (states, value(&text, "sentinel_user_states_parked_bytes"))
    };
    assert_eq!(parked(&metrics), (0.0, 0.0));
    scorer
        .score(event("p-1", "p", 20), Instant::now())
        .await
        .unwrap();
    scorer
        .score(event("q-1", "q", 20), Instant::now())
        .await
        .unwrap();
    scorer
        .score(event("p-2", "p", 21), Instant::now())
        .await
        .unwrap();
    assert_eq!(
        restores(&metrics, "parked"),
        1.0,
        "p came back from its parked state"
    );
    // q is passivated as p comes back, and parked once its actor has stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while parked(&metrics).0 < 1.0 {
        assert!(Instant::now() < deadline, "q was never parked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (states, bytes) = parked(&metrics);
    assert_eq!(states, 1.0, "only q is parked");
    assert!(bytes > 100.0, "{bytes} bytes parked");
    scorer.shutdown().await;
    assert_eq!(parked(&metrics), (0.0, 0.0), "forgotten at shutdown");
}
