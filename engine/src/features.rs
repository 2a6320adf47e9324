//! The catalogue of values a rule can name, and their computation for one event.
//!
//! Event fields come from the transaction itself. `user.*` fields and the derived features
//! describe the user *before* this event (so `amount_base > 5 * user.avg_amount_30d` compares the
//! new amount with the past). Window functions — `count(user, 5m)`, `sum(card, 1h)` … — include
//! the event being decided. Window functions over `card`, `device`, `merchant` and `ip` look at
//! this user's transactions with the same card, device, merchant or IP; `device.distinct_users(24h)`
//! and its kin count every user of the event's device (or card, IP, merchant), from the counts
//! the entity actors returned ([`EntityCounts`]).
//!
//! Amounts compare across currencies in the node's base currency: `amount_base`, the user's
//! averages and maxima, window sums and `amount_ratio_to_avg` all use it; `amount` alone is
//! the event's raw amount in its own currency.

use crate::entities::{EntityCounts, EntityKind, KindSet};
use crate::policy::Lists;
use crate::profile::Profile;
use crate::window::{Entry, Key, Placement, Window};
use chrono::{Datelike, Timelike, Weekday};
use rust_decimal::prelude::ToPrimitive;
use sentinel_event::distance_km;
use sentinel_event::Transaction;
use sentinel_rules::{Agg, EntityId, Facts, FieldId, Schema, Type, Value};

/// Longest look-back of any window function, and of the `_30d` profile fields.
pub const RETENTION_MS: i64 = 30 * 24 * 3_600_000;

#[derive(Debug, Clone, Copy)]
enum Feature {
    TransactionId,
    UserId,
    CardId,
    DeviceId,
    Ip,
    Amount,
    AmountBase,
    Currency,
    MerchantId,
    MerchantName,
    MerchantCategory,
    Channel,
    Type,
    Country,
    City,
    Lat,
    Lon,
    Hour,
    IsWeekend,
    UserAvg30d,
    UserMax30d,
    UserCount30d,
    UserTxnCount,
    UserHomeCountry,
    UserLastCountry,
    UserAccountAgeDays,
    MinutesSinceLast,
    SecondsSinceLast,
    DistanceKmFromLast,
    SpeedKmhFromLast,
    AmountRatioToAvg,
    IsNewDevice,
    IsNewCard,
    IsNewMerchant,
    IsNewCountry,
    IsHomeCountry,
    MlScore,
    MlAnomaly,
}

