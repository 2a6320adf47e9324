use super::*;
use rust_decimal::Decimal;
use std::str::FromStr;

fn event(amount: &str, currency: &str) -> Transaction {
    let json = format!(
        r#"{{"transaction_id":"t","user_id":"u","amount":"{amount}","currency":"{currency}",
            "timestamp":"2026-12-01T10:00:00Z"}}"#
    );
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let limits = sentinel_event::Limits::default();
    sentinel_event::parse_transaction(
        json.as_bytes(),
        sentinel_event::ParseMode::Strict,
        &limits,
        now,
    )
    .unwrap()
    .0
}

fn config(toml_text: &str) -> CurrencyConfig {
    toml::from_str(toml_text).unwrap()
}

#[test]
fn without_rates_the_example_table_converts_into_usd() {
    let currencies = Currencies::new(&CurrencyConfig::default()).unwrap();
    let yen = currencies
        .convert(event("60528", "JPY"), Source::Http)
        .unwrap();
    let base = yen.base.unwrap();
    assert_eq!(base.currency, "USD");
    assert_eq!(base.amount, Decimal::from_str("399.4848").unwrap());
    assert_eq!(base.rate_date.unwrap().to_string(), "2026-12-01");
    let dollars = currencies
        .convert(event("12000", "USD"), Source::Http)
        .unwrap();
    assert_eq!(dollars.amount_base(), Decimal::from(12_000));
}

#[test]
fn a_currency_without_a_rate_is_refused_naming_currency_or_taken_raw() {
    let rates = "base = \"EUR\"\nas_of = \"2026-11-30\"\nrates = { USD = \"0.86\" }\n";
    let strict = Currencies::new(&config(rates)).unwrap();
    let err = strict
        .convert(event("100", "JPY"), Source::Kafka)
        .unwrap_err();
    assert_eq!(err.field, "currency");
    assert!(
        err.reason.contains("JPY")
            && err.reason.contains("EUR")
            && err.reason.contains("2026-11-30"),
        "{}",
        err.reason
    );
    let raw = Currencies::new(&config(&format!("{rates}unknown = \"raw\"\n"))).unwrap();
    let taken = raw.convert(event("100", "JPY"), Source::Kafka).unwrap();
    let base = taken.base.unwrap();
    assert_eq!(
        (base.amount, base.rate, base.rate_date),
        (Decimal::from(100), None, None)
    );
    assert_eq!(base.currency, "EUR");
}

#[test]
fn settings_errors_name_the_setting() {
    let err = |text: &str| config(text).table().unwrap_err().to_string();
    assert!(err("rates = { EUR = 1.1 }").starts_with("currency.as_of"));
    assert!(err("base = \"EUR\"").starts_with("currency.base"));
    assert!(
        err("as_of = \"2026-12-01\"\nrates = { QQQ = 1 }").starts_with("currency.rates.QQQ"),
        "{}",
        err("as_of = \"2026-12-01\"\nrates = { QQQ = 1 }")
    );
    assert!(err("rates_file = \"/nonexistent/rates.toml\"").starts_with("currency.rates_file"));
    assert!(err("rates_file = \"r.toml\"\nrates = {}").contains("either"));
    let refused = toml::from_str::<CurrencyConfig>("unknwon = \"raw\"").unwrap_err();
    assert!(refused.to_string().contains("unknwon"), "{refused}");
}
