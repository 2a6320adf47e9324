//! Amounts compared across currencies: the seed policy's amount rules and the user's profile
//! figures read the base-currency amount the node recorded on the event.

use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use sentinel_engine::{PolicyDef, UserState};
use sentinel_event::{BaseAmount, Decision, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// An event as the node stores it: converted at the example table's rate for its currency.
fn event(id: &str, amount: &str, currency: &str, rate: &str, minute: u32) -> Arc<Transaction> {
    let amount = dec(amount);
    let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    Arc::new(Transaction {
        transaction_id: id.into(),
        user_id: "u-fx".into(),
        card_id: None,
        device_id: None,
        ip: None,
        amount,
        currency: currency.into(),
        merchant_id: None,
        merchant_name: None,
        merchant_category: None,
        channel: None,
        kind: None,
        location: None,
        timestamp: Utc.with_ymd_and_hms(2026, 12, 1, 12, minute, 0).unwrap(),
        metadata: None,
        base: BaseAmount::convert(amount, dec(rate), "USD", date),
    })
}

fn fired(decision: &Decision) -> Vec<&str> {
    decision.reasons.iter().map(|r| r.rule.as_str()).collect()
}

#[test]
fn large_amount_compares_in_the_base_currency() {
    let policy = PolicyDef::seed().compile().unwrap();
    let mut state = UserState::default();
    let mut decide = |e| state.decide(e, &policy, 300_000, Instant::now());
    // JPY 60,528 is about USD 400: over the raw threshold, not over the base one.
    let yen = decide(event("t-jpy", "60528", "JPY", "0.00661", 0));
    assert!(!fired(&yen).contains(&"large_amount"), "{:?}", yen.reasons);
    let rupees = decide(event("t-inr", "38530", "INR", "0.0118", 1));
    assert!(
        !fired(&rupees).contains(&"large_amount"),
        "{:?}",
        rupees.reasons
    );
    let dollars = decide(event("t-usd", "12000", "USD", "1", 2));
    assert!(
        fired(&dollars).contains(&"large_amount"),
        "{:?}",
        dollars.reasons
    );
    let seen = &dollars.reasons[0].values;
    assert!(
        seen.iter().any(|(name, _)| name == "amount_base"),
        "{seen:?}"
    );
}

#[test]
fn profile_figures_and_window_sums_are_in_the_base_currency() {
    let policy = sentinel_engine::PolicyDef {
        rules: vec![serde_json::from_value(serde_json::json!({
            "name": "avg_over_500",
            "expression": "user.avg_amount_30d > 500 or sum(user, 1h) > 2000",
            "action": "review"
        }))
        .unwrap()],
        ..PolicyDef::seed()
    }
    .compile()
    .unwrap();
    let mut state = UserState::default();
    let mut decide = |e| state.decide(e, &policy, 300_000, Instant::now());
    // Three yen payments of about USD 400 each: raw, the average would be 60,528 and the
    // hour's sum 181,584; in USD neither threshold is crossed.
    for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
        let d = decide(event(id, "60528", "JPY", "0.00661", i as u32));
        assert!(d.reasons.is_empty(), "{id}: {:?}", d.reasons);
    }
    // A raw amount with no rate (`unknown = "raw"`) counts as recorded.
    let mut raw = (*event("d", "1", "XOF", "1", 5)).clone();
    raw.base = Some(BaseAmount::unconverted(raw.amount, "USD"));
    let d = decide(Arc::new(raw));
    assert!(d.reasons.is_empty(), "{:?}", d.reasons);
    assert_eq!(d.event.amount_base(), dec("1"));
}
