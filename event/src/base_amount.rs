//! The amount of an event in the node's base currency, and the rate that gave it.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What the node's rate table made of an event's amount. Set by the node at ingestion, never
/// by producers (an event that carries `base` is refused), so rules and models compare
/// amounts across currencies on one scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaseAmount {
    /// The amount in `currency`, exact (a string, like `amount`).
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "400.12"))]
    pub amount: Decimal,
    /// The node's base currency (ISO 4217).
    pub currency: String,
    /// Units of the base currency per unit of the event's currency. Absent when no rate
    /// applied: the currency had none and the node is configured to decide on the raw amount.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "0.00661"))]
    pub rate: Option<Decimal>,
    /// The date of the rate table the rate came from; absent when no rate applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_date: Option<NaiveDate>,
}

impl BaseAmount {
    /// Converts `amount` at `rate` (units of `currency` per unit of the event's currency),
    /// rounded to 4 decimal places; `None` when the product does not fit a decimal.
    pub fn convert(
        amount: Decimal,
        rate: Decimal,
        currency: &str,
        rate_date: NaiveDate,
    ) -> Option<BaseAmount> {
        let converted = amount
            .checked_mul(rate)?
            .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        Some(BaseAmount {
            amount: converted.normalize(),
            currency: currency.to_owned(),
            rate: Some(rate),
            rate_date: Some(rate_date),
        })
    }

    /// The raw amount taken as is, recording that no rate applied.
    pub fn unconverted(amount: Decimal, currency: &str) -> BaseAmount {
        BaseAmount {
            amount,
            currency: currency.to_owned(),
            rate: None,
            rate_date: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn converts_exactly_and_round_trips_as_strings() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let base = BaseAmount::convert(dec("60528"), dec("0.00661"), "USD", date).unwrap();
        assert_eq!(base.amount, dec("400.0901"));
        let json = serde_json::to_value(&base).unwrap();
        assert_eq!(json["amount"], "400.0901");
        assert_eq!(json["rate"], "0.00661");
        assert_eq!(json["rate_date"], "2026-12-01");
        assert_eq!(serde_json::from_value::<BaseAmount>(json).unwrap(), base);
        assert!(BaseAmount::convert(Decimal::MAX, dec("2"), "USD", date).is_none());
    }

    #[test]
    fn a_producer_sent_base_amount_is_refused_naming_the_field() {
        let json = br#"{"transaction_id":"t-1","user_id":"u-1","amount":"60528","currency":"JPY",
            "timestamp":"2026-11-22T11:00:00Z","base":{"amount":"1","currency":"USD"}}"#;
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T12:00:00Z")
            .unwrap()
            .to_utc();
        let limits = crate::Limits::default();
        let err = crate::parse_transaction(json, crate::ParseMode::Strict, &limits, now)
            .expect_err("a node-owned field");
        assert_eq!(err.field, "base");
        assert!(err.reason.contains("set by the node"), "{}", err.reason);
    }

    #[test]
    fn an_unconverted_amount_records_that_no_rate_applied() {
        let base = BaseAmount::unconverted(dec("38530"), "USD");
        let json = serde_json::to_value(&base).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount": "38530", "currency": "USD"})
        );
    }
}