/// Every field a rule can name: (name, type, meaning). The position is the field's id.
const CATALOGUE: &[(&str, Type, Feature, &str)] = &[
    (
        "transaction_id",
        Type::Text,
        Feature::TransactionId,
        "the transaction's id",
    ),
    ("user_id", Type::Text, Feature::UserId, "the account holder"),
    ("card_id", Type::Text, Feature::CardId, "card used"),
    (
        "device_id",
        Type::Text,
        Feature::DeviceId,
        "device fingerprint",
    ),
    ("ip", Type::Text, Feature::Ip, "client IP address"),
    (
        "amount",
        Type::Number,
        Feature::Amount,
        "transaction amount, in the event's own currency",
    ),
    (
        "amount_base",
        Type::Number,
        Feature::AmountBase,
        "transaction amount in the node's base currency ([currency] rate table)",
    ),
    (
        "currency",
        Type::Text,
        Feature::Currency,
        "ISO 4217 currency code",
    ),
    ("merchant_id", Type::Text, Feature::MerchantId, "merchant"),
    (
        "merchant_name",
        Type::Text,
        Feature::MerchantName,
        "merchant's name as the producer sends it",
    ),
    (
        "merchant_category",
        Type::Text,
        Feature::MerchantCategory,
        "MCC or category name",
    ),
    (
        "channel",
        Type::Text,
        Feature::Channel,
        "pos, web, mobile or atm",
    ),
    (
        "type",
        Type::Text,
        Feature::Type,
        "debit, credit or transfer",
    ),
    (
        "location.country",
        Type::Text,
        Feature::Country,
        "ISO country code of the transaction",
    ),
    (
        "location.city",
        Type::Text,
        Feature::City,
        "city of the transaction",
    ),
    ("location.lat", Type::Number, Feature::Lat, "latitude"),
    ("location.lon", Type::Number, Feature::Lon, "longitude"),
    (
        "hour",
        Type::Number,
        Feature::Hour,
        "hour of the event time, 0-23 UTC",
    ),
    (
        "is_weekend",
        Type::Bool,
        Feature::IsWeekend,
        "event time falls on Saturday or Sunday (UTC)",
    ),
    (
        "user.avg_amount_30d",
        Type::Number,
        Feature::UserAvg30d,
        "user's average amount over the previous 30 days",
    ),
    (
        "user.max_amount_30d",
        Type::Number,
        Feature::UserMax30d,
        "user's largest amount over the previous 30 days",
    ),
    (
        "user.txn_count_30d",
        Type::Number,
        Feature::UserCount30d,
        "user's transactions over the previous 30 days",
    ),
    (
        "user.txn_count",
        Type::Number,
        Feature::UserTxnCount,
        "user's transactions ever, before this one",
    ),
    (
        "user.home_country",
        Type::Text,
        Feature::UserHomeCountry,
        "country the user transacts in most",
    ),
    (
        "user.last_country",
        Type::Text,
        Feature::UserLastCountry,
        "country of the user's previous transaction",
    ),
    (
        "user.account_age_days",
        Type::Number,
        Feature::UserAccountAgeDays,
        "days since the user's first transaction",
    ),
    (
        "minutes_since_last",
        Type::Number,
        Feature::MinutesSinceLast,
        "minutes since the user's previous transaction",
    ),
    (
        "seconds_since_last",
        Type::Number,
        Feature::SecondsSinceLast,
        "seconds since the user's previous transaction",
    ),
    (
        "distance_km_from_last",
        Type::Number,
        Feature::DistanceKmFromLast,
        "km from the previous transaction's coordinates",
    ),
    (
        "speed_kmh_from_last",
        Type::Number,
        Feature::SpeedKmhFromLast,
        "km/h needed to travel from the previous transaction",
    ),
    (
        "amount_ratio_to_avg",
        Type::Number,
        Feature::AmountRatioToAvg,
        "amount_base divided by the user's 30-day average (base currency)",
    ),
    (
        "is_new_device",
        Type::Bool,
        Feature::IsNewDevice,
        "device never seen for this user",
    ),
    (
        "is_new_card",
        Type::Bool,
        Feature::IsNewCard,
        "card never seen for this user",
    ),
    (
        "is_new_merchant",
        Type::Bool,
        Feature::IsNewMerchant,
        "merchant never seen for this user",
    ),
    (
        "is_new_country",
        Type::Bool,
        Feature::IsNewCountry,
        "country never seen for this user",
    ),
    (
        "is_home_country",
        Type::Bool,
        Feature::IsHomeCountry,
        "transaction is in the user's home country",
    ),
    (
        "ml.score",
        Type::Number,
        Feature::MlScore,
        "the active model's calibrated fraud probability, 0..1 (null without a model)",
    ),
    (
        "ml.anomaly",
        Type::Number,
        Feature::MlAnomaly,
        "the active model's isolation-forest anomaly score, 0..1 (null without a model)",
    ),
];

const ENTITY_USER: EntityId = EntityId(0);
const ENTITY_CARD: EntityId = EntityId(1);
const ENTITY_DEVICE: EntityId = EntityId(2);
const ENTITY_MERCHANT: EntityId = EntityId(3);
const ENTITY_IP: EntityId = EntityId(4);

/// The shared-entity kind a rule's entity names, if it is one.
fn entity_kind(entity: EntityId) -> Option<EntityKind> {
    Some(match entity {
        ENTITY_CARD => EntityKind::Card,
        ENTITY_DEVICE => EntityKind::Device,
        ENTITY_MERCHANT => EntityKind::Merchant,
        ENTITY_IP => EntityKind::Ip,
        _ => return None,
    })
}

/// The entity kinds whose distinct users any of `exprs` asks for.
pub(crate) fn distinct_user_kinds<'e>(
    exprs: impl Iterator<Item = &'e sentinel_rules::Expr>,
) -> KindSet {
    exprs
        .flat_map(|e| e.distinct_user_entities().iter().copied())
        .filter_map(entity_kind)
        .fold(KindSet::default(), KindSet::with)
}

/// Window-function entities: (name, id).
const ENTITIES: &[(&str, EntityId)] = &[
    ("user", ENTITY_USER),
    ("card", ENTITY_CARD),
    ("device", ENTITY_DEVICE),
    ("merchant", ENTITY_MERCHANT),
    ("ip", ENTITY_IP),
];

