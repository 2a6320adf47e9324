//! The rules, lists and thresholds every user actor applies: compiled once, shared by `Arc`,
//! and replaced as a whole by an actor message when an analyst changes anything.

use crate::features;
use crate::models::Models;
use sentinel_event::Thresholds;
use sentinel_rules::{RuleDef, RuleError, RuleSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The policy as analysts write it and as it is stored: plain data, not yet checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDef {
    /// Rule-set version recorded on every decision.
    pub version: u64,
    /// Score thresholds for review and decline.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Named lists rules refer to as `@name`.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
    /// The rules.
    pub rules: Vec<RuleDef>,
}

impl PolicyDef {
    /// The seed policy shipped with SentinelStream (`engine/src/default_policy.json`).
    pub fn seed() -> PolicyDef {
        serde_json::from_str(include_str!("default_policy.json"))
            .expect("the shipped default policy is valid JSON")
    }

    /// Checks every rule against the feature catalogue and the lists, and compiles them.
    pub fn compile(self) -> Result<Policy, PolicyError> {
        let t = self.thresholds;
        if !(0.0..=1.0).contains(&t.review)
            || !(0.0..=1.0).contains(&t.decline)
            || t.review > t.decline
        {
            return Err(PolicyError::Thresholds);
        }
        let schema = features::schema(self.lists.keys().map(String::as_str));
        let rules = RuleSet::compile(self.version, self.rules.clone(), &schema)
            .map_err(|(rule, error)| PolicyError::Rule { rule, error })?;
        let lists = Lists(
            self.lists
                .iter()
                .map(|(name, items)| (name.clone(), items.iter().cloned().collect()))
                .collect(),
        );
        let entity_kinds = features::distinct_user_kinds(
            rules
                .rules()
                .iter()
                .filter(|r| r.def.mode != sentinel_rules::Mode::Disabled)
                .map(|r| &r.expr),
        );
        Ok(Policy {
            entity_kinds,
            rules,
            lists,
            thresholds: t,
            models: Models::default(),
            def: self,
        })
    }
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A rule failed to parse or type-check.
    #[error("rule `{rule}`: {error}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// Where and why.
        error: RuleError,
    },
    /// Thresholds outside 0..=1 or review above decline.
    #[error("thresholds must satisfy 0 <= review <= decline <= 1")]
    Thresholds,
}

/// Named sets of text items.
#[derive(Debug, Clone, Default)]
pub struct Lists(BTreeMap<String, HashSet<String>>);

impl Lists {
    /// Whether list `name` contains `value`; an unknown list contains nothing.
    pub fn contains(&self, name: &str, value: &str) -> bool {
        self.0.get(name).is_some_and(|items| items.contains(value))
    }
}

/// A compiled policy, ready to evaluate.
#[derive(Debug)]
pub struct Policy {
    /// Compiled rules, highest priority first.
    pub rules: RuleSet,
    /// Lists by name.
    pub lists: Lists,
    /// Score thresholds.
    pub thresholds: Thresholds,
    /// The machine-learned models scoring every event (none until one is activated).
    pub models: Models,
    /// The definition it was compiled from.
    pub def: PolicyDef,
    /// The entity kinds whose distinct users the enabled rules ask for: events ask the entity
    /// actors only about these.
    pub entity_kinds: crate::entities::KindSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_policy_compiles() {
        let policy = PolicyDef::seed().compile().unwrap();
        assert_eq!(policy.rules.rules().len(), 8);
        // shared_device_ring and shared_device_pair ask about devices and cards, nothing else.
        assert!(policy
            .entity_kinds
            .contains(crate::entities::EntityKind::Device));
        assert!(policy
            .entity_kinds
            .contains(crate::entities::EntityKind::Card));
        assert!(!policy
            .entity_kinds
            .contains(crate::entities::EntityKind::Ip));
        assert!(policy.lists.contains("high_risk_merchants", "gambling"));
        assert!(!policy.lists.contains("high_risk_merchants", "grocery"));
        assert!(!policy.lists.contains("no_such_list", "gambling"));
    }

    #[test]
    fn bad_rules_and_thresholds_are_refused() {
        let mut def = PolicyDef::seed();
        def.rules[0].expression = "amount > ".into();
        match def.compile() {
            Err(PolicyError::Rule { rule, .. }) => assert_eq!(rule, "large_amount"),
            other => panic!("{other:?}"),
        }
        let mut def = PolicyDef::seed();
        def.thresholds = Thresholds {
            review: 0.9,
            decline: 0.5,
        };
        assert!(matches!(def.compile(), Err(PolicyError::Thresholds)));
    }
}
