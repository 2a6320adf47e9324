//! Which alerts a decision owes: routes matched against the decision, duplicates across
//! routes merged, and throttling (one alert per user per rule per sink per window).

use crate::config::{AlertsConfig, RouteConfig};
use crate::metrics as m;
use sentinel_event::{Decision, Outcome};
use sentinel_store::outbox::{AlertRecord, AlertRouting};
use sentinel_store::RecordWrite;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Throttle entries kept before expired ones are swept out (bounds the memory).
const THROTTLE_SWEEP_AT: usize = 100_000;

/// Routes decisions to sinks; the store writer calls it for every new decision.
pub struct AlertRouter {
    routes: Vec<RouteConfig>,
    throttle: Option<Duration>,
    /// (sink, user, rule) → when the last alert's outbox write committed.
    last_sent: Mutex<HashMap<(String, String, String), Instant>>,
}

impl AlertRouter {
    /// A router for the configured routes.
    pub fn new(config: &AlertsConfig) -> AlertRouter {
        AlertRouter {
            routes: config.routes.clone(),
            throttle: (config.throttle_secs > 0).then(|| Duration::from_secs(config.throttle_secs)),
            last_sent: Mutex::default(),
        }
    }

    /// The names of the sinks `decision` should go to, each once, in route order.
    pub fn sinks_for<'a>(&'a self, decision: &Decision) -> Vec<&'a str> {
        let mut sinks: Vec<&str> = Vec::new();
        for route in self.routes.iter().filter(|r| matches(r, decision)) {
            for sink in &route.sinks {
                if !sinks.contains(&sink.as_str()) {
                    sinks.push(sink);
                }
            }
        }
        sinks
    }

    /// The throttle key of an alert of `decision` to `sink`.
    fn key(sink: &str, decision: &Decision) -> (String, String, String) {
        let rule = decision
            .reasons
            .first()
            .map_or("score", |r| r.rule.as_str());
        (sink.to_owned(), decision.user_id.clone(), rule.to_owned())
    }

    /// False when an alert for the same user and rule to `sink` was stored within the window.
    /// Only a committed alert takes the slot ([`AlertRouting::committed`]): a batch that fails,
    /// or a decision that turns out to be a duplicate, leaves it free for the retry.
    fn admit(&self, sink: &str, decision: &Decision, now: Instant) -> bool {
        let Some(window) = self.throttle else {
            return true;
        };
        // A poisoned lock only means another thread panicked mid-update; the map is still usable.
        let last_sent = self.last_sent.lock().unwrap_or_else(|e| e.into_inner());
        last_sent
            .get(&Self::key(sink, decision))
            .is_none_or(|at| now.duration_since(*at) >= window)
    }

    /// Takes the throttle slot of a stored alert.
    fn taken(&self, sink: &str, decision: &Decision, now: Instant) {
        let Some(window) = self.throttle else {
            return;
        };
        let mut last_sent = self.last_sent.lock().unwrap_or_else(|e| e.into_inner());
        if last_sent.len() >= THROTTLE_SWEEP_AT {
            last_sent.retain(|_, at| now.duration_since(*at) < window);
        }
        last_sent.insert(Self::key(sink, decision), now);
    }
}

impl AlertRouting for AlertRouter {
    fn alerts_for(&self, decision: &Decision) -> Vec<RecordWrite> {
        let sinks = self.sinks_for(decision);
        if sinks.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let at = chrono::Utc::now();
        let mut writes = Vec::with_capacity(sinks.len());
        for sink in sinks {
            if !self.admit(sink, decision, now) {
                metrics::counter!(m::THROTTLED, "sink" => sink.to_owned()).increment(1);
                continue;
            }
            let id = uuid::Uuid::now_v7().to_string();
            writes.push(AlertRecord::queued(id, sink, decision, at).write());
        }
        writes
    }

    fn committed(&self, decision: &Decision, records: &[RecordWrite]) {
        let now = Instant::now();
        for record in records {
            let alert = record
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice::<AlertRecord>(v).ok());
            if let Some(alert) = alert {
                self.taken(&alert.sink, decision, now);
                metrics::counter!(m::QUEUED, "sink" => alert.sink).increment(1);
            }
        }
    }
}

