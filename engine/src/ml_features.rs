//! The model's feature vector for one event: the single extraction code path shared by live
//! scoring (`UserState::decide`) and training (`UserState::features`).
//!
//! The features are one table of (name, function), [`FEATURES`]; its names are checked against
//! `sentinel_model::FEATURE_NAMES` at compile time, so a name cannot drift from its value. The
//! functions read [`Inputs`], computed once per event.
//!
//! Everything describes the event against the state *before* it: the holder's window counts
//! and sums leave the event out; the merchant and device figures end a label delay before the
//! event ([`EntityRisk`]). Missing values get neutral numbers (no history: ratio 1, a month
//! since the last transaction), so every feature is always finite.

use crate::entity_risk::{EntityRisk, N_RISK_VALUES};
use crate::features::{EventFacts, RETENTION_MS};
use crate::window::{Key, Stats};
use chrono::{Datelike, Timelike, Weekday};
use sentinel_event::Channel;
use sentinel_event::Transaction;
use sentinel_model::{FeatureVector, FEATURE_NAMES, N_FEATURES};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Caps keep absurd inputs (an amount of 10^30) from dominating a standardized feature.
const MAX_AMOUNT: f64 = 1e9;
const MAX_RATIO: f64 = 1e4;

const HIGH_RISK_CATEGORIES: [&str; 6] = ["gambling", "crypto", "7995", "6051", "4829", "5967"];
const TRAVEL_ELECTRONICS_CATEGORIES: [&str; 6] =
    ["travel", "electronics", "4511", "7011", "3000", "5732"];
const EVERYDAY_CATEGORIES: [&str; 11] = [
    "grocery",
    "restaurants",
    "fuel",
    "retail",
    "pharmacy",
    "entertainment",
    "5411",
    "5812",
    "5541",
    "5912",
    "5311",
];

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn in_group(category: Option<&str>, group: &[&str]) -> f64 {
    flag(category.is_some_and(|c| group.iter().any(|g| g.eq_ignore_ascii_case(c))))
}

/// What the feature functions read: the event's facts and the values several features share,
/// computed once.
pub(crate) struct Inputs<'a> {
    facts: &'a EventFacts<'a>,
    /// The amount in the node's base currency (the window entry's), capped: `amount`,
    /// `log_amount` and every amount figure compare across currencies.
    amount: f64,
    /// The holder's transactions before this one over 5 minutes, 1 hour, 1, 7 and 30 days.
    past: [Stats; 5],
    since_last_s: f64,
    distance_km: f64,
    hour_angle: f64,
    /// Merchant then device: counts over 1/7/30 days, then fraud shares (see `EntityRisk`).
    risk: [f64; N_RISK_VALUES],
}

const M5: usize = 0;
const H1: usize = 1;
const D1: usize = 2;
const D7: usize = 3;
const D30: usize = 4;
const SPANS_MS: [i64; 5] = [5 * MINUTE_MS, HOUR_MS, DAY_MS, 7 * DAY_MS, 30 * DAY_MS];

impl Inputs<'_> {
    fn event(&self) -> &Transaction {
        self.facts.event
    }

    fn ratio(&self, base: Option<f64>) -> f64 {
        match base {
            Some(b) if b > 0.0 => (self.amount / b).min(MAX_RATIO),
            _ => 1.0,
        }
    }

    fn count(&self, span: usize) -> f64 {
        self.past[span].count as f64
    }

    fn log_avg(&self, span: usize) -> f64 {
        self.past[span]
            .avg()
            .unwrap_or(0.0)
            .clamp(0.0, MAX_AMOUNT)
            .ln_1p()
    }

    fn log_sum(&self, span: usize) -> f64 {
        self.past[span].sum.clamp(0.0, MAX_AMOUNT).ln_1p()
    }

    fn channel(&self, channel: Channel) -> f64 {
        flag(self.event().channel == Some(channel))
    }

    fn category(&self, group: &[&str]) -> f64 {
        in_group(self.event().merchant_category.as_deref(), group)
    }

    fn speed_kmh(&self) -> f64 {
        // Same instant: treat as one second, so a jump is very fast rather than infinite.
        (self.distance_km / (self.since_last_s.max(1.0) / 3_600.0)).min(1e6)
    }
}

/// One feature: its name (as in `sentinel_model::FEATURE_NAMES`) and how it is computed.
type Feature = (&'static str, fn(&Inputs<'_>) -> f64);

