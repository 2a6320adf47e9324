//! Bytes to a validated [`Transaction`]: every rejection names the field and the reason.

use crate::iso::{is_country, is_currency};
use crate::mapping::FieldMapping;
use crate::transaction::{Channel, Location, Transaction, TxnType};
use chrono::{DateTime, Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{de, Deserialize, Deserializer, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

/// Why an event was rejected. `field` is a dotted path (`location.country`) or `body` for the
/// payload as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidEvent {
    /// The offending field, or `body`.
    pub field: String,
    /// What is wrong with it, in words a producer's developer can act on.
    pub reason: String,
}

impl InvalidEvent {
    /// Every value of [`InvalidEvent::field_label`]: the event's fields, `body` and `other`.
    pub const FIELD_LABELS: [&'static str; Transaction::FIELDS.len() + 2] = {
        let mut labels = ["other"; Transaction::FIELDS.len() + 2];
        let mut i = 0;
        while i < Transaction::FIELDS.len() {
            labels[i] = Transaction::FIELDS[i];
            i += 1;
        }
        labels[i] = "body";
        labels
    };

    /// The field at fault as a bounded metric label: the top-level schema field it lies in
    /// (`location` for `location.country`), `body`, or `other` for a name outside the schema
    /// (an unknown field, or a mapped one under the producer's name), which the error itself
    /// names.
    pub fn field_label(&self) -> &'static str {
        let top = self.field.split(['.', '[']).next().unwrap_or_default();
        let top = if top == "merchant" {
            "merchant_name"
        } else {
            top
        };
        Self::FIELD_LABELS
            .into_iter()
            .find(|f| *f == top)
            .unwrap_or("other")
    }

    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InvalidEvent {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Where the event came from, which decides what may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseMode<'a> {
    /// Kafka and imports: `transaction_id`, `user_id`, `amount`, `currency` and `timestamp`
    /// are required, because the transaction id is what makes redelivery idempotent.
    Strict,
    /// HTTP: a minimal event is enough; missing `transaction_id`, `timestamp` and `currency`
    /// are assigned by the node and reported back in [`Assigned`].
    Lenient,
    /// A Kafka message: strict, unless the mapping's `assign_missing` is on; then a missing
    /// `transaction_id` is `<topic>:<partition>:<offset>` (the same on redelivery), a missing
    /// `timestamp` the message's, a missing `currency` the default.
    Message(MessageOrigin<'a>),
}

/// Where a Kafka message sits, for the values [`ParseMode::Message`] may assign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageOrigin<'a> {
    /// The topic it was read from.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp (producer or broker time), in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
}

/// Validation limits, configurable per node.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest accepted payload in bytes.
    pub max_payload_bytes: usize,
    /// Largest accepted amount.
    pub max_amount: Decimal,
    /// How far past the node's clock an event time may be.
    pub max_future_skew: Duration,
    /// Currency assigned to lenient events that have none.
    pub default_currency: String,
    /// How producer payloads map onto the schema; `None`: they match it exactly, and are
    /// decoded straight into the typed form.
    pub mapping: Option<Arc<FieldMapping>>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload_bytes: 64 * 1024,
            max_amount: Decimal::from(1_000_000_000u64),
            max_future_skew: Duration::minutes(15),
            default_currency: "USD".to_owned(),
            mapping: None,
        }
    }
}

/// What the node filled in on a lenient (HTTP) event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assigned {
    /// The transaction id was generated.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub transaction_id: bool,
    /// The timestamp was set to the node's clock.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timestamp: bool,
    /// The currency was set to the configured default.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub currency: bool,
}

/// The wire form before validation: everything optional so that a missing field gets our own
/// precise error, unknown fields refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransaction {
    transaction_id: Option<String>,
    user_id: Option<String>,
    card_id: Option<String>,
    device_id: Option<String>,
    ip: Option<String>,
    #[serde(default, deserialize_with = "exact_amount")]
    amount: Option<Decimal>,
    currency: Option<String>,
    merchant_id: Option<String>,
    #[serde(alias = "merchant")]
    merchant_name: Option<String>,
    merchant_category: Option<String>,
    channel: Option<Channel>,
    #[serde(rename = "type")]
    kind: Option<TxnType>,
    location: Option<Location>,
    timestamp: Option<String>,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Node-owned: accepted by the parser only to be refused with a precise reason.
    base: Option<de::IgnoredAny>,
}

