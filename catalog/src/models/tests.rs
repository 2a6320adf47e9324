use super::*;
use sentinel_store::EmbeddedStore;

const SHIPPED: &[u8] = include_bytes!("../../../model/default_model.json");

async fn open(dir: &tempfile::TempDir) -> Catalog {
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    Catalog::open(store, sentinel_engine::PolicyDef::seed(), 300_000)
        .await
        .unwrap()
}

/// A second valid model: the shipped one with a shifted calibration, re-checksummed.
fn other_model() -> (String, Vec<u8>) {
    let mut a = Artifact::from_json(SHIPPED).unwrap();
    a.params.calibration.intercept += 0.25;
    let a = Artifact::new(a.training, a.evaluation, a.params);
    (a.model_id.clone(), a.to_json().into_bytes())
}

fn champion_of(catalog: &Catalog) -> Option<String> {
    catalog
        .policy()
        .models
        .champion
        .as_ref()
        .map(|m| m.id().to_owned())
}

#[tokio::test]
async fn deployments_survive_a_restart_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Artifact::from_json(SHIPPED).unwrap().model_id;
    let (other, other_bytes) = other_model();
    {
        let catalog = open(&dir).await;
        assert_eq!(champion_of(&catalog), None);
        // The start-up seed keeps the policy version.
        let seeded = catalog.seed_model(SHIPPED, "startup").await.unwrap();
        assert_eq!(seeded.as_deref(), Some(shipped.as_str()));
        assert_eq!(catalog.policy().rules.version, 1);
        assert_eq!(champion_of(&catalog).as_deref(), Some(shipped.as_str()));

        catalog.upload_model(&other_bytes, "ann").await.unwrap();
        let version = catalog
            .activate_model(&other, ModelRole::Champion, "ann")
            .await
            .unwrap();
        assert_eq!(version, 2);
        assert_eq!(catalog.policy().rules.version, 2);
        assert_eq!(champion_of(&catalog).as_deref(), Some(other.as_str()));
        // A second seed does not replace a champion.
        assert_eq!(catalog.seed_model(SHIPPED, "startup").await.unwrap(), None);
        catalog
            .activate_model(&shipped, ModelRole::Challenger, "ann")
            .await
            .unwrap();
        let conflict = catalog
            .activate_model(&other, ModelRole::Challenger, "ann")
            .await;
        assert!(matches!(conflict, Err(CatalogError::Conflict(_))));
    }
    let catalog = open(&dir).await;
    assert_eq!(champion_of(&catalog).as_deref(), Some(other.as_str()));
    let policy = catalog.policy();
    let challenger = policy.models.challenger.as_ref().unwrap();
    assert_eq!(challenger.id(), shipped);
    let listed = catalog.models().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .any(|m| m.model_id == other && m.role == Some(ModelRole::Champion)));

    let (back, _) = catalog.rollback_model("ann").await.unwrap();
    assert_eq!(back, shipped);
    assert_eq!(champion_of(&catalog).as_deref(), Some(shipped.as_str()));
    assert!(catalog.policy().models.challenger.is_none());
    assert!(matches!(
        catalog.rollback_model("ann").await,
        Err(CatalogError::Conflict(_))
    ));
}

#[tokio::test]
async fn bad_files_are_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(&dir).await;
    catalog.seed_model(SHIPPED, "startup").await.unwrap();
    let before = champion_of(&catalog);
    let text = std::str::from_utf8(SHIPPED).unwrap();
    let bad_files = [
        SHIPPED[..SHIPPED.len() - 10].to_vec(),
        b"[]".to_vec(),
        text.replacen("\"log_amount\"", "\"ln_amount\"", 1)
            .into_bytes(),
    ];
    for bad in &bad_files {
        match catalog.upload_model(bad, "ann").await {
            Err(CatalogError::Invalid { field, .. }) => assert_eq!(field, "model"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(catalog.models().await.unwrap().len(), 1);
    assert_eq!(champion_of(&catalog), before);
    assert!(matches!(
        catalog
            .activate_model("m-nope", ModelRole::Champion, "ann")
            .await,
        Err(CatalogError::NotFound(_))
    ));
}

#[tokio::test]
async fn rule_tests_see_the_champion_score() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(&dir).await;
    let event: sentinel_event::Transaction = serde_json::from_value(serde_json::json!({
        "transaction_id": "t-1", "user_id": "u", "amount": "20.00", "currency": "EUR",
        "timestamp": "2026-11-20T12:00:00Z", "location": {"country": "FR"}
    }))
    .unwrap();
    let without = catalog
        .test_rule("ml.score >= 0", &event, &[])
        .await
        .unwrap();
    assert!(!without.matches, "no model: ml.score is null");
    catalog.seed_model(SHIPPED, "startup").await.unwrap();
    let with = catalog
        .test_rule("ml.score >= 0", &event, &[])
        .await
        .unwrap();
    assert!(with.matches);
    let (name, value) = &with.values[0];
    assert_eq!(name, "ml.score");
    assert!(matches!(value, sentinel_rules::OwnedValue::Number(s) if (0.0..=1.0).contains(s)));
}
