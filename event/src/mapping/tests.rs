use super::*;
use crate::{parse_transaction, Limits, MessageOrigin, ParseMode, Transaction};
use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn config(toml_text: &str) -> MappingConfig {
    toml::from_str(toml_text).unwrap()
}

fn limits(toml_text: &str) -> Limits {
    Limits {
        mapping: config(toml_text).compile().unwrap().map(Arc::new),
        ..Limits::default()
    }
}

fn parse(limits: &Limits, json: &str, mode: ParseMode<'_>) -> Result<Transaction, InvalidEvent> {
    parse_transaction(json.as_bytes(), mode, limits, now()).map(|t| t.0)
}

fn compile_error(toml_text: &str) -> MappingError {
    config(toml_text).compile().expect_err(toml_text)
}

/// Seed document 004's curl payload, byte for byte.
const SEED_004: &str = r#"{"user_id": "user-ring-1", "card_id": "card-ring-1", "device_id": "device-shared-123", "amount": 150.00, "merchant": "Online Store"}"#;

/// Seed document 003's transactions carry `account_id` (the user), `transaction_type`,
/// `ip_address` and a text `location`; we do not have that document, so this payload is
/// representative: exactly those field names, plus amount, currency and timestamp.
const SEED_003: &str = r#"{"transaction_id": "txn-003-1", "account_id": "acct-42", "amount": 2500.00, "currency": "USD", "timestamp": "2026-11-22T11:00:00Z", "transaction_type": "transfer", "ip_address": "198.51.100.7", "location": "New York, US"}"#;

const SEED_003_MAPPING: &str = r#"
unknown_fields = "reject"
[fields]
account_id = "user_id"
ip_address = "ip"
transaction_type = "metadata.transaction_type"
"#;

#[test]
fn no_settings_means_no_mapping() {
    assert_eq!(MappingConfig::default().compile().unwrap(), None);
    assert!(config("assign_missing = true").compile().unwrap().is_some());
    assert!(config("unknown_fields = \"metadata\"")
        .compile()
        .unwrap()
        .is_some());
}

#[test]
fn aliases_and_a_text_location_read_seed_003() {
    let limits = limits(SEED_003_MAPPING);
    let t = parse(&limits, SEED_003, ParseMode::Strict).unwrap();
    assert_eq!(t.user_id, "acct-42");
    assert_eq!(t.ip.as_deref(), Some("198.51.100.7"));
    let location = t.location.unwrap();
    assert_eq!(location.country, "US");
    assert_eq!(location.city.as_deref(), Some("New York"));
    assert_eq!(t.metadata.unwrap()["transaction_type"], "transfer");
    // Without the mapping the same payload is refused, naming the first unknown field.
    let err = parse(&Limits::default(), SEED_003, ParseMode::Strict).unwrap_err();
    assert_eq!(err.field, "account_id", "{err}");
}

#[test]
fn the_seed_004_payload_needs_no_rewriting() {
    // Over HTTP even without a mapping: `merchant` is read as `merchant_name`.
    let t = parse(&Limits::default(), SEED_004, ParseMode::Lenient).unwrap();
    assert_eq!(t.merchant_name.as_deref(), Some("Online Store"));
    let limits = limits("assign_missing = true");
    let t = parse(&limits, SEED_004, ParseMode::Lenient).unwrap();
    assert_eq!(t.merchant_name.as_deref(), Some("Online Store"));
    assert_eq!(t.amount.to_string(), "150");
    // Kafka: the id comes from the message's position, the time from the message.
    let origin = MessageOrigin {
        topic: "transactions",
        partition: 3,
        offset: 17,
        timestamp_ms: Some(now().timestamp_millis() - 1_000),
    };
    let t = parse(&limits, SEED_004, ParseMode::Message(origin)).unwrap();
    assert_eq!(t.transaction_id, "transactions:3:17");
    assert_eq!(
        t.timestamp.timestamp_millis(),
        now().timestamp_millis() - 1_000
    );
    assert_eq!(t.currency, "USD");
    // Without `assign_missing` a Kafka message must carry its id.
    let strict = Limits::default();
    let err = parse(&strict, SEED_004, ParseMode::Message(origin)).unwrap_err();
    assert_eq!(err.field, "transaction_id");
}

#[test]
fn json_paths_reach_into_nested_objects() {
    let limits = limits(
        r#"
[fields]
"payer.id" = "user_id"
"payer.device" = "device_id"
"geo.cc" = "location.country"
"geo.town" = "location.city"
"#,
    );
    let t = parse(
        &limits,
        r#"{"payer": {"id": "p-1", "device": "d-1"}, "amount": "5", "geo": {"cc": "FR", "town": "Lyon"}}"#,
        ParseMode::Lenient,
    )
    .unwrap();
    assert_eq!(t.user_id, "p-1");
    assert_eq!(t.device_id.as_deref(), Some("d-1"));
    let location = t.location.unwrap();
    assert_eq!(
        (location.country.as_str(), location.city.as_deref()),
        ("FR", Some("Lyon"))
    );
    // What a path leaves behind is still checked: `payer.name` is unknown.
    let err = parse(
        &limits,
        r#"{"payer": {"id": "p-1", "name": "Ann"}, "amount": "5"}"#,
        ParseMode::Lenient,
    )
    .unwrap_err();
    assert_eq!(err.field, "payer");
}

