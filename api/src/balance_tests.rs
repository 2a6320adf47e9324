//! `GET …/balance` and `PUT …/opening-balance` through the router: the balance comes from
//! the user actor's running total plus the opening balance, never from a scan of the history.

use crate::tests::{admin, call_as, router_over, test_auth};
use crate::Decider;
use async_trait::async_trait;
use axum::http::StatusCode;
use sentinel_engine::{Ledger, UserView};
use sentinel_event::{Decision, DecisionError, Transaction};
use sentinel_store::{
    DayCursor, EmbeddedStore, RecordGuard, RecordKind, RecordWrite, RestorePoint, Store,
    StoreError, Stored, UserSnapshot, WriteOp, WriteResult,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// A user actor whose running total says `-40.25 EUR` over three transactions.
struct KnownLedger;

#[async_trait]
impl Decider for KnownLedger {
    async fn decide(&self, _: Transaction, _: Instant) -> Result<Stored, DecisionError> {
        Err(DecisionError::Unavailable("not in this test".into()))
    }

    async fn screen(
        &self,
        events: Vec<Transaction>,
    ) -> Vec<Result<sentinel_engine::Screened, DecisionError>> {
        events
            .iter()
            .map(|_| Err(DecisionError::Unavailable("not in this test".into())))
            .collect()
    }

    async fn user_state(&self, _user_id: &str) -> Option<UserView> {
        Some(UserView {
            seq: 4,
            txn_count: 4,
            first_seen: None,
            last_event_time: None,
            last_country: None,
            last_coordinates: None,
            home_country: None,
            countries: vec![],
            known_devices: 0,
            known_cards: 0,
            known_merchants: 0,
            windows: vec![],
            ledger: Some(Ledger {
                totals: [("EUR".to_owned(), "-40.25".parse().unwrap())].into(),
                counted: 3,
            }),
        })
    }
}

/// A store that refuses every read of a user's (or a day's) decision history, so a handler
/// that scans history fails.
struct NoHistoryScans(EmbeddedStore);

fn refused() -> StoreError {
    StoreError::Backend("this test forbids scanning decision history".into())
}

#[async_trait]
impl Store for NoHistoryScans {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        self.0.write_batch(ops).await
    }
    async fn decision(&self, transaction_id: &str) -> Result<Option<Decision>, StoreError> {
        self.0.decision(transaction_id).await
    }
    async fn decisions_for_user(
        &self,
        _: &str,
        _: u64,
        _: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        Err(refused())
    }
    async fn decisions_by_day(
        &self,
        _: u32,
        _: Option<DayCursor>,
        _: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        Err(refused())
    }
    async fn snapshot(&self, user_id: &str) -> Result<Option<UserSnapshot>, StoreError> {
        self.0.snapshot(user_id).await
    }
    async fn restore_point(&self, _: &str, _: usize) -> Result<RestorePoint, StoreError> {
        Err(refused())
    }
    async fn decision_count(&self) -> Result<u64, StoreError> {
        self.0.decision_count().await
    }
    async fn put_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.0.put_records(writes).await
    }
    async fn put_records_if(
        &self,
        guard: RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        self.0.put_records_if(guard, writes).await
    }
    async fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.record(kind, key).await
    }
    async fn scan_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.0.scan_records(kind, prefix, after, limit).await
    }
}

fn router(dir: &tempfile::TempDir) -> axum::Router {
    let store = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
    router_over(
        Arc::new(NoHistoryScans(store)),
        test_auth(),
        Arc::default(),
        true,
        Arc::new(KnownLedger),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_is_the_running_total_plus_the_opening_balance_without_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let auth = admin();
    let (status, body) = call_as(&r, Some(&auth), "GET", "/v1/users/u-1/balance", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["balances"]["EUR"], "-40.25");
    assert_eq!(body["transactions"], 3);

    let put = json!({"currency": "EUR", "amount": "1000.00"});
    let uri = "/v1/users/u-1/opening-balance";
    let (status, body) = call_as(&r, Some(&auth), "PUT", uri, Some(put)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["amount"], "1000.00");
    let (status, body) = call_as(
        &r,
        Some(&auth),
        "PUT",
        uri,
        Some(json!({"currency": "USD", "amount": 5})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, body) = call_as(&r, Some(&auth), "GET", "/v1/users/u-1/balance", None).await;
    assert_eq!(body["balances"]["EUR"], "959.75", "{body}");
    assert_eq!(body["balances"]["USD"], "5", "{body}");
    assert_eq!(body["opening"]["EUR"], "1000.00", "{body}");
    // Another user whose id starts with this one's sees none of it.
    let (_, body) = call_as(&r, Some(&auth), "GET", "/v1/users/u/balance", None).await;
    assert_eq!(body["opening"], json!({}), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_balance_is_validated_audited_once_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let r = router(&dir);
    let auth = admin();
    let uri = "/v1/users/u-1/opening-balance";
    for (body, named) in [
        (json!({"currency": "QQQ", "amount": "1"}), "currency"),
        (json!({"currency": "eur", "amount": "1"}), "currency"),
        (json!({"currency": "EUR", "amount": "ten"}), "amount"),
        (json!({"currency": "EUR", "amount": true}), "amount"),
        (json!({"currency": "EUR"}), "amount"),
        (
            json!({"currency": "EUR", "amount": 1, "as_of": "x"}),
            "as_of",
        ),
    ] {
        let (status, answer) = call_as(&r, Some(&auth), "PUT", uri, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let error = &answer["error"];
        assert!(
            error["field"] == named || error["message"].as_str().unwrap().contains(named),
            "{body}: {answer}"
        );
    }
    let set = json!({"currency": "EUR", "amount": 250.5});
    let (status, first) = call_as(&r, Some(&auth), "PUT", uri, Some(set.clone())).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, again) = call_as(&r, Some(&auth), "PUT", uri, Some(set)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(first, again, "a repeat changes nothing");
    let changed = json!({"currency": "EUR", "amount": "300"});
    let (status, _) = call_as(&r, Some(&auth), "PUT", uri, Some(changed)).await;
    assert_eq!(status, StatusCode::OK);

    let (_, audit) = call_as(
        &r,
        Some(&auth),
        "GET",
        "/v1/audit?entity=user/u-1/opening-balance/EUR",
        None,
    )
    .await;
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        2,
        "one entry per change, none for the repeat: {audit}"
    );
    assert_eq!(entries[0]["action"], "opening_balance.set");
    assert_eq!(entries[0]["principal"], "test-admin");
    assert_eq!(entries[1]["before"]["amount"], "250.5");
    assert_eq!(entries[1]["after"]["amount"], "300");
}
