//! One user's state and the pure, synchronous decision step applied to it.
//!
//! Live scoring and replay (restore, backtests) run the same `place` + `record` code, so replaying
//! the stored history of a user rebuilds exactly the state live traffic built.

use crate::entities::{EntityCounts, EntityKind};
use crate::entity_risk::EntityRisk;
use crate::features::{EventFacts, RETENTION_MS};
use crate::hash::{id_hash, opt_hash};
use crate::ledger::Ledger;
use crate::ml_features;
use crate::policy::{Lists, Policy};
use crate::profile::Profile;
use crate::window::{Entry, Placement, Window};
use chrono::Utc;
use rust_decimal::prelude::ToPrimitive;
use sentinel_event::{Decision, Reason, Transaction};
use sentinel_model::{FeatureVector, N_FEATURES};
use sentinel_rules::{Expr, Mode, OwnedValue};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// Everything a user actor knows about its user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Event-time windows.
    pub window: Window,
    /// Long-lived profile.
    pub profile: Profile,
    /// `user_seq` of the last event folded in.
    pub seq: u64,
    /// Money moved per currency by the decisions folded in. `None` only in a state read from a
    /// snapshot written before ledgers were kept: restoring rebuilds it from the store.
    #[serde(default)]
    pub ledger: Option<Ledger>,
}

impl Default for UserState {
    fn default() -> Self {
        UserState {
            window: Window::default(),
            profile: Profile::default(),
            seq: 0,
            ledger: Some(Ledger::default()),
        }
    }
}

/// The window entry for an event.
pub fn entry_of(event: &Transaction) -> Entry {
    let location = event.location.as_ref();
    let country = location
        .and_then(|l| <[u8; 2]>::try_from(l.country.as_bytes()).ok())
        .unwrap_or([0, 0]);
    Entry {
        time_ms: event.event_time_ms(),
        // Windows, profiles and model features compare amounts across currencies.
        amount: event.amount_base().to_f64().unwrap_or(f64::MAX),
        txn: id_hash(&event.transaction_id),
        card: opt_hash(event.card_id.as_deref()),
        device: opt_hash(event.device_id.as_deref()),
        merchant: opt_hash(event.merchant_id.as_deref()),
        ip: opt_hash(event.ip.as_deref()),
        country,
        coords: location.and_then(|l| Some((l.lat? as f32, l.lon? as f32))),
    }
}

/// The event's shared entities as (kind, id hash), zero where absent.
pub fn entities_of(entry: &Entry) -> [(EntityKind, u64); 4] {
    [
        (EntityKind::Card, entry.card),
        (EntityKind::Device, entry.device),
        (EntityKind::Merchant, entry.merchant),
        (EntityKind::Ip, entry.ip),
    ]
}

/// A readable summary of a user's live state, for analysts (deserializable: it crosses
/// cluster nodes when the user's actor lives elsewhere).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    /// Events folded in so far (the last `user_seq`).
    pub seq: u64,
    /// Transactions ever seen.
    pub txn_count: u64,
    /// Event time of the first transaction.
    pub first_seen: Option<chrono::DateTime<Utc>>,
    /// Latest event time seen.
    pub last_event_time: Option<chrono::DateTime<Utc>>,
    /// Country of the latest transaction in the windows.
    pub last_country: Option<String>,
    /// Coordinates of the latest transaction, when it had them.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<f32>>))]
    pub last_coordinates: Option<(f32, f32)>,
    /// The country the user transacts in most.
    pub home_country: Option<String>,
    /// Countries with transaction counts.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<serde_json::Value>>))]
    pub countries: Vec<(String, u32)>,
    /// Distinct devices remembered.
    pub known_devices: usize,
    /// Distinct cards remembered.
    pub known_cards: usize,
    /// Distinct merchants remembered.
    pub known_merchants: usize,
    /// Count, sum, average, min and max of amounts per window, ending at the latest event.
    pub windows: Vec<WindowView>,
    /// Money moved per currency by the user's approved and reviewed transactions (declines
    /// moved none); `None` while unknown.
    #[serde(default)]
    pub ledger: Option<Ledger>,
}