/// The schema rules are checked against, knowing the given list names; `metadata.<key>` reads
/// the event's metadata.
pub fn schema<'a>(list_names: impl IntoIterator<Item = &'a str>) -> Schema {
    let mut schema = Schema::new().metadata();
    for (i, (name, ty, _, _)) in CATALOGUE.iter().enumerate() {
        schema = schema.field(name, *ty, FieldId(i as u16));
    }
    for (name, id) in ENTITIES {
        schema = schema.entity(name, *id);
    }
    for list in list_names {
        schema = schema.list(list);
    }
    schema
}

/// Every field with its type name and meaning, for documentation and the API.
pub fn catalogue() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    CATALOGUE.iter().map(|(name, ty, _, doc)| {
        let ty = match ty {
            Type::Number => "number",
            Type::Text => "text",
            Type::Bool => "bool",
        };
        (*name, ty, *doc)
    })
}

/// The values one event offers its rules.
pub struct EventFacts<'a> {
    /// The event being decided.
    pub event: &'a Transaction,
    /// Its window entry.
    pub current: &'a Entry,
    /// Whether the entry is in the window or was late.
    pub placement: Placement,
    /// The user's window (after placing the event).
    pub window: &'a Window,
    /// The user's profile (before this event).
    pub profile: &'a Profile,
    /// Named lists.
    pub lists: &'a Lists,
    /// The active model's (score, anomaly) for this event, when a model is active.
    pub ml: Option<(f64, f64)>,
    /// What the event's shared entities said about their other users.
    pub entities: &'a EntityCounts,
}

impl EventFacts<'_> {
    /// The user's previous transaction in event time.
    pub(crate) fn previous(&self) -> Option<&Entry> {
        self.window.previous(self.current.time_ms, self.current.txn)
    }

    /// The user's previous 30 days, this event left out.
    pub(crate) fn past_30d(&self) -> crate::window::Stats {
        let at = self.current.time_ms;
        self.window
            .stats(Key::User, at, RETENTION_MS, self.current.txn, None)
    }

    /// Milliseconds since the previous transaction.
    pub(crate) fn since_last_ms(&self) -> Option<i64> {
        self.previous().map(|p| self.current.time_ms - p.time_ms)
    }

    /// Kilometres from the previous transaction's coordinates.
    pub(crate) fn distance_from_last(&self) -> Option<f64> {
        let (lat1, lon1) = self.previous()?.coords?;
        let (lat2, lon2) = self.current.coords?;
        Some(distance_km(
            lat1.into(),
            lon1.into(),
            lat2.into(),
            lon2.into(),
        ))
    }
}

fn text(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Null, Value::Text)
}

fn number(n: Option<f64>) -> Value<'static> {
    n.filter(|n| n.is_finite())
        .map_or(Value::Null, Value::Number)
}

