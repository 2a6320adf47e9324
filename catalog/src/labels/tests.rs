//! Labels with their own time, one by one and in batches, over a real embedded store.

use super::*;
use sentinel_engine::{PolicyDef, UserState};
use sentinel_event::Transaction;
use sentinel_store::{EmbeddedStore, Store, WriteOp};
use std::sync::Arc;
use std::time::Instant;

async fn catalog_with(decisions: &[(&str, DateTime<Utc>)]) -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let catalog = Catalog::open(Arc::clone(&store), PolicyDef::seed(), 300_000)
        .await
        .unwrap();
    for (id, at) in decisions {
        let event: Transaction = serde_json::from_value(serde_json::json!({
            "transaction_id": id, "user_id": "u", "amount": "80", "currency": "EUR",
            "timestamp": at.to_rfc3339(),
        }))
        .unwrap();
        let d = UserState::default().decide(Arc::new(event), &catalog.policy(), 0, Instant::now());
        store
            .write_batch(vec![WriteOp::Decision(Arc::new(d))])
            .await
            .unwrap();
    }
    (dir, catalog)
}

fn chargeback(id: &str, at: DateTime<Utc>) -> LabelInput {
    LabelInput {
        labelled_at: Some(at),
        source: LabelSource::Chargeback,
        scenario: Some("compromised_card".into()),
        ..LabelInput::new(id, LabelValue::Fraud)
    }
}

#[tokio::test]
async fn a_label_keeps_its_own_time_within_the_transaction_and_now() {
    let paid = Utc::now() - Duration::days(10);
    let (_dir, catalog) = catalog_with(&[("t-1", paid)]).await;
    let reported = paid + Duration::days(3);
    let label = catalog
        .label(chargeback("t-1", reported), "ops")
        .await
        .unwrap();
    assert_eq!(label.labelled_at, reported);
    assert_eq!(label.source, LabelSource::Chargeback);
    assert_eq!(catalog.label_of("t-1").await.unwrap(), Some(label));

    let field = |e: CatalogError| match e {
        CatalogError::Invalid { field, .. } => field,
        other => panic!("{other}"),
    };
    let before = catalog
        .label(chargeback("t-1", paid - Duration::seconds(1)), "ops")
        .await
        .unwrap_err();
    assert_eq!(field(before), "labelled_at");
    let future = catalog
        .label(chargeback("t-1", Utc::now() + Duration::hours(1)), "ops")
        .await
        .unwrap_err();
    assert_eq!(field(future), "labelled_at");
    let mut long = chargeback("t-1", reported);
    long.scenario = Some("x".repeat(65));
    assert_eq!(
        field(catalog.label(long, "ops").await.unwrap_err()),
        "scenario"
    );
    assert!(matches!(
        catalog.label(chargeback("nope", reported), "ops").await,
        Err(CatalogError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_batch_stores_good_items_reports_bad_ones_and_repeats_change_nothing() {
    let paid = Utc::now() - Duration::days(10);
    let (_dir, catalog) = catalog_with(&[("t-1", paid), ("t-2", paid)]).await;
    let batch = vec![
        chargeback("t-1", paid + Duration::days(2)),
        chargeback("missing", paid + Duration::days(2)),
        chargeback("t-2", paid - Duration::days(1)),
        // The same transaction twice: the later report wins.
        chargeback("t-2", paid + Duration::days(4)),
        chargeback("t-2", paid + Duration::days(3)),
    ];
    let outcomes = catalog.label_batch(batch.clone(), "import").await.unwrap();
    let status: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            LabelOutcome::Stored { .. } => "stored",
            LabelOutcome::Unchanged { .. } => "unchanged",
            LabelOutcome::Rejected { .. } => "rejected",
        })
        .collect();
    assert_eq!(
        status,
        ["stored", "rejected", "rejected", "stored", "unchanged"]
    );
    assert!(matches!(
        &outcomes[1],
        LabelOutcome::Rejected { field, .. } if field == "transaction_id"
    ));
    let t2 = catalog.label_of("t-2").await.unwrap().unwrap();
    assert_eq!(t2.labelled_at, paid + Duration::days(4));

    // The same batch again: nothing new.
    let again = catalog.label_batch(batch, "import").await.unwrap();
    assert!(!again
        .iter()
        .any(|o| matches!(o, LabelOutcome::Stored { .. })));

    let too_many = vec![chargeback("t-1", paid); MAX_LABEL_BATCH + 1];
    assert!(catalog.label_batch(too_many, "import").await.is_err());
}

#[test]
fn labels_stored_before_label_times_existed_still_read() {
    let old = r#"{"transaction_id":"t","label":"fraud","note":"","at":"2026-11-01T10:00:00Z","by":"ana"}"#;
    let label: Label = serde_json::from_str(old).unwrap();
    assert_eq!(label.labelled_at.to_rfc3339(), "2026-11-01T10:00:00+00:00");
    assert_eq!(label.source, LabelSource::Analyst);
}

#[test]
fn a_label_file_row_reads_like_the_api_and_names_a_bad_field() {
    let row = |json: serde_json::Value| serde_json::from_value::<LabelRow>(json).unwrap();
    let input = row(serde_json::json!({"transaction_id": "t1", "label": "1"}))
        .into_input()
        .unwrap();
    assert_eq!(input.label, LabelValue::Fraud);
    assert_eq!(input.source, LabelSource::Chargeback);
    assert_eq!((input.labelled_at, input.scenario), (None, None));
    let input = row(serde_json::json!({"transaction_id": "t2", "label": "Legit",
        "labelled_at": "2026-11-02T10:00:00Z", "source": "analyst", "scenario": "", "note": "ok"}))
    .into_input()
    .unwrap();
    assert_eq!(input.label, LabelValue::Legit);
    assert_eq!(input.source, LabelSource::Analyst);
    assert_eq!(
        input.labelled_at,
        Some("2026-11-02T10:00:00Z".parse().unwrap())
    );
    assert_eq!((input.scenario, input.note.as_str()), (None, "ok"));
    for (json, field) in [
        (
            serde_json::json!({"transaction_id": "t", "label": "maybe"}),
            "label",
        ),
        (
            serde_json::json!({"transaction_id": "t", "label": "fraud", "labelled_at": "yesterday"}),
            "labelled_at",
        ),
        (
            serde_json::json!({"transaction_id": "t", "label": "fraud", "source": "bank"}),
            "source",
        ),
    ] {
        assert_eq!(row(json).into_input().unwrap_err().0, field);
    }
}
