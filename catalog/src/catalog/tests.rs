use super::*;
use chrono::Duration;
use rust_decimal::Decimal;
use sentinel_rules::Action;
use sentinel_store::EmbeddedStore;
use std::collections::BTreeSet;
use std::str::FromStr;

async fn open(dir: &tempfile::TempDir) -> Catalog {
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    Catalog::open(store, PolicyDef::seed(), 300_000)
        .await
        .unwrap()
}

fn change(name: &str, expression: &str) -> RuleChange {
    RuleChange {
        name: name.into(),
        expression: expression.into(),
        action: Action::Decline,
        priority: 5,
        mode: Mode::Active,
        description: String::new(),
    }
}

fn txn(amount: &str, country: &str, minutes: i64) -> Transaction {
    let mut t: Transaction = serde_json::from_value(serde_json::json!({
        "transaction_id": format!("t-{minutes}"), "user_id": "u", "amount": amount,
        "currency": "EUR", "timestamp": "2026-11-20T12:00:00Z",
        "location": {"country": country}
    }))
    .unwrap();
    t.timestamp += Duration::minutes(minutes);
    t.amount = Decimal::from_str(amount).unwrap();
    t
}

#[tokio::test]
async fn seeds_an_empty_store_once() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(&dir).await;
    assert_eq!(catalog.policy().rules.version, 1);
    assert_eq!(catalog.rules(&RuleFilter::default()).await.len(), 8);
    drop(catalog);
    let again = open(&dir).await;
    assert_eq!(again.policy().rules.version, 1);
    assert_eq!(again.rules(&RuleFilter::default()).await.len(), 8);
}

#[tokio::test]
async fn every_change_is_a_new_version_and_a_new_policy() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(&dir).await;
    let mut updates = catalog.subscribe();
    let created = catalog
        .create_rule(change("big", "amount > 500"), "ana")
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert!(updates.has_changed().unwrap());
    assert_eq!(updates.borrow_and_update().rules.version, 2);

    let updated = catalog
        .update_rule(&created.id, change("big", "amount > 900"), "ana")
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    let deleted = catalog.delete_rule(&created.id, "bob").await.unwrap();
    assert!(deleted.deleted);
    assert!(catalog
        .policy()
        .rules
        .rules()
        .iter()
        .all(|r| r.def.name != "big"));
    let restored = catalog.rollback_rule(&created.id, 1, "bob").await.unwrap();
    assert_eq!(
        (restored.version, restored.expression.as_str()),
        (4, "amount > 500")
    );
    assert_eq!(catalog.policy().rules.version, 5);

    let versions = catalog.rule_versions(&created.id).await.unwrap();
    let numbers: Vec<u32> = versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);

    let audit = catalog
        .audit(Some(&format!("rule/{}", created.id)), None, 100)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|(_, e)| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["rule.create", "rule.update", "rule.delete", "rule.rollback"]
    );
    assert_eq!(audit[3].1.principal, "bob");
    assert!(audit[0].1.before.is_none() && audit[1].1.before.is_some());

    // Everything survives a restart.
    drop(catalog);
    let again = open(&dir).await;
    assert_eq!(again.policy().rules.version, 5);
    assert_eq!(again.rule(&created.id).await.unwrap().version, 4);
}

#[tokio::test]
async fn invalid_rules_are_never_stored_or_published() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(&dir).await;
    match catalog
        .create_rule(change("bad", "amount >\n  \"x\""), "ana")
        .await
    {
        Err(CatalogError::Invalid {
            field,
            line,
            column,
            ..
        }) => {
            assert_eq!(field, "expression");
            assert_eq!((line, column), (Some(2), Some(3)));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        catalog
            .create_rule(change("large_amount", "amount > 1"), "ana")
            .await,
        Err(CatalogError::Conflict(_))
    ));
    assert!(matches!(
        catalog
            .create_rule(change("nolist", "ip in @nope"), "ana")
            .await,
        Err(CatalogError::Invalid { .. })
    ));
    assert_eq!(catalog.policy().rules.version, 1);
    assert_eq!(catalog.rules(&RuleFilter::default()).await.len(), 8);
    assert!(catalog.audit(None, None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn lists_change_policies_and_cannot_vanish_under_a_rule() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(&dir).await;
    let item = |v: &str| ListItem {
        value: v.into(),
        expires_at: None,
    };
    catalog
        .put_list(
            "blocked_ips",
            "".into(),
            vec![item("10.0.0.1")],
            true,
            "ana",
        )
        .await
        .unwrap();
    catalog
        .create_rule(change("blocked", "ip in @blocked_ips"), "ana")
        .await
        .unwrap();
    assert!(matches!(
        catalog.delete_list("blocked_ips", "ana").await,
        Err(CatalogError::Conflict(_))
    ));
    assert!(matches!(
        catalog
            .put_list("blocked_ips", "".into(), vec![], true, "ana")
            .await,
        Err(CatalogError::Conflict(_))
    ));
    assert!(matches!(
        catalog
            .put_list("Bad Name", "".into(), vec![], true, "ana")
            .await,
        Err(CatalogError::Invalid { .. })
    ));
    assert!(catalog.policy().lists.contains("blocked_ips", "10.0.0.1"));

    // An item that expires stops counting once the catalogue notices (times are explicit, so
    // a slow machine cannot expire it early).
    let soon = Utc::now() + Duration::hours(1);
    catalog
        .put_list(
            "blocked_ips",
            "".into(),
            vec![
                item("10.0.0.1"),
                ListItem {
                    value: "10.0.0.2".into(),
                    expires_at: Some(soon),
                },
            ],
            false,
            "ana",
        )
        .await
        .unwrap();
    assert!(catalog.policy().lists.contains("blocked_ips", "10.0.0.2"));
    let before = soon - Duration::seconds(1);
    assert_eq!(catalog.expire_list_items(before).await.unwrap(), None);
    let later = soon + Duration::seconds(1);
    assert!(catalog.expire_list_items(later).await.unwrap().is_some());
    assert!(!catalog.policy().lists.contains("blocked_ips", "10.0.0.2"));
    assert!(catalog.policy().lists.contains("blocked_ips", "10.0.0.1"));
}

#[tokio::test]
async fn rule_tests_show_every_value_with_a_history() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(&dir).await;
    let history = [txn("40", "FR", 0), txn("60", "FR", 10)];
    let test = catalog
        .test_rule(
            "amount > 5 * user.avg_amount_30d and location.country != user.last_country",
            &txn("400", "US", 20),
            &history,
        )
        .await
        .unwrap();
    assert!(test.matches);
    let labels: Vec<&str> = test.values.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "amount",
            "user.avg_amount_30d",
            "location.country",
            "user.last_country"
        ]
    );
    let quiet = catalog
        .test_rule("amount > 1000", &txn("5", "FR", 0), &[])
        .await
        .unwrap();
    assert!(!quiet.matches);
    assert!(matches!(
        catalog.test_rule("amount >", &txn("5", "FR", 0), &[]).await,
        Err(CatalogError::Invalid { line: Some(1), .. })
    ));
}

