//! A history decided live by the user actors, replayed by backtests.

use super::*;
use crate::{Candidate, RuleChange};
use sentinel_actors::{Scorer, ScorerConfig};
use sentinel_engine::PolicyDef;
use sentinel_event::Transaction;
use sentinel_rules::{Action, Mode};
use sentinel_store::{EmbeddedStore, Writer, WriterConfig};
use std::time::Duration as StdDuration;

struct NoProgress;
impl Progress for NoProgress {
    fn update(&self, _: u64, _: u64) {}
}

fn txn(id: String, user: &str, amount: u32, at: DateTime<Utc>, country: &str) -> Transaction {
    serde_json::from_value(serde_json::json!({
        "transaction_id": id, "user_id": user, "amount": amount.to_string(), "currency": "EUR",
        "timestamp": at.to_rfc3339(), "location": {"country": country}, "device_id": format!("d-{user}")
    }))
    .unwrap()
}

/// 20 users × 15 events over the last hours; every fifth user has a velocity burst and a
/// trip abroad, every user a large purchase at the end.
async fn history(store: &Arc<dyn Store>, catalog: &Catalog) -> (DateTime<Utc>, Vec<Decision>) {
    let writer = Writer::start(Arc::clone(store), WriterConfig::default());
    let config = ScorerConfig {
        shards: 2,
        passivate_after: StdDuration::from_secs(60),
        lateness: StdDuration::from_secs(300),
        snapshot_every: 5,
        ..ScorerConfig::default()
    };
    let scorer = Scorer::start(writer, catalog.policy(), config)
        .await
        .unwrap();
    let start = Utc::now() - Duration::hours(6);
    let mut decided = Vec::new();
    for u in 0..20 {
        let user = format!("user-{u}");
        let mut at = start;
        for i in 0..15 {
            let burst = u % 5 == 0 && (1..13).contains(&i);
            at += if burst {
                Duration::seconds(20)
            } else {
                Duration::minutes(15)
            };
            let country = if u % 5 == 0 && i == 13 { "US" } else { "FR" };
            let amount = if i == 14 { 900 } else { 40 + i };
            let t = txn(format!("{user}-{i}"), &user, amount, at, country);
            let stored = scorer.score(Arc::new(t), Instant::now()).await.unwrap();
            decided.push((*stored.decision).clone());
        }
    }
    scorer.shutdown().await;
    (start, decided)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_under_the_live_policy_reproduces_every_decision() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let catalog = Catalog::open(Arc::clone(&store), PolicyDef::seed(), 300_000)
        .await
        .unwrap();
    let (start, live) = history(&store, &catalog).await;

    let mut live_hits: BTreeMap<String, u64> = BTreeMap::new();
    for d in &live {
        for r in &d.reasons {
            *live_hits.entry(r.rule.clone()).or_default() += 1;
        }
    }
    assert!(
        live_hits.len() >= 3,
        "the history should exercise several rules: {live_hits:?}"
    );

    // Label a few: the flagged burst events as fraud, a normal one as legit.
    for d in live
        .iter()
        .filter(|d| d.outcome != Outcome::Approve)
        .take(3)
    {
        catalog
            .label(
                crate::LabelInput::new(&d.transaction_id, LabelValue::Fraud),
                "ana",
            )
            .await
            .unwrap();
    }
    catalog
        .label(crate::LabelInput::new("user-1-0", LabelValue::Legit), "ana")
        .await
        .unwrap();

    let range = BacktestRange {
        from: start,
        until: Utc::now() + Duration::hours(1),
        filter: BacktestFilter::default(),
    };
    let policy = catalog.candidate(Candidate::Current).await.unwrap();
    let report = run(&store, &catalog, &policy, &range, 300_000, &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.events, 300);
    assert_eq!(report.changed, 0, "{report:?}");
    assert_eq!(report.hits, live_hits);
    assert_eq!(report.labelled, 4);
    let quality = report.would_be.unwrap();
    assert_eq!(
        (
            quality.true_positives,
            quality.false_positives,
            quality.false_negatives
        ),
        (3, 0, 0)
    );
    assert_eq!(report.live, report.would_be);

    // A candidate rule: exactly the twenty final 900 purchases match it.
    let candidate = Candidate::Rule(RuleChange {
        name: "over_500".into(),
        expression: "amount > 500".into(),
        action: Action::Decline,
        priority: 1,
        mode: Mode::Active,
        description: String::new(),
    });
    let policy = catalog.candidate(candidate).await.unwrap();
    let report = run(&store, &catalog, &policy, &range, 300_000, &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.hits["over_500"], 20);
    let to_decline: u64 = report
        .outcomes
        .iter()
        .filter(|o| o.to == Outcome::Decline)
        .map(|o| o.count)
        .sum();
    assert!(to_decline >= 20);

    // Filters and ranges narrow what counts, not what is replayed.
    let only_one = BacktestRange {
        filter: BacktestFilter {
            user_id: Some("user-3".into()),
            ..BacktestFilter::default()
        },
        ..range.clone()
    };
    let report = run(&store, &catalog, &policy, &only_one, 300_000, &NoProgress)
        .await
        .unwrap();
    assert_eq!((report.events, report.replayed), (15, 15));
    let bad = BacktestRange {
        until: range.from,
        ..range
    };
    assert!(run(&store, &catalog, &policy, &bad, 300_000, &NoProgress)
        .await
        .is_err());
}
