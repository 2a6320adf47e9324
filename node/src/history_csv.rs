//! The flat CSV form of transactions that `sentinel train --export-csv` writes and `sentinel
//! train --from csv` and `sentinel import` read: one row per transaction, optionally with its
//! label, the time the fraud became known and the fraud pattern.

use anyhow::bail;
use chrono::{DateTime, Utc};
use sentinel_event::{parse_transaction, Limits, ParseMode, Transaction};
use serde::{Deserialize, Serialize};

/// One CSV row: a flat transaction and, for training, its label.
#[derive(Debug, Serialize, Deserialize)]
pub struct CsvRow {
    /// `fraud` or `legit` (`1`/`0`, `true`/`false`); empty in a plain history.
    #[serde(default)]
    label: String,
    transaction_id: String,
    user_id: String,
    card_id: Option<String>,
    device_id: Option<String>,
    ip: Option<String>,
    amount: String,
    currency: String,
    merchant_id: Option<String>,
    merchant_category: Option<String>,
    channel: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    country: Option<String>,
    city: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    timestamp: DateTime<Utc>,
    /// When the fraud became known (a chargeback's date); empty: never reported, or legit.
    #[serde(default)]
    pub labelled_at: Option<DateTime<Utc>>,
    /// The fraud pattern, if known.
    #[serde(default)]
    pub scenario: Option<String>,
}

impl CsvRow {
    /// The row of a labelled event.
    pub fn of(
        t: &Transaction,
        fraud: bool,
        labelled_at: Option<DateTime<Utc>>,
        scenario: Option<String>,
    ) -> CsvRow {
        let l = t.location.as_ref();
        CsvRow {
            label: if fraud { "fraud" } else { "legit" }.into(),
            transaction_id: t.transaction_id.clone(),
            user_id: t.user_id.clone(),
            card_id: t.card_id.clone(),
            device_id: t.device_id.clone(),
            ip: t.ip.clone(),
            amount: t.amount.to_string(),
            currency: t.currency.clone(),
            merchant_id: t.merchant_id.clone(),
            merchant_category: t.merchant_category.clone(),
            channel: t.channel.map(|c| c.as_str().to_owned()),
            kind: t.kind.map(|k| k.as_str().to_owned()),
            country: l.map(|l| l.country.clone()),
            city: l.and_then(|l| l.city.clone()),
            lat: l.and_then(|l| l.lat),
            lon: l.and_then(|l| l.lon),
            timestamp: t.timestamp,
            labelled_at,
            scenario,
        }
    }

    /// The `label` column: fraud (true) or legit.
    pub fn fraud(&self) -> anyhow::Result<bool> {
        Ok(match self.label.to_ascii_lowercase().as_str() {
            "fraud" | "1" | "true" => true,
            "legit" | "0" | "false" => false,
            other => bail!("label: `{other}` is not fraud, legit, 1 or 0"),
        })
    }

    /// The transaction, validated as the node validates Kafka events.
    pub fn into_event(self, limits: &Limits) -> anyhow::Result<Transaction> {
        let mut event = serde_json::json!({
            "transaction_id": self.transaction_id,
            "user_id": self.user_id,
            "card_id": self.card_id,
            "device_id": self.device_id,
            "ip": self.ip,
            "amount": self.amount,
            "currency": self.currency,
            "merchant_id": self.merchant_id,
            "merchant_category": self.merchant_category,
            "channel": self.channel,
            "type": self.kind,
            "timestamp": self.timestamp,
        });
        if let Some(country) = self.country {
            event["location"] = serde_json::json!({
                "country": country, "city": self.city, "lat": self.lat, "lon": self.lon,
            });
        }
        // Absent columns are empty, not null, in the event.
        if let Some(map) = event.as_object_mut() {
            map.retain(|_, v| !v.is_null());
            if let Some(location) = map.get_mut("location").and_then(|l| l.as_object_mut()) {
                location.retain(|_, v| !v.is_null());
            }
        }
        let bytes = serde_json::to_vec(&event)?;
        let (txn, _) = parse_transaction(&bytes, ParseMode::Strict, limits, Utc::now())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(txn)
    }
}
