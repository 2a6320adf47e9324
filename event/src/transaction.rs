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