fn matches(route: &RouteConfig, d: &Decision) -> bool {
    let outcome_ok = match &route.outcomes {
        Some(outcomes) => outcomes.contains(&d.outcome),
        None => d.outcome != Outcome::Approve,
    };
    outcome_ok
        && route.min_score.is_none_or(|min| d.score >= min)
        && (route.rules.is_empty() || d.reasons.iter().any(|r| route.rules.contains(&r.rule)))
        && (route.merchants.is_empty()
            || d.event
                .merchant_id
                .as_ref()
                .is_some_and(|m| route.merchants.contains(m)))
        && (route.categories.is_empty()
            || d.event
                .merchant_category
                .as_ref()
                .is_some_and(|c| route.categories.contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_event::Reason;
    use sentinel_rules::Action;
    use sentinel_store::conformance::decision;

    fn flagged(txn: &str, user: &str, rule: &str, score: f64) -> Decision {
        let mut d = decision(txn, user, 1, 1);
        d.outcome = Outcome::Decline;
        d.score = score;
        d.reasons = vec![Reason {
            rule: rule.into(),
            action: Action::Decline,
            values: vec![],
        }];
        d
    }

    fn config(toml_text: &str) -> AlertsConfig {
        let config: AlertsConfig = toml::from_str(toml_text).unwrap();
        config.validate().unwrap();
        config
    }

    const SINKS: &str = r#"
        [[sinks]]
        name = "ops"
        kind = "webhook"
        url = "http://127.0.0.1:1/hook"
        [[sinks]]
        name = "chat"
        kind = "slack"
        url = "http://127.0.0.1:1/slack"
    "#;

    #[test]
    fn routes_match_on_outcome_rule_score_and_merchant_and_merge_sinks() {
        let router = AlertRouter::new(&config(&format!(
            r#"
            throttle_secs = 0
            {SINKS}
            [[routes]]
            sinks = ["ops"]
            [[routes]]
            sinks = ["ops", "chat"]
            rules = ["velocity"]
            min_score = 0.9
            merchants = ["m1"]
            "#
        )));
        let approved = decision("t0", "u", 1, 1);
        assert!(router.sinks_for(&approved).is_empty());
        let mut d = flagged("t1", "u", "velocity", 0.95);
        assert_eq!(router.sinks_for(&d), ["ops"], "merchant missing");
        Arc::make_mut(&mut d.event).merchant_id = Some("m1".into());
        assert_eq!(router.sinks_for(&d), ["ops", "chat"]);
        d.score = 0.85;
        assert_eq!(router.sinks_for(&d), ["ops"], "below min_score");
        assert_eq!(router.alerts_for(&d).len(), 1);
    }

    #[test]
    fn one_alert_per_user_rule_and_sink_per_window_and_throttled_ones_are_not_queued() {
        let router = AlertRouter::new(&config(&format!(
            "throttle_secs = 600\n{SINKS}\n[[routes]]\nsinks = [\"ops\"]"
        )));
        let stored = |d: &Decision| {
            let records = router.alerts_for(d);
            router.committed(d, &records);
            records.len()
        };
        assert_eq!(stored(&flagged("t1", "u1", "r", 0.9)), 1);
        assert_eq!(stored(&flagged("t2", "u1", "r", 0.9)), 0);
        assert_eq!(stored(&flagged("t3", "u1", "other", 0.9)), 1);
        assert_eq!(stored(&flagged("t4", "u2", "r", 0.9)), 1);
    }

    /// A batch that fails to store takes no throttle slot: the writer's retry of the same
    /// decision still owes its alert, and only once that commits is the slot taken.
    #[test]
    fn a_failed_batch_leaves_the_throttle_slot_for_the_retry() {
        let router = AlertRouter::new(&config(&format!(
            "throttle_secs = 600\n{SINKS}\n[[routes]]\nsinks = [\"ops\"]"
        )));
        let d = flagged("t1", "u1", "r", 0.9);
        assert_eq!(
            router.alerts_for(&d).len(),
            1,
            "first attempt; its batch fails"
        );
        let retry = router.alerts_for(&d);
        assert_eq!(retry.len(), 1, "the retry still owes the alert");
        router.committed(&d, &retry);
        assert!(router.alerts_for(&flagged("t2", "u1", "r", 0.9)).is_empty());
    }

    #[test]
    fn bad_configuration_is_refused_with_the_field() {
        let unknown: AlertsConfig =
            toml::from_str(&format!("{SINKS}\n[[routes]]\nsinks = [\"nope\"]")).unwrap();
        assert!(unknown.validate().unwrap_err().contains("nope"));
        let err = toml::from_str::<AlertsConfig>(
            "[[sinks]]\nname = \"x\"\nkind = \"pager\"\nurl = \"http://x\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("pager"), "{err}");
        let schemeless: AlertsConfig = toml::from_str(
            "[[sinks]]\nname = \"x\"\nkind = \"slack\"\nurl = \"hooks.example/T/B/tok3n\"",
        )
        .unwrap();
        let err = schemeless.validate().unwrap_err();
        assert!(
            err.contains("alerts.sinks[0].url") && !err.contains("tok3n"),
            "{err}"
        );
    }

    use std::sync::Arc;
}