impl Facts for EventFacts<'_> {
    fn field(&self, id: FieldId) -> Value<'_> {
        let Some((_, _, feature, _)) = CATALOGUE.get(id.0 as usize) else {
            return Value::Null;
        };
        let e = self.event;
        match feature {
            Feature::TransactionId => Value::Text(&e.transaction_id),
            Feature::UserId => Value::Text(&e.user_id),
            Feature::CardId => text(e.card_id.as_deref()),
            Feature::DeviceId => text(e.device_id.as_deref()),
            Feature::Ip => text(e.ip.as_deref()),
            Feature::Amount => Value::Number(e.amount.to_f64().unwrap_or(f64::MAX)),
            Feature::AmountBase => Value::Number(self.current.amount),
            Feature::Currency => Value::Text(&e.currency),
            Feature::MerchantId => text(e.merchant_id.as_deref()),
            Feature::MerchantName => text(e.merchant_name.as_deref()),
            Feature::MerchantCategory => text(e.merchant_category.as_deref()),
            Feature::Channel => text(e.channel.map(|c| c.as_str())),
            Feature::Type => text(e.kind.map(|k| k.as_str())),
            Feature::Country => text(e.location.as_ref().map(|l| l.country.as_str())),
            Feature::City => text(e.location.as_ref().and_then(|l| l.city.as_deref())),
            Feature::Lat => number(e.location.as_ref().and_then(|l| l.lat)),
            Feature::Lon => number(e.location.as_ref().and_then(|l| l.lon)),
            Feature::Hour => Value::Number(f64::from(e.timestamp.hour())),
            Feature::IsWeekend => {
                Value::Bool(matches!(e.timestamp.weekday(), Weekday::Sat | Weekday::Sun))
            }
            Feature::UserAvg30d => number(self.past_30d().avg()),
            Feature::UserMax30d => number(self.past_30d().max),
            Feature::UserCount30d => Value::Number(self.past_30d().count as f64),
            Feature::UserTxnCount => Value::Number(self.profile.txn_count as f64),
            Feature::UserHomeCountry => text(self.profile.home_country()),
            Feature::UserLastCountry => text(self.previous().and_then(Entry::country)),
            Feature::UserAccountAgeDays => number(
                self.profile
                    .first_seen_ms
                    .map(|t| (self.current.time_ms - t) as f64 / 86_400_000.0),
            ),
            Feature::MinutesSinceLast => {
                number(self.since_last_ms().map(|ms| ms as f64 / 60_000.0))
            }
            Feature::SecondsSinceLast => number(self.since_last_ms().map(|ms| ms as f64 / 1_000.0)),
            Feature::DistanceKmFromLast => number(self.distance_from_last()),
            Feature::SpeedKmhFromLast => {
                let hours = self.since_last_ms().map(|ms| ms as f64 / 3_600_000.0);
                match (self.distance_from_last(), hours) {
                    // Same instant: any distance at all is infinitely fast; report null
                    // rather than infinity, and let distance rules catch it.
                    (Some(d), Some(h)) if h > 0.0 => Value::Number(d / h),
                    _ => Value::Null,
                }
            }
            Feature::AmountRatioToAvg => {
                number(self.past_30d().avg().map(|avg| self.current.amount / avg))
            }
            Feature::IsNewDevice => Value::Bool(self.profile.is_new_device(self.current.device)),
            Feature::IsNewCard => Value::Bool(self.profile.is_new_card(self.current.card)),
            Feature::IsNewMerchant => {
                Value::Bool(self.profile.is_new_merchant(self.current.merchant))
            }
            Feature::IsNewCountry => Value::Bool(self.profile.is_new_country(self.current.country)),
            Feature::IsHomeCountry => match (self.profile.home_country(), self.current.country()) {
                (Some(home), Some(here)) => Value::Bool(home == here),
                _ => Value::Null,
            },
            Feature::MlScore => number(self.ml.map(|(score, _)| score)),
            Feature::MlAnomaly => number(self.ml.map(|(_, anomaly)| anomaly)),
        }
    }

    fn window(&self, entity: EntityId, agg: Agg, window_ms: u64) -> Value<'_> {
        let c = self.current;
        let key = match entity {
            ENTITY_USER => Key::User,
            ENTITY_CARD if c.card != 0 => Key::Card(c.card),
            ENTITY_DEVICE if c.device != 0 => Key::Device(c.device),
            ENTITY_MERCHANT if c.merchant != 0 => Key::Merchant(c.merchant),
            ENTITY_IP if c.ip != 0 => Key::Ip(c.ip),
            _ => return Value::Null,
        };
        let span = i64::try_from(window_ms).unwrap_or(i64::MAX);
        let extra = (self.placement == Placement::Late).then_some(c);
        let stats = self.window.stats(key, c.time_ms, span, 0, extra);
        match agg {
            Agg::Count => Value::Number(stats.count as f64),
            Agg::Sum => Value::Number(stats.sum),
            Agg::Avg => number(stats.avg()),
            Agg::Min => number(stats.min),
            Agg::Max => number(stats.max),
        }
    }

    fn distinct_users(&self, entity: EntityId, window_ms: u64) -> Value<'_> {
        if entity == ENTITY_USER {
            return Value::Number(1.0);
        }
        let Some(kind) = entity_kind(entity) else {
            return Value::Null;
        };
        let span = i64::try_from(window_ms).unwrap_or(i64::MAX);
        self.entities
            .distinct_users(kind, self.current.time_ms, span)
            .map_or(Value::Null, |n| Value::Number(n as f64))
    }

    fn list_contains(&self, list: &str, value: &str) -> bool {
        self.lists.contains(list, value)
    }

    fn metadata(&self, key: &str) -> Value<'_> {
        match self.event.metadata.as_ref().and_then(|m| m.get(key)) {
            Some(serde_json::Value::String(s)) => Value::Text(s),
            Some(serde_json::Value::Number(n)) => number(n.as_f64()),
            Some(serde_json::Value::Bool(b)) => Value::Bool(*b),
            _ => Value::Null,
        }
    }
}
