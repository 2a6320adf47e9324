//! The card-transaction event.

use crate::base_amount::BaseAmount;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One card transaction, validated. Field meanings are documented for users in
/// `event/transaction.schema.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transaction {
    /// Producer-assigned unique id; what makes redelivery idempotent.
    pub transaction_id: String,
    /// The account holder; the partition and actor key.
    pub user_id: String,
    /// Card used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    /// Device fingerprint, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Client IP address (v4 or v6, validated), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Exact decimal amount, zero or more (a zero-amount authorisation is valid); serialized
    /// as a string so no cent is lost.
    #[serde(with = "rust_decimal::serde::str")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "129.90"))]
    pub amount: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Merchant identifier, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    /// Merchant name as the producer knows it ("Online Store"); `merchant` is accepted too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    /// Merchant category: an MCC ("7995") or a category name ("gambling").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_category: Option<String>,
    /// Where the transaction happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Debit, credit or transfer.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TxnType>,
    /// Where the card holder was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Event time (RFC 3339); every window runs on it, never on the wall clock.
    #[serde(serialize_with = "crate::rfc3339::serialize")]
    pub timestamp: DateTime<Utc>,
    /// Free-form producer data, stored and never interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The amount in the node's base currency, with the rate and its date: set by the node at
    /// ingestion from its rate table; producers may not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseAmount>,
}

impl Transaction {
    /// The event's top-level fields, as serialized: the one list the mapping, the refusal
    /// labels and the schema check read (a test keeps it equal to the struct).
    pub const FIELDS: [&'static str; 16] = [
        "transaction_id",
        "user_id",
        "card_id",
        "device_id",
        "ip",
        "amount",
        "currency",
        "merchant_id",
        "merchant_name",
        "merchant_category",
        "channel",
        "type",
        "location",
        "timestamp",
        "metadata",
        "base",
    ];

    /// The amount rules and models compare across currencies: in the base currency once the
    /// node has converted it, the raw amount otherwise (events stored before conversion).
    pub fn amount_base(&self) -> Decimal {
        self.base.as_ref().map_or(self.amount, |b| b.amount)
    }

    /// Event time in milliseconds since the Unix epoch.
    pub fn event_time_ms(&self) -> i64 {
        self.timestamp.timestamp_millis()
    }
}

/// The channel a transaction came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Channel {
    /// Card present at a point-of-sale terminal.
    Pos,
    /// Online, in a browser.
    Web,
    /// In a mobile app.
    Mobile,
    /// Cash machine.
    Atm,
}

impl Channel {
    /// The lower-case name used in JSON and in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Pos => "pos",
            Channel::Web => "web",
            Channel::Mobile => "mobile",
            Channel::Atm => "atm",
        }
    }
}

/// The direction of money movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TxnType {
    /// Money leaves the account.
    Debit,
    /// Money enters the account.
    Credit,
    /// Money moves to another account.
    Transfer,
}

impl TxnType {
    /// The lower-case name used in JSON and in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnType::Debit => "debit",
            TxnType::Credit => "credit",
            TxnType::Transfer => "transfer",
        }
    }
}

/// Where the card holder was when the transaction happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// City name, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Latitude in degrees, -90..=90.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// Longitude in degrees, -180..=180.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base_amount::BaseAmount;

    /// `Transaction::FIELDS` is exactly what a fully filled event serializes to.
    #[test]
    fn fields_list_every_serialized_field() {
        let event = Transaction {
            transaction_id: "t".into(),
            user_id: "u".into(),
            card_id: Some("c".into()),
            device_id: Some("d".into()),
            ip: Some("192.0.2.1".into()),
            amount: Decimal::ONE,
            currency: "EUR".into(),
            merchant_id: Some("m".into()),
            merchant_name: Some("shop".into()),
            merchant_category: Some("5411".into()),
            channel: Some(Channel::Web),
            kind: Some(TxnType::Debit),
            location: Some(Location {
                country: "FR".into(),
                city: None,
                lat: None,
                lon: None,
            }),
            timestamp: Utc::now(),
            metadata: Some(serde_json::Map::new()),
            base: Some(BaseAmount {
                amount: Decimal::ONE,
                currency: "EUR".into(),
                rate: None,
                rate_date: None,
            }),
        };
        let serde_json::Value::Object(fields) = serde_json::to_value(&event).unwrap() else {
            unreachable!("an event serializes to an object")
        };
        let mut serialized: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut listed = Transaction::FIELDS.to_vec();
        serialized.sort_unstable();
        listed.sort_unstable();
        assert_eq!(serialized, listed);
    }
}
