//! Who else used a flagged decision's device or card. A stream forwards only review and
//! decline decisions, so the first user of a pair — approved, alone on the device at the time —
//! would never reach the page, and a two-user ring would show as one user. Each stream
//! therefore remembers its latest decisions of every outcome and attaches, to each flagged
//! one, the other users' latest decisions on the same device or card.

use sentinel_event::Decision;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;

/// Decisions with a device or card one stream remembers (shared, not copied).
const REMEMBERED: usize = 2_048;

/// Other users attached to one flagged decision at most.
const MAX_LINKED: usize = 8;

/// One stream's memory of recent decisions.
#[derive(Default)]
pub(super) struct Links {
    recent: VecDeque<Arc<Decision>>,
}

impl Links {
    /// The latest remembered decision of each other user on `d`'s device or card, newest
    /// first, as compact summaries (`id, user, outcome, score, rules, card, device, at`).
    pub(super) fn linked(&self, d: &Decision) -> Value {
        let (device, card) = (&d.event.device_id, &d.event.card_id);
        let mut users: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for other in self.recent.iter().rev() {
            let shares = (device.is_some() && other.event.device_id == *device)
                || (card.is_some() && other.event.card_id == *card);
            if !shares || other.user_id == d.user_id || users.contains(&other.user_id.as_str()) {
                continue;
            }
            users.push(&other.user_id);
            out.push(brief(other));
            if out.len() == MAX_LINKED {
                break;
            }
        }
        Value::Array(out)
    }

    /// Remembers `d` if it has a device or card, forgetting the oldest beyond the bound.
    pub(super) fn remember(&mut self, d: &Arc<Decision>) {
        if d.event.device_id.is_none() && d.event.card_id.is_none() {
            return;
        }
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back(Arc::clone(d));
    }
}

fn brief(d: &Decision) -> Value {
    json!({
        "id": d.transaction_id,
        "user": d.user_id,
        "outcome": d.outcome.as_str(),
        "score": d.score,
        "rules": d.reasons.iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(),
        "card": d.event.card_id,
        "device": d.event.device_id,
        "at": d.decided_at.timestamp_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str, user: &str, outcome: &str, device: &str, card: &str) -> Arc<Decision> {
        Arc::new(
            serde_json::from_value(json!({
                "transaction_id": id, "user_id": user, "outcome": outcome,
                "score": if outcome == "approve" { 0.0 } else { 0.5 },
                "reasons": [], "shadow_hits": [], "rule_set_version": 1, "user_seq": 1,
                "decided_at": "2026-11-22T10:00:00Z", "latency_us": 100,
                "event": {
                    "transaction_id": id, "user_id": user, "amount": "150.00", "currency": "USD",
                    "timestamp": "2026-11-22T10:00:00Z", "device_id": device, "card_id": card,
                },
            }))
            .unwrap(),
        )
    }

    #[test]
    fn a_flagged_decision_carries_the_other_users_of_its_device_or_card() {
        let mut links = Links::default();
        for d in [
            decision(
                "r1",
                "user-ring-1",
                "approve",
                "device-shared-123",
                "card-ring-1",
            ),
            decision("o1", "other", "approve", "dev-other", "card-other"),
            decision("k1", "card-friend", "approve", "dev-friend", "card-ring-2"),
        ] {
            links.remember(&d);
        }
        let second = decision(
            "r2",
            "user-ring-2",
            "review",
            "device-shared-123",
            "card-ring-2",
        );
        let linked = links.linked(&second);
        let users: Vec<&str> = linked
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["user"].as_str().unwrap())
            .collect();
        assert_eq!(users, ["card-friend", "user-ring-1"], "newest first");
        assert_eq!(linked[1]["outcome"], "approve");
        assert_eq!(linked[1]["device"], "device-shared-123");
        assert_eq!(linked[1]["id"], "r1");

        // The user's own earlier decisions are not links, and each other user appears once.
        links.remember(&second);
        links.remember(&decision(
            "r1b",
            "user-ring-1",
            "approve",
            "device-shared-123",
            "card-ring-1",
        ));
        let again = decision("r3", "user-ring-2", "review", "device-shared-123", "card-x");
        let linked = links.linked(&again);
        assert_eq!(linked.as_array().unwrap().len(), 1, "{linked}");
        assert_eq!(linked[0]["id"], "r1b");
    }

    #[test]
    fn memory_is_bounded() {
        let mut links = Links::default();
        for i in 0..REMEMBERED + 10 {
            links.remember(&decision(
                &format!("t{i}"),
                &format!("u{i}"),
                "approve",
                "d",
                "c",
            ));
        }
        assert_eq!(links.recent.len(), REMEMBERED);
        let linked = links.linked(&decision("x", "x", "review", "d", "c"));
        assert_eq!(linked.as_array().unwrap().len(), MAX_LINKED);
    }
}
