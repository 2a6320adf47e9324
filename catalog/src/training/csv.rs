//! The flat CSV form of transactions that `sentinel train --export-csv` writes and `sentinel
//! train --from csv` and `sentinel import` read: one row per transaction, optionally with its
//! label, the time the fraud became known and the fraud pattern. Rows are (de)serialized with
//! the `csv` crate by the reader or writer.

use super::LabelledEvent;
use chrono::{DateTime, Duration, TimeZone, Utc};
use sentinel_event::{parse_transaction, InvalidEvent, Limits, ParseMode, Transaction};
use serde::{Deserialize, Serialize};

/// The limits a history's rows are validated under: the node's, except that events may lie
/// any time in the past (history is old by definition; only the node's own clock checks skew).
pub fn history_limits() -> Limits {
    Limits {
        max_future_skew: Duration::days(365 * 100),
        ..Limits::default()
    }
}

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
    labelled_at: Option<DateTime<Utc>>,
    /// The fraud pattern, if known.
    #[serde(default)]
    scenario: Option<String>,
}

impl CsvRow {
    /// The row of a labelled event.
    pub fn of(labelled: &LabelledEvent) -> CsvRow {
        let t = &labelled.event;
        let l = t.location.as_ref();
        CsvRow {
            label: if labelled.fraud { "fraud" } else { "legit" }.into(),
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
            labelled_at: labelled
                .known_ms
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
            scenario: labelled.scenario.clone(),
        }
    }

    /// The labelled event: its label, the time a fraud became known (a legit event's label
    /// time is ignored) and the transaction, validated under `limits`.
    pub fn into_labelled(self, limits: &Limits) -> Result<LabelledEvent, InvalidEvent> {
        let (known, scenario) = (self.labelled_at, self.scenario.clone());
        let fraud = self.fraud()?;
        let event = self.into_event(limits)?;
        Ok(LabelledEvent {
            known_ms: known.filter(|_| fraud).map(|t| t.timestamp_millis()),
            fraud,
            scenario,
            event,
        })
    }

    /// The `label` column: fraud (true) or legit.
    fn fraud(&self) -> Result<bool, InvalidEvent> {
        Ok(match self.label.to_ascii_lowercase().as_str() {
            "fraud" | "1" | "true" => true,
            "legit" | "0" | "false" => false,
            other => {
                return Err(InvalidEvent {
                    field: "label".to_owned(),
                    reason: format!("`{other}` is not fraud, legit, 1 or 0"),
                })
            }
        })
    }

    /// The transaction, validated as the node validates Kafka events.
    pub fn into_event(self, limits: &Limits) -> Result<Transaction, InvalidEvent> {
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
        let bytes = serde_json::to_vec(&event).expect("a JSON value serializes");
        let (txn, _) = parse_transaction(&bytes, ParseMode::Strict, limits, Utc::now())?;
        Ok(txn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
label,transaction_id,user_id,card_id,device_id,ip,amount,currency,merchant_id,merchant_category,channel,type,country,city,lat,lon,timestamp,labelled_at,scenario
fraud,t1,u1,c1,,,12.50,EUR,m1,,,,FR,Paris,,,2026-01-05T10:00:00Z,2026-01-20T00:00:00Z,card_testing
legit,t2,u2,,d2,,3,EUR,,,,,,,,,2026-01-05T11:00:00Z,2026-01-21T00:00:00Z,
1,t3,u3,,,,4,EUR,,,,,,,,,2026-01-05T12:00:00Z,,
maybe,t4,u4,,,,5,EUR,,,,,,,,,2026-01-05T13:00:00Z,,
";

    fn read(text: &str) -> Vec<Result<LabelledEvent, InvalidEvent>> {
        csv::Reader::from_reader(text.as_bytes())
            .deserialize::<CsvRow>()
            .map(|row| row.unwrap().into_labelled(&history_limits()))
            .collect()
    }

    #[test]
    fn rows_carry_their_label_its_time_and_the_pattern() {
        let rows = read(FILE);
        let fraud = rows[0].as_ref().unwrap();
        assert!(fraud.fraud);
        assert_eq!(
            fraud.known_ms,
            Some(
                Utc.with_ymd_and_hms(2026, 1, 20, 0, 0, 0)
                    .unwrap()
                    .timestamp_millis()
            )
        );
        assert_eq!(fraud.scenario.as_deref(), Some("card_testing"));
        assert_eq!(fraud.event.card_id.as_deref(), Some("c1"));
        assert_eq!(fraud.event.location.as_ref().unwrap().country, "FR");
        let sighting = fraud.reported_fraud().unwrap();
        assert_eq!(
            (sighting.labelled_ms, sighting.fraud),
            (fraud.known_ms.unwrap(), true)
        );

        // A legit event's label time means nothing; an unreported fraud has none.
        let legit = rows[1].as_ref().unwrap();
        assert!(!legit.fraud);
        assert_eq!(legit.known_ms, None);
        assert!(legit.reported_fraud().is_none());
        let unreported = rows[2].as_ref().unwrap();
        assert!(unreported.fraud && unreported.known_ms.is_none());
        assert!(unreported.reported_fraud().is_none());

        let err = rows[3].as_ref().unwrap_err().to_string();
        assert_eq!(err, "label: `maybe` is not fraud, legit, 1 or 0");
    }

    #[test]
    fn a_written_row_reads_back_as_the_same_labelled_event() {
        let events: Vec<LabelledEvent> =
            read(FILE).into_iter().take(3).map(Result::unwrap).collect();
        let mut writer = csv::Writer::from_writer(Vec::new());
        for e in &events {
            writer.serialize(CsvRow::of(e)).unwrap();
        }
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        let back: Vec<LabelledEvent> = read(&text).into_iter().map(Result::unwrap).collect();
        assert_eq!(back, events);
    }

    #[test]
    fn an_invalid_transaction_names_its_field() {
        let text = FILE.replace("12.50,EUR", "-1,EUR");
        let err = read(&text).remove(0).unwrap_err();
        assert_eq!(err.field, "amount", "{err}");
    }
}
