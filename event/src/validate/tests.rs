use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn strict(json: &str) -> Result<Transaction, InvalidEvent> {
    parse_transaction(
        json.as_bytes(),
        ParseMode::Strict,
        &Limits::default(),
        now(),
    )
    .map(|t| t.0)
}

fn rejects(json: &str, field: &str, reason_part: &str) {
    let err = strict(json).expect_err(json);
    assert_eq!(err.field, field, "{json}: {err}");
    assert!(
        err.reason.contains(reason_part),
        "{json}: reason `{}` lacks `{reason_part}`",
        err.reason
    );
}

const FULL: &str = r#"{"transaction_id":"t-1","user_id":"u-1","card_id":"c-1","device_id":"d-1",
 "ip":"203.0.113.7","amount":"1234.56","currency":"EUR","merchant_id":"m-1",
 "merchant_category":"5411","channel":"pos","type":"debit",
 "location":{"country":"FR","city":"Paris","lat":48.85,"lon":2.35},
 "timestamp":"2026-11-22T11:59:00+01:00","metadata":{"terminal":"T9"}}"#;

#[test]
fn full_event_parses_exactly() {
    let t = strict(FULL).unwrap();
    assert_eq!(t.amount, Decimal::from_str("1234.56").unwrap());
    assert_eq!(
        t.timestamp,
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 59, 0).unwrap()
    );
    assert_eq!(t.channel, Some(Channel::Pos));
    assert_eq!(t.location.as_ref().unwrap().country, "FR");
    let back: Transaction = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}

#[test]
fn numeric_amounts_keep_their_cents() {
    for (text, want) in [
        ("0.1", "0.1"),
        ("19.99", "19.99"),
        ("1000", "1000"),
        ("0.07", "0.07"),
    ] {
        let json = format!(
            r#"{{"transaction_id":"t","user_id":"u","amount":{text},"currency":"USD","timestamp":"2026-01-01T00:00:00Z"}}"#
        );
        assert_eq!(strict(&json).unwrap().amount.to_string(), want);
    }
}