/// Parses and validates one event. `now` is the node's clock, used only to refuse event times
/// far in the future and to stamp lenient events.
pub fn parse_transaction(
    bytes: &[u8],
    mode: ParseMode,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<(Transaction, Assigned), InvalidEvent> {
    if bytes.len() > limits.max_payload_bytes {
        return Err(InvalidEvent::new(
            "body",
            format!(
                "payload is {} bytes, more than the limit of {} bytes",
                bytes.len(),
                limits.max_payload_bytes
            ),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return Err(InvalidEvent::new(
                "body",
                format!("payload is not valid UTF-8 ({e})"),
            ))
        }
    };
    let raw = match &limits.mapping {
        None => match decode_untracked(text) {
            Some(raw) => raw,
            // Decoding is deterministic: this fails the same way, naming the field at fault.
            None => decode_tracked(text)?,
        },
        Some(mapping) => {
            let payload: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| InvalidEvent::new("body", format!("malformed JSON: {e}")))?;
            let mapped = mapping.apply(payload)?;
            serde_path_to_error::deserialize(mapped)
                .map_err(decode_error)
                .map_err(|e| named_as_sent(e, mapping))?
        }
    };
    validate(raw, mode, limits, now).map_err(|e| match &limits.mapping {
        Some(mapping) => named_as_sent(e, mapping),
        None => e,
    })
}

/// The payload decoded without tracking where the decoder is, `None` when it does not decode.
/// Tracking the path (for an error naming the field) costs a string per field of every event;
/// only a failed decode needs it, so it is paid again only then, by [`decode_tracked`].
fn decode_untracked(text: &str) -> Option<RawTransaction> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = RawTransaction::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(raw)
}

/// The payload decoded with the path to any error, which the error then names.
fn decode_tracked(text: &str) -> Result<RawTransaction, InvalidEvent> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw: RawTransaction = serde_path_to_error::deserialize(&mut de).map_err(decode_error)?;
    de.end()
        .map_err(|e| InvalidEvent::new("body", strip_position(&e.to_string())))?;
    Ok(raw)
}

/// A decoding error naming the field at fault.
fn decode_error(e: serde_path_to_error::Error<serde_json::Error>) -> InvalidEvent {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        // Malformed JSON: the position is the useful part.
        return InvalidEvent::new("body", format!("malformed JSON: {inner}"));
    }
    let field = if path == "." || path.is_empty() {
        field_from_message(&inner.to_string())
    } else {
        path
    };
    InvalidEvent::new(field, strip_position(&inner.to_string()))
}

/// An error about a mapped field names the producer's own field (`account_id`), with the
/// schema field it maps to in the reason.
fn named_as_sent(mut e: InvalidEvent, mapping: &FieldMapping) -> InvalidEvent {
    if let Some(source) = mapping.source_of(&e.field) {
        e.reason = format!("(mapped to `{}`) {}", e.field, e.reason);
        e.field = source.to_owned();
    }
    e
}