/// One window's aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowView {
    /// `1m`, `5m`, `1h`, `24h`, `7d` or `30d`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub window: std::borrow::Cow<'static, str>,
    /// Transactions.
    pub count: u64,
    /// Sum of amounts.
    pub sum: f64,
    /// Average amount.
    pub avg: Option<f64>,
    /// Smallest amount.
    pub min: Option<f64>,
    /// Largest amount.
    pub max: Option<f64>,
}

impl UserState {
    /// The analyst's view of this state.
    pub fn view(&self) -> UserView {
        use chrono::TimeZone;
        const WINDOWS: [(&str, i64); 6] = [
            ("1m", 60_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("24h", 86_400_000),
            ("7d", 7 * 86_400_000),
            ("30d", 30 * 86_400_000),
        ];
        let at = self.window.watermark_ms();
        let last = at.and_then(|t| self.window.previous(t, 0));
        let (known_devices, known_cards, known_merchants) = self.profile.known_counts();
        let time = |ms: i64| Utc.timestamp_millis_opt(ms).single();
        UserView {
            seq: self.seq,
            txn_count: self.profile.txn_count,
            first_seen: self.profile.first_seen_ms.and_then(time),
            last_event_time: at.and_then(time),
            last_country: last.and_then(|e| e.country().map(str::to_owned)),
            last_coordinates: last.and_then(|e| e.coords),
            home_country: self.profile.home_country().map(str::to_owned),
            countries: self.profile.countries(),
            known_devices,
            known_cards,
            known_merchants,
            windows: WINDOWS
                .iter()
                .map(|(name, span)| {
                    let s = at.map_or(crate::window::Stats::default(), |t| {
                        self.window
                            .stats(crate::window::Key::User, t, *span, 0, None)
                    });
                    WindowView {
                        window: std::borrow::Cow::Borrowed(name),
                        count: s.count,
                        sum: s.sum,
                        avg: s.avg(),
                        min: s.min,
                        max: s.max,
                    }
                })
                .collect(),
            ledger: self.ledger.clone(),
        }
    }

    /// Whether this event was already folded into the state (a redelivery).
    pub fn has_seen(&self, event: &Transaction) -> bool {
        self.window.contains_txn(id_hash(&event.transaction_id))
    }

    /// Whether an event this old could have left the window, so only the store can tell
    /// whether it was decided before.
    pub fn beyond_memory(&self, event: &Transaction, lateness_ms: i64) -> bool {
        self.window
            .watermark_ms()
            .is_some_and(|w| event.event_time_ms() < w - RETENTION_MS - lateness_ms)
    }

    /// Decides one event and folds it into the state, without shared-entity counts (rules
    /// on `distinct_users` see them as unknown and do not fire): backtests replay one user at
    /// a time, so the other users' uses are not known there.
    pub fn decide(
        &mut self,
        event: Arc<Transaction>,
        policy: &Policy,
        lateness_ms: i64,
        received: Instant,
    ) -> Decision {
        self.decide_with(
            event,
            policy,
            &EntityCounts::default(),
            lateness_ms,
            received,
        )
    }

    /// Decides one event given what its shared entities said, and folds it into the state.
    pub fn decide_with(
        &mut self,
        event: Arc<Transaction>,
        policy: &Policy,
        entities: &EntityCounts,
        lateness_ms: i64,
        received: Instant,
    ) -> Decision {
        let entry = entry_of(&event);
        let placement = self.window.insert(entry, lateness_ms, RETENTION_MS);
        let mut facts = EventFacts {
            event: &event,
            current: &entry,
            placement,
            window: &self.window,
            profile: &self.profile,
            lists: &policy.lists,
            ml: None,
            entities,
        };
        let scored = policy.models.score(&facts);
        facts.ml = scored.map(|s| (s.champion.score, s.champion.anomaly));
        let fired = policy.rules.evaluate(&facts);
        let mut reasons = Vec::new();
        let mut shadow_hits = Vec::new();
        for rule in &fired {
            let reason = Reason {
                rule: rule.def.name.clone(),
                action: rule.def.action,
                values: rule.expr.explain(&facts),
            };
            if rule.def.mode == Mode::Shadow {
                shadow_hits.push(reason);
            } else {
                reasons.push(reason);
            }
        }
        let (outcome, score) = policy.thresholds.decide(reasons.iter().map(|r| &r.action));
        self.profile.record(&entry);
        self.seq += 1;
        if let Some(ledger) = &mut self.ledger {
            ledger.record(&event, outcome);
        }
        Decision {
            transaction_id: event.transaction_id.clone(),
            user_id: event.user_id.clone(),
            outcome,
            score,
            reasons,
            shadow_hits,
            rule_set_version: policy.rules.version,
            user_seq: self.seq,
            late: placement == Placement::Late,
            decided_at: Utc::now(),
            latency_us: received.elapsed().as_micros() as u64,
            event,
            ml: scored.and_then(|s| policy.models.record(&s)),
        }
    }

    /// The model features of `event` as the user's next event, folding it into the state as
    /// `decide` does: the training path, computing exactly what live scoring computes.
    pub fn features(
        &mut self,
        event: &Transaction,
        risk: &EntityRisk,
        lateness_ms: i64,
    ) -> FeatureVector {
        self.next_event(event, &Lists::default(), lateness_ms, |facts| {
            let mut features = [0.0; N_FEATURES];
            ml_features::extract(facts, risk, &mut features);
            features
        })
    }

    /// Places `event` as the user's next event, lets `look` see its facts, then folds it in.
    fn next_event<R>(
        &mut self,
        event: &Transaction,
        lists: &Lists,
        lateness_ms: i64,
        look: impl FnOnce(&EventFacts<'_>) -> R,
    ) -> R {
        let entry = entry_of(event);
        let placement = self.window.insert(entry, lateness_ms, RETENTION_MS);
        let facts = EventFacts {
            event,
            current: &entry,
            placement,
            window: &self.window,
            profile: &self.profile,
            lists,
            ml: None,
            entities: &EntityCounts::default(),
        };
        let result = look(&facts);
        self.profile.record(&entry);
        self.seq += 1;
        result
    }

    /// Folds an already-decided event back in, as `decide` did when it was live.
    pub fn replay(&mut self, decision: &Decision, lateness_ms: i64) {
        if decision.user_seq <= self.seq {
            return;
        }
        self.observe(&decision.event, lateness_ms);
        self.seq = decision.user_seq;
        if let Some(ledger) = &mut self.ledger {
            ledger.record(&decision.event, decision.outcome);
        }
    }

    /// Folds an event in without deciding it (building a user's history for a rule test).
    pub fn observe(&mut self, event: &Transaction, lateness_ms: i64) {
        let entry = entry_of(event);
        self.window.insert(entry, lateness_ms, RETENTION_MS);
        self.profile.record(&entry);
        self.seq += 1;
    }

    /// Evaluates one expression on `event` as if it were the user's next event under
    /// `policy` (its lists and models), returning whether it matches and every value it looked
    /// at. The event is folded into the state.
    pub fn explain(
        &mut self,
        event: &Transaction,
        expr: &Expr,
        policy: &Policy,
        lateness_ms: i64,
    ) -> (bool, Vec<(String, OwnedValue)>) {
        self.next_event(event, &policy.lists, lateness_ms, |facts| {
            let scored = policy.models.score(facts);
            let facts = EventFacts {
                ml: scored.map(|s| (s.champion.score, s.champion.anomaly)),
                ..*facts
            };
            (expr.matches(&facts), expr.explain(&facts))
        })
    }
}
