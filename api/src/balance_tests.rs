//! `GET …/balance` and `PUT …/opening-balance` through the router: the balance comes from
//! the user actor's running total plus the opening balance, never from a scan of the history.

use crate::test_store::WatchedStore;
use crate::tests::{admin, call_as, router_over, test_auth};
use crate::Decider;
use async_trait::async_trait;
use axum::http::StatusCode;
use sentinel_engine::{Ledger, UserView};
use sentinel_event::{DecisionError, Transaction};
use sentinel_store::Stored;
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

fn router(dir: &tempfile::TempDir) -> axum::Router {
    router_over(
        WatchedStore::open(dir, true),
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