#[tokio::test]
async fn labels_need_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = open(&dir).await;
    assert!(matches!(
        catalog
            .label(
                crate::LabelInput::new("nope", crate::LabelValue::Fraud),
                "ana"
            )
            .await,
        Err(CatalogError::NotFound(_))
    ));
}

#[tokio::test]
async fn reload_picks_up_a_version_another_catalogue_published_to_the_shared_store() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let writer = Catalog::open(Arc::clone(&store), PolicyDef::seed(), 300_000)
        .await
        .unwrap();
    let reader = Catalog::open(Arc::clone(&store), PolicyDef::seed(), 300_000)
        .await
        .unwrap();
    let mut published = reader.subscribe();
    published.borrow_and_update();

    assert_eq!(reader.reload().await.unwrap(), 1, "nothing newer yet");
    assert!(
        !published.has_changed().unwrap(),
        "no echo without a change"
    );

    writer
        .create_rule(change("big", "amount > 500"), "ana")
        .await
        .unwrap();
    writer
        .put_list("vip", String::new(), Vec::new(), true, "ana")
        .await
        .unwrap();
    assert_eq!(reader.reload().await.unwrap(), 3);
    assert!(published.has_changed().unwrap());
    let policy = reader.policy();
    assert_eq!(policy.rules.version, 3);
    assert!(reader.list("vip").await.is_ok());
    assert!(reader
        .rules(&RuleFilter::default())
        .await
        .iter()
        .any(|r| r.name == "big"));
}

/// Two catalogues over one store, as two nodes sharing it.
async fn two_nodes(dir: &tempfile::TempDir) -> (Arc<Catalog>, Arc<Catalog>) {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
    let open = || Catalog::open(Arc::clone(&store), PolicyDef::seed(), 300_000);
    (
        Arc::new(open().await.unwrap()),
        Arc::new(open().await.unwrap()),
    )
}

#[tokio::test]
async fn a_node_behind_the_shared_store_publishes_on_top_of_the_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&dir).await;
    a.create_rule(change("from_a", "amount > 100"), "ana")
        .await
        .unwrap();
    // b has not reloaded: its change loses version 2 to a's, loads it, and becomes version 3.
    b.create_rule(change("from_b", "amount > 200"), "bob")
        .await
        .unwrap();
    assert_eq!(a.policy().rules.version, 2);
    assert_eq!(b.policy().rules.version, 3);
    let names: BTreeSet<String> = b
        .rules(&RuleFilter::default())
        .await
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert!(
        names.contains("from_a") && names.contains("from_b"),
        "{names:?}"
    );
    // a's checks run again on top of b's version: the name b just took is refused.
    let taken = a.create_rule(change("from_b", "amount > 300"), "ana").await;
    assert!(
        matches!(&taken, Err(CatalogError::Conflict(m)) if m.contains("from_b")),
        "{taken:?}"
    );
    assert_eq!(a.policy().rules.version, 3, "a caught up while retrying");
}

#[tokio::test]
async fn concurrent_changes_on_two_nodes_get_distinct_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&dir).await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let node = Arc::clone(if i % 2 == 0 { &a } else { &b });
            tokio::spawn(async move {
                node.create_rule(change(&format!("r{i}"), "amount > 1"), "ana")
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            // Losing every retry is allowed, and then nothing was written.
            Err(CatalogError::Conflict(m)) => assert!(m.contains("retry"), "{m}"),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(created > 0);
    let audit = a.audit(None, None, 1_000).await.unwrap();
    let versions: Vec<u64> = audit
        .iter()
        .filter(|(_, e)| e.action == "rule.create")
        .map(|(_, e)| e.policy_version)
        .collect();
    let distinct: BTreeSet<u64> = versions.iter().copied().collect();
    assert_eq!(versions.len(), created, "one audit entry per created rule");
    assert_eq!(
        distinct.len(),
        created,
        "no version published twice: {versions:?}"
    );
    assert_eq!(
        distinct,
        (2..2 + created as u64).collect(),
        "no version skipped"
    );
    a.reload().await.unwrap();
    b.reload().await.unwrap();
    for node in [&a, &b] {
        assert_eq!(node.policy().rules.version, 1 + created as u64);
        let names = node.rules(&RuleFilter::default()).await;
        assert_eq!(
            names.len(),
            8 + created,
            "the seed's rules and every created one"
        );
    }
}