#[test]
fn unknown_fields_are_refused_by_name_or_moved_into_metadata() {
    let refuse = limits("[fields]\naccount_id = \"user_id\"");
    let body = r#"{"account_id": "a", "amount": "5", "channel_hint": "web", "metadata": {"k": 1}}"#;
    let err = parse(&refuse, body, ParseMode::Lenient).unwrap_err();
    assert_eq!(err.field, "channel_hint");
    assert!(err.reason.contains("unknown_fields"), "{err}");

    let keep = limits("unknown_fields = \"metadata\"\n[fields]\naccount_id = \"user_id\"");
    let t = parse(&keep, body, ParseMode::Lenient).unwrap();
    let metadata = t.metadata.unwrap();
    assert_eq!(metadata["channel_hint"], "web");
    assert_eq!(metadata["k"], 1);
    // A moved field may not overwrite the producer's own metadata.
    let err = parse(
        &keep,
        r#"{"account_id": "a", "amount": "5", "k": 2, "metadata": {"k": 1}}"#,
        ParseMode::Lenient,
    )
    .unwrap_err();
    assert_eq!(err.field, "k");
}

#[test]
fn errors_name_the_producers_field() {
    let limits = limits(SEED_003_MAPPING);
    let err = parse(
        &limits,
        r#"{"account_id": "", "amount": "5"}"#,
        ParseMode::Lenient,
    )
    .unwrap_err();
    assert_eq!(err.field, "account_id");
    assert!(
        err.reason.contains("user_id") && err.reason.contains("empty"),
        "{err}"
    );
    let err = parse(
        &limits,
        r#"{"account_id": "a", "user_id": "b", "amount": "5"}"#,
        ParseMode::Lenient,
    )
    .unwrap_err();
    assert_eq!(err.field, "account_id");
    assert!(err.reason.contains("also sets"), "{err}");
    for bad in ["New York", "New York, USA", ", US", "Atlantis, ZZ"] {
        let body = format!(r#"{{"account_id": "a", "amount": "5", "location": "{bad}"}}"#);
        let err = parse(&limits, &body, ParseMode::Lenient).unwrap_err();
        assert_eq!(err.field, "location", "{bad}");
        assert!(err.reason.contains("City, CC"), "{err}");
    }
    let t = parse(
        &limits,
        r#"{"account_id": "a", "amount": "5", "location": "gb"}"#,
        ParseMode::Lenient,
    )
    .unwrap();
    assert_eq!(t.location.unwrap().country, "GB");
    let err = parse(&limits, "[1]", ParseMode::Lenient).unwrap_err();
    assert_eq!(err.field, "body");
}

#[test]
fn validation_names_the_setting() {
    let err = compile_error("[fields]\nmerchant = \"merchant_nam\"");
    assert_eq!(err.setting, "mapping.fields.merchant");
    assert!(err.reason.contains("merchant_name"), "{err}");
    let err = compile_error("[fields]\nmerchant = \"merchant\"");
    assert!(err.reason.contains("merchant_name"), "{err}");
    let err = compile_error("[fields]\nx = \"location.street\"");
    assert_eq!(err.setting, "mapping.fields.x");
    let err = compile_error("[fields]\nx = \"base\"");
    assert!(err.reason.contains("node"), "{err}");
    let err = compile_error("[fields]\nx = \"metadata.\"");
    assert!(err.reason.contains("metadata key"), "{err}");
    let err = compile_error("[fields]\naccount_id = \"user_id\"\npayer_id = \"user_id\"");
    assert_eq!(err.setting, "mapping.fields.payer_id");
    assert!(err.reason.contains("account_id"), "{err}");
    let err = compile_error("[fields]\n\"payer..id\" = \"user_id\"");
    assert_eq!(err.setting, "mapping.fields.\"payer..id\"");
    assert!(err.reason.contains("not a path"), "{err}");
    let err = compile_error("[fields]\n\"\" = \"user_id\"");
    assert!(err.reason.contains("empty"), "{err}");
    let err = compile_error("[fields]\npayer = \"metadata.payer\"\n\"payer.id\" = \"user_id\"");
    assert!(err.reason.contains("overlap"), "{err}");
    assert!(toml::from_str::<MappingConfig>("unknown_fields = \"keep\"").is_err());
    assert!(toml::from_str::<MappingConfig>("fieldz = {}").is_err());
}