#[test]
fn malformed_json_names_the_body() {
    rejects("{\"user_id\": ", "body", "EOF");
    rejects("not json", "body", "expected");
    rejects(r#"{"transaction_id":"t"} trailing"#, "body", "trailing");
}

#[test]
fn missing_and_unknown_fields_are_named() {
    rejects(
        r#"{"user_id":"u","amount":1,"currency":"USD","timestamp":"2026-01-01T00:00:00Z"}"#,
        "transaction_id",
        "required",
    );
    rejects(
        r#"{"transaction_id":"t","amount":1,"currency":"USD","timestamp":"2026-01-01T00:00:00Z"}"#,
        "user_id",
        "required",
    );
    rejects(
        r#"{"transaction_id":"t","user_id":"u","amount":1,"currency":"USD","timestamp":"2026-01-01T00:00:00Z","colour":"red"}"#,
        "colour",
        "unknown field",
    );
    rejects(
        r#"{"transaction_id":"t","user_id":"u","amount":1,"currency":"USD","timestamp":"2026-01-01T00:00:00Z","location":{"country":"US","planet":"earth"}}"#,
        "location.planet",
        "unknown field",
    );
}

#[test]
fn bad_amounts_are_refused() {
    let with = |amount: &str| {
        format!(
            r#"{{"transaction_id":"t","user_id":"u","amount":{amount},"currency":"USD","timestamp":"2026-01-01T00:00:00Z"}}"#
        )
    };
    rejects(&with("-5"), "amount", "not be negative");
    rejects(&with("\"-0.01\""), "amount", "not be negative");
    rejects(&with("\"NaN\""), "amount", "not a decimal");
    rejects(&with("NaN"), "body", "expected value");
    rejects(&with("1e300"), "amount", "out of range");
    rejects(&with("\"99999999999999\""), "amount", "must not exceed");
    rejects(&with("true"), "amount", "invalid type");
    rejects(&with("null"), "amount", "required");
}

#[test]
fn zero_amount_authorisations_are_accepted() {
    for zero in ["0", "\"0.00\"", "0.0"] {
        let json = format!(
            r#"{{"transaction_id":"t","user_id":"u","amount":{zero},"currency":"USD","timestamp":"2026-01-01T00:00:00Z"}}"#
        );
        assert_eq!(strict(&json).unwrap().amount, Decimal::ZERO, "{json}");
    }
}

#[test]
fn codes_and_times_are_checked() {
    let base = r#"{"transaction_id":"t","user_id":"u","amount":1,"#;
    rejects(
        &format!(r#"{base}"currency":"ABC","timestamp":"2026-01-01T00:00:00Z"}}"#),
        "currency",
        "ISO 4217",
    );
    rejects(
        &format!(r#"{base}"currency":"USD","timestamp":"2099-01-01T00:00:00Z"}}"#),
        "timestamp",
        "ahead",
    );
    rejects(
        &format!(r#"{base}"currency":"USD","timestamp":"1999-12-31T23:59:59Z"}}"#),
        "timestamp",
        "before 2000",
    );
    rejects(
        &format!(r#"{base}"currency":"USD","timestamp":"yesterday"}}"#),
        "timestamp",
        "RFC 3339",
    );
    rejects(
        &format!(
            r#"{base}"currency":"USD","timestamp":"2026-01-01T00:00:00Z","location":{{"country":"ZZ"}}}}"#
        ),
        "location.country",
        "ISO 3166",
    );
    rejects(
        &format!(
            r#"{base}"currency":"USD","timestamp":"2026-01-01T00:00:00Z","location":{{"country":"US","lat":91,"lon":0}}}}"#
        ),
        "location.lat",
        "between",
    );
    rejects(
        &format!(r#"{base}"currency":"USD","timestamp":"2026-01-01T00:00:00Z","ip":"999.1.1.1"}}"#),
        "ip",
        "not an IP",
    );
    rejects(
        &format!(
            r#"{base}"currency":"USD","timestamp":"2026-01-01T00:00:00Z","channel":"carrier-pigeon"}}"#
        ),
        "channel",
        "unknown variant",
    );
}

#[test]
fn non_utf8_and_huge_payloads_are_refused() {
    let mut bytes = br#"{"transaction_id":"t","user_id":""#.to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes
        .extend_from_slice(br#"","amount":1,"currency":"USD","timestamp":"2026-01-01T00:00:00Z"}"#);
    let err = parse_transaction(&bytes, ParseMode::Strict, &Limits::default(), now()).unwrap_err();
    assert_eq!(err.field, "body");
    assert!(err.reason.contains("UTF-8"));

    let huge = format!(r#"{{"transaction_id":"{}"}}"#, "x".repeat(1 << 20));
    let err = strict(&huge).unwrap_err();
    assert_eq!(err.field, "body");
    assert!(err.reason.contains("limit"));
}

#[test]
fn identifiers_are_bounded() {
    let long = "u".repeat(200);
    rejects(
        &format!(
            r#"{{"transaction_id":"t","user_id":"{long}","amount":1,"currency":"USD","timestamp":"2026-01-01T00:00:00Z"}}"#
        ),
        "user_id",
        "at most",
    );
    rejects(
        r#"{"transaction_id":"","user_id":"u","amount":1,"currency":"USD","timestamp":"2026-01-01T00:00:00Z"}"#,
        "transaction_id",
        "empty",
    );
}

#[test]
fn lenient_mode_assigns_what_is_missing() {
    let (t, assigned) = parse_transaction(
        br#"{"user_id":"u-9","amount":"42.50"}"#,
        ParseMode::Lenient,
        &Limits::default(),
        now(),
    )
    .unwrap();
    assert!(assigned.transaction_id && assigned.timestamp && assigned.currency);
    assert_eq!(t.timestamp, now());
    assert_eq!(t.currency, "USD");
    assert!(!t.transaction_id.is_empty());
    // Strict mode refuses the same minimal event.
    assert_eq!(
        strict(r#"{"user_id":"u-9","amount":"42.50"}"#)
            .unwrap_err()
            .field,
        "transaction_id"
    );
}
