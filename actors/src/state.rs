//! One user's state and the pure, synchronous decision step applied to it.
//!
//! Live scoring and replay (restore, backtests) run the same `place` + `record` code, so replaying
//! the stored history of a user rebuilds exactly the state live traffic built.

use crate::features::{EventFacts, RETENTION_MS};
use crate::hash::{id_hash, opt_hash};
use crate::policy::Policy;
use crate::profile::Profile;
use crate::window::{Entry, Placement, Window};
use chrono::Utc;
use rust_decimal::prelude::ToPrimitive;
use sentinel_event::{Decision, Reason, Transaction};
use sentinel_rules::Mode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// Everything a user actor knows about its user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Event-time windows.
    pub window: Window,
    /// Long-lived profile.
    pub profile: Profile,
    /// `user_seq` of the last event folded in.
    pub seq: u64,
}

/// The window entry for an event.
pub fn entry_of(event: &Transaction) -> Entry {
    let location = event.location.as_ref();
    let country = location
        .and_then(|l| <[u8; 2]>::try_from(l.country.as_bytes()).ok())
        .unwrap_or([0, 0]);
    Entry {
        time_ms: event.event_time_ms(),
        amount: event.amount.to_f64().unwrap_or(f64::MAX),
        txn: id_hash(&event.transaction_id),
        card: opt_hash(event.card_id.as_deref()),
        device: opt_hash(event.device_id.as_deref()),
        merchant: opt_hash(event.merchant_id.as_deref()),
        ip: opt_hash(event.ip.as_deref()),
        country,
        coords: location.and_then(|l| Some((l.lat? as f32, l.lon? as f32))),
    }
}

impl UserState {
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

    /// Decides one event and folds it into the state.
    pub fn decide(
        &mut self,
        event: Arc<Transaction>,
        policy: &Policy,
        lateness_ms: i64,
        received: Instant,
    ) -> Decision {
        let entry = entry_of(&event);
        let placement = self.window.insert(entry, lateness_ms, RETENTION_MS);
        let facts = EventFacts {
            event: &event,
            current: &entry,
            placement,
            window: &self.window,
            profile: &self.profile,
            lists: &policy.lists,
        };
        let fired = policy.rules.evaluate(&facts);
        let mut reasons = Vec::new();
        let mut shadow_hits = Vec::new();
        for rule in &fired {
            let reason = Reason {
                rule: rule.def.name.clone(),
                action: rule.def.action,
                values: rule.expr.explain(&facts),
            };
            crate::metrics::rule_hit(&rule.def.name, rule.def.mode);
            if rule.def.mode == Mode::Shadow {
                shadow_hits.push(reason);
            } else {
                reasons.push(reason);
            }
        }
        let (outcome, score) = policy.thresholds.decide(reasons.iter().map(|r| &r.action));
        self.profile.record(&entry);
        self.seq += 1;
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
        }
    }

    /// Folds an already-decided event back in, as `decide` did when it was live.
    pub fn replay(&mut self, decision: &Decision, lateness_ms: i64) {
        if decision.user_seq <= self.seq {
            return;
        }
        let entry = entry_of(&decision.event);
        self.window.insert(entry, lateness_ms, RETENTION_MS);
        self.profile.record(&entry);
        self.seq = decision.user_seq;
    }
}