/// Every model feature, in vector order.
const FEATURES: [Feature; N_FEATURES] = [
    ("amount", |i| i.amount),
    ("log_amount", |i| i.amount.ln_1p()),
    ("amount_ratio_to_avg_30d", |i| i.ratio(i.past[D30].avg())),
    ("amount_ratio_to_max_30d", |i| i.ratio(i.past[D30].max)),
    ("amount_ratio_to_avg_7d", |i| i.ratio(i.past[D7].avg())),
    ("count_5m", |i| i.count(M5)),
    ("count_1h", |i| i.count(H1)),
    ("count_1d", |i| i.count(D1)),
    ("count_7d", |i| i.count(D7)),
    ("count_30d", |i| i.count(D30)),
    ("log_avg_amount_1d", |i| i.log_avg(D1)),
    ("log_avg_amount_7d", |i| i.log_avg(D7)),
    ("log_avg_amount_30d", |i| i.log_avg(D30)),
    ("log_sum_1h", |i| i.log_sum(H1)),
    ("log_sum_1d", |i| i.log_sum(D1)),
    ("log_seconds_since_last", |i| i.since_last_s.ln_1p()),
    ("log_distance_km_from_last", |i| i.distance_km.ln_1p()),
    ("log_speed_kmh_from_last", |i| i.speed_kmh().ln_1p()),
    ("is_new_device", |i| {
        flag(i.facts.profile.is_new_device(i.facts.current.device))
    }),
    ("is_new_merchant", |i| {
        flag(i.facts.profile.is_new_merchant(i.facts.current.merchant))
    }),
    ("is_new_country", |i| {
        flag(i.facts.profile.is_new_country(i.facts.current.country))
    }),
    ("is_new_card", |i| {
        flag(i.facts.profile.is_new_card(i.facts.current.card))
    }),
    ("is_away_from_home", |i| {
        match (i.facts.profile.home_country(), i.facts.current.country()) {
            (Some(home), Some(here)) => flag(home != here),
            _ => 0.0,
        }
    }),
    ("log_account_age_days", |i| {
        let at = i.facts.current.time_ms;
        i.facts
            .profile
            .first_seen_ms
            .map_or(0.0, |t| (at - t).max(0) as f64 / DAY_MS as f64)
            .ln_1p()
    }),
    ("hour_sin", |i| i.hour_angle.sin()),
    ("hour_cos", |i| i.hour_angle.cos()),
    ("is_weekend", |i| {
        flag(matches!(
            i.event().timestamp.weekday(),
            Weekday::Sat | Weekday::Sun
        ))
    }),
    ("channel_pos", |i| i.channel(Channel::Pos)),
    ("channel_web", |i| i.channel(Channel::Web)),
    ("channel_mobile", |i| i.channel(Channel::Mobile)),
    ("channel_atm", |i| i.channel(Channel::Atm)),
    ("category_high_risk", |i| i.category(&HIGH_RISK_CATEGORIES)),
    ("category_travel_electronics", |i| {
        i.category(&TRAVEL_ELECTRONICS_CATEGORIES)
    }),
    ("category_everyday", |i| i.category(&EVERYDAY_CATEGORIES)),
    ("log_merchant_txn_count_1d", |i| i.risk[0].ln_1p()),
    ("log_merchant_txn_count_7d", |i| i.risk[1].ln_1p()),
    ("log_merchant_txn_count_30d", |i| i.risk[2].ln_1p()),
    ("merchant_fraud_share_1d", |i| i.risk[3]),
    ("merchant_fraud_share_7d", |i| i.risk[4]),
    ("merchant_fraud_share_30d", |i| i.risk[5]),
    ("log_device_txn_count_1d", |i| i.risk[6].ln_1p()),
    ("log_device_txn_count_7d", |i| i.risk[7].ln_1p()),
    ("log_device_txn_count_30d", |i| i.risk[8].ln_1p()),
    ("device_fraud_share_1d", |i| i.risk[9]),
    ("device_fraud_share_7d", |i| i.risk[10]),
    ("device_fraud_share_30d", |i| i.risk[11]),
];

const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn names_match() -> bool {
    let mut i = 0;
    while i < N_FEATURES {
        if !same_text(FEATURES[i].0, FEATURE_NAMES[i]) {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    names_match(),
    "ml_features::FEATURES must list sentinel_model::FEATURE_NAMES in order"
);

/// Fills `out` (in `sentinel_model::FEATURE_NAMES` order) for the event in `facts`, with the
/// merchant and device figures `risk` shows at the event's time.
pub fn extract(facts: &EventFacts<'_>, risk: &EntityRisk, out: &mut FeatureVector) {
    let c = facts.current;
    let at = c.time_ms;
    let past = facts.window.stats_over(Key::User, at, SPANS_MS, c.txn);
    let since_last_s = facts
        .since_last_ms()
        .map_or(RETENTION_MS, |ms| ms.max(0))
        .min(RETENTION_MS) as f64
        / 1_000.0;
    let e = facts.event;
    let hour = f64::from(e.timestamp.hour()) + f64::from(e.timestamp.minute()) / 60.0;
    let inputs = Inputs {
        facts,
        amount: c.amount.clamp(0.0, MAX_AMOUNT),
        past,
        since_last_s,
        distance_km: facts.distance_from_last().unwrap_or(0.0),
        hour_angle: hour / 24.0 * std::f64::consts::TAU,
        risk: risk.features(c.merchant, c.device, at),
    };
    for (slot, (_, value)) in out.iter_mut().zip(FEATURES) {
        let v = value(&inputs);
        *slot = if v.is_finite() { v } else { 0.0 };
    }
}
