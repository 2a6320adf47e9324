//! The model's feature vector for one event: the single extraction code path shared by live
//! scoring (`UserState::decide`) and training (`UserState::features`).
//!
//! Everything describes the event against the user's state *before* it: window counts and sums
//! leave the event out; the entity-risk shares come from analyst labels old enough for the
//! event to see ([`LabelRisk`]). Missing values get neutral numbers (no history: ratio 1, a month since
//! the last transaction), so every feature is always finite.

use crate::features::{EventFacts, RETENTION_MS};
use crate::label_risk::LabelRisk;
use crate::window::Key;
use chrono::{Datelike, Timelike, Weekday};
use sentinel_event::Channel;
use sentinel_model::{FeatureVector, N_FEATURES};

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

/// Fills `out` (in `sentinel_model::FEATURE_NAMES` order) for the event in `facts`, with the
/// entity risk that `labels` shows at the event's time.
pub fn extract(facts: &EventFacts<'_>, labels: &LabelRisk, out: &mut FeatureVector) {
    let c = facts.current;
    let e = facts.event;
    let at = c.time_ms;
    let past = |span: i64| facts.window.stats(Key::User, at, span, c.txn, None);
    let month = facts.past_30d();
    let (m5, h1, d1) = (past(5 * MINUTE_MS), past(HOUR_MS), past(DAY_MS));
    let amount = c.amount.clamp(0.0, MAX_AMOUNT);
    let ratio = |base: Option<f64>| match base {
        Some(b) if b > 0.0 => (amount / b).min(MAX_RATIO),
        _ => 1.0,
    };
    let since_last_s = facts
        .since_last_ms()
        .map_or(RETENTION_MS, |ms| ms.max(0))
        .min(RETENTION_MS) as f64
        / 1_000.0;
    let distance = facts.distance_from_last().unwrap_or(0.0);
    // Same instant: treat as one second, so a jump is very fast rather than infinite.
    let speed = distance / (since_last_s.max(1.0) / 3_600.0);
    let p = facts.profile;
    let away = match (p.home_country(), c.country()) {
        (Some(home), Some(here)) => home != here,
        _ => false,
    };
    let age_days = p
        .first_seen_ms
        .map_or(0.0, |t| (at - t).max(0) as f64 / DAY_MS as f64);
    let hour = f64::from(e.timestamp.hour()) + f64::from(e.timestamp.minute()) / 60.0;
    let angle = hour / 24.0 * std::f64::consts::TAU;
    let channel = e.channel;
    let category = e.merchant_category.as_deref();
    let [m1, m7, m30, d1_share, d7_share, d30_share] = labels.shares(c.merchant, c.device, at);

    let values: [f64; N_FEATURES] = [
        amount,
        amount.ln_1p(),
        ratio(month.avg()),
        ratio(month.max),
        (month.count as f64).ln_1p(),
        m5.count as f64,
        h1.count as f64,
        d1.count as f64,
        h1.sum.clamp(0.0, MAX_AMOUNT).ln_1p(),
        d1.sum.clamp(0.0, MAX_AMOUNT).ln_1p(),
        since_last_s.ln_1p(),
        distance.ln_1p(),
        speed.min(1e6).ln_1p(),
        flag(p.is_new_device(c.device)),
        flag(p.is_new_merchant(c.merchant)),
        flag(p.is_new_country(c.country)),
        flag(p.is_new_card(c.card)),
        flag(away),
        age_days.ln_1p(),
        angle.sin(),
        angle.cos(),
        flag(matches!(e.timestamp.weekday(), Weekday::Sat | Weekday::Sun)),
        flag(channel == Some(Channel::Pos)),
        flag(channel == Some(Channel::Web)),
        flag(channel == Some(Channel::Mobile)),
        flag(channel == Some(Channel::Atm)),
        in_group(category, &HIGH_RISK_CATEGORIES),
        in_group(category, &TRAVEL_ELECTRONICS_CATEGORIES),
        in_group(category, &EVERYDAY_CATEGORIES),
        m1,
        m7,
        m30,
        d1_share,
        d7_share,
        d30_share,
    ];
    for (slot, v) in out.iter_mut().zip(values) {
        *slot = if v.is_finite() { v } else { 0.0 };
    }
}