fn validate(
    raw: RawTransaction,
    mode: ParseMode,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<(Transaction, Assigned), InvalidEvent> {
    let mut assigned = Assigned::default();
    let lenient = mode == ParseMode::Lenient;
    // What a Kafka message may be given when the mapping allows it.
    let origin = match mode {
        ParseMode::Message(origin)
            if limits.mapping.as_ref().is_some_and(|m| m.assign_missing()) =>
        {
            Some(origin)
        }
        _ => None,
    };
    if raw.base.is_some() {
        // A producer-chosen base amount could slip past every amount rule: refuse it loudly.
        return Err(InvalidEvent::new(
            "base",
            "is set by the node from its currency rate table; producers may not send it",
        ));
    }

    let transaction_id = match raw.transaction_id {
        Some(id) => identifier("transaction_id", id)?,
        None if lenient => {
            assigned.transaction_id = true;
            uuid::Uuid::now_v7().to_string()
        }
        None => match origin {
            Some(o) => {
                assigned.transaction_id = true;
                identifier(
                    "transaction_id",
                    format!("{}:{}:{}", o.topic, o.partition, o.offset),
                )?
            }
            None => return Err(missing("transaction_id")),
        },
    };
    let user_id = identifier("user_id", raw.user_id.ok_or_else(|| missing("user_id"))?)?;
    let amount = raw.amount.ok_or_else(|| missing("amount"))?;
    // Zero is a real authorisation (card verification, and a classic card-testing probe).
    if amount < Decimal::ZERO {
        return Err(InvalidEvent::new("amount", "must not be negative"));
    }
    if amount > limits.max_amount {
        return Err(InvalidEvent::new(
            "amount",
            format!("must not exceed {}", limits.max_amount),
        ));
    }
    let currency = match raw.currency {
        Some(c) if is_currency(&c) => c,
        Some(c) => {
            return Err(InvalidEvent::new(
                "currency",
                format!("`{}` is not an ISO 4217 currency code", truncate(&c)),
            ))
        }
        None if lenient || origin.is_some() => {
            assigned.currency = true;
            limits.default_currency.clone()
        }
        None => return Err(missing("currency")),
    };
    let timestamp = match raw.timestamp {
        Some(t) => event_time(&t, limits, now)?,
        None if lenient => {
            assigned.timestamp = true;
            now
        }
        None if origin.is_some() => {
            assigned.timestamp = true;
            origin
                .and_then(|o| o.timestamp_ms)
                .and_then(DateTime::from_timestamp_millis)
                .unwrap_or(now)
        }
        None => return Err(missing("timestamp")),
    };
    let ip = raw
        .ip
        .map(|ip| match IpAddr::from_str(&ip) {
            Ok(_) => Ok(ip),
            Err(_) => Err(InvalidEvent::new(
                "ip",
                format!("`{}` is not an IP address", truncate(&ip)),
            )),
        })
        .transpose()?;
    if let Some(location) = &raw.location {
        check_location(location)?;
    }
    let txn = Transaction {
        transaction_id,
        user_id,
        card_id: raw.card_id.map(|v| identifier("card_id", v)).transpose()?,
        device_id: raw
            .device_id
            .map(|v| identifier("device_id", v))
            .transpose()?,
        ip,
        amount,
        currency,
        merchant_id: raw
            .merchant_id
            .map(|v| identifier("merchant_id", v))
            .transpose()?,
        merchant_name: raw
            .merchant_name
            .map(|v| identifier("merchant_name", v))
            .transpose()?,
        merchant_category: raw
            .merchant_category
            .map(|v| identifier("merchant_category", v))
            .transpose()?,
        channel: raw.channel,
        kind: raw.kind,
        location: raw.location,
        timestamp,
        metadata: raw.metadata,
        base: None,
    };
    Ok((txn, assigned))
}

const MAX_ID_CHARS: usize = 128;

fn identifier(field: &str, value: String) -> Result<String, InvalidEvent> {
    if value.is_empty() {
        return Err(InvalidEvent::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_ID_CHARS {
        return Err(InvalidEvent::new(
            field,
            format!("must be at most {MAX_ID_CHARS} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidEvent::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value)
}

fn missing(field: &str) -> InvalidEvent {
    InvalidEvent::new(field, "is required")
}

fn event_time(
    text: &str,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, InvalidEvent> {
    let parsed = DateTime::parse_from_rfc3339(text).map_err(|e| {
        InvalidEvent::new(
            "timestamp",
            format!("`{}` is not an RFC 3339 time ({e})", truncate(text)),
        )
    })?;
    let t = parsed.with_timezone(&Utc);
    let earliest = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    if t < earliest {
        return Err(InvalidEvent::new(
            "timestamp",
            "must not be before 2000-01-01T00:00:00Z",
        ));
    }
    if t > now + limits.max_future_skew {
        return Err(InvalidEvent::new(
            "timestamp",
            format!(
                "is more than {} seconds ahead of the node's clock",
                limits.max_future_skew.num_seconds()
            ),
        ));
    }
    Ok(t)
}

fn check_location(location: &Location) -> Result<(), InvalidEvent> {
    if !is_country(&location.country) {
        return Err(InvalidEvent::new(
            "location.country",
            format!(
                "`{}` is not an ISO 3166-1 alpha-2 country code",
                truncate(&location.country)
            ),
        ));
    }
    if let Some(city) = &location.city {
        identifier("location.city", city.clone())?;
    }
    match (location.lat, location.lon) {
        (Some(lat), _) if !(-90.0..=90.0).contains(&lat) => Err(InvalidEvent::new(
            "location.lat",
            "must be between -90 and 90",
        )),
        (_, Some(lon)) if !(-180.0..=180.0).contains(&lon) => Err(InvalidEvent::new(
            "location.lon",
            "must be between -180 and 180",
        )),
        (Some(_), None) => Err(InvalidEvent::new(
            "location.lon",
            "is required when lat is given",
        )),
        (None, Some(_)) => Err(InvalidEvent::new(
            "location.lat",
            "is required when lon is given",
        )),
        _ => Ok(()),
    }
}

/// Accepts an amount as a JSON string (`"12.34"`, exact at any precision) or a JSON number
/// (exact up to 15 significant digits, which Rust's shortest round-trip formatting preserves).
fn exact_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    struct AmountVisitor;
    impl de::Visitor<'_> for AmountVisitor {
        type Value = Option<Decimal>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal amount as a number or a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Decimal::from_str_exact(v.trim())
                .map(Some)
                .map_err(|_| E::custom(format!("`{}` is not a decimal number", truncate(v))))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Decimal::from(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Decimal::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if !v.is_finite() {
                return Err(E::custom("must be a finite number"));
            }
            // Shortest round-trip formatting recovers the producer's digits exactly.
            Decimal::from_str_exact(&v.to_string())
                .or_else(|_| Decimal::from_scientific(&format!("{v:e}")))
                .map(Some)
                .map_err(|_| E::custom("is out of range"))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(AmountVisitor)
}

/// serde_json reports `missing field `x`` and `unknown field `x`` at the root; pull the name out.
fn field_from_message(message: &str) -> String {
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            if let Some(end) = rest.find('`') {
                return rest[..end].to_owned();
            }
        }
    }
    "body".to_owned()
}

/// Drops serde_json's " at line 1 column 7": the field name is the useful part.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Echoing producer input back is useful, echoing a megabyte is not.
fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests;
