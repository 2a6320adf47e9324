//! Rule definitions (stored as JSON), compiled rules and rule sets.

use crate::error::RuleError;
use crate::eval::Facts;
use crate::expr::Expr;
use crate::schema::Schema;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Longest accepted rule name, in characters.
pub const MAX_RULE_NAME_CHARS: usize = 128;

/// What happens when a rule fires.
///
/// JSON: `"flag"`, `"review"`, `"decline"` or `{"add_score": 0.3}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Action {
    /// Mark the event for attention without changing the decision.
    Flag,
    /// Send the event to manual review.
    Review,
    /// Decline the event.
    Decline,
    /// Add this amount (0.0 to 1.0) to the event's risk score.
    AddScore(f64),
}

/// Whether a rule takes effect.
///
/// JSON: `"active"`, `"shadow"` or `"disabled"`; defaults to active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Mode {
    /// Evaluated, and its action applies.
    #[default]
    Active,
    /// Evaluated and reported, but its action does not apply.
    Shadow,
    /// Not evaluated.
    Disabled,
}

/// A rule as written and stored: its name, expression text and action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleDef {
    /// Unique name: 1 to 128 characters among `A-Z a-z 0-9 _ - .` and space.
    pub name: String,
    /// The condition, in the rule language.
    pub expression: String,
    /// What happens when the rule fires.
    pub action: Action,
    /// Higher priorities are evaluated and reported first (default 0).
    #[serde(default)]
    pub priority: i32,
    /// Whether the rule takes effect (default active).
    #[serde(default)]
    pub mode: Mode,
    /// Free text for analysts (default empty).
    #[serde(default)]
    pub description: String,
}

/// A rule whose expression has been compiled against a [`Schema`].
#[derive(Debug, Clone)]
pub struct Rule {
    /// The definition the rule was compiled from.
    pub def: RuleDef,
    /// The compiled expression.
    pub expr: Expr,
}

impl Rule {
    /// Validates `def` and compiles its expression.
    ///
    /// Problems with the name or the action are reported at line 0, column 0
    /// with a message naming the field; expression problems carry the
    /// position in the expression text.
    pub fn compile(def: RuleDef, schema: &Schema) -> Result<Rule, RuleError> {
        validate_name(&def.name)?;
        if let Action::AddScore(x) = def.action {
            if !x.is_finite() || !(0.0..=1.0).contains(&x) {
                return Err(RuleError::general(format!(
                    "`action.add_score` must be between 0.0 and 1.0, but is {x}"
                )));
            }
        }
        let expr = Expr::compile(&def.expression, schema)?;
        Ok(Rule { def, expr })
    }
}

fn validate_name(name: &str) -> Result<(), RuleError> {
    if name.trim().is_empty() {
        return Err(RuleError::general("`name` must not be empty"));
    }
    if name.chars().count() > MAX_RULE_NAME_CHARS {
        return Err(RuleError::general(format!(
            "`name` must be at most {MAX_RULE_NAME_CHARS} characters long"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ')))
    {
        return Err(RuleError::general(format!(
            "`name` may only contain letters A-Z, digits, `_`, `-`, `.` and spaces, but contains {c:?}"
        )));
    }
    Ok(())
}

/// A versioned set of compiled rules, sorted by priority (highest first),
/// then by name.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Version of the rule set, chosen by the caller.
    pub version: u64,
    rules: Vec<Rule>,
}

impl RuleSet {
    /// A rule set from already-compiled rules (sorted here).
    pub fn new(version: u64, mut rules: Vec<Rule>) -> Self {
        rules.sort_by(|a, b| {
            b.def
                .priority
                .cmp(&a.def.priority)
                .then_with(|| a.def.name.cmp(&b.def.name))
        });
        RuleSet { version, rules }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Compiles every definition. Fails with the offending rule's name and
    /// error on the first invalid rule or duplicate name.
    pub fn compile(
        version: u64,
        defs: Vec<RuleDef>,
        schema: &Schema,
    ) -> Result<RuleSet, (String, RuleError)> {
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(defs.len());
        for def in defs {
            if !seen.insert(def.name.clone()) {
                let msg = format!("`name`: there is already a rule named {:?}", def.name);
                return Err((def.name, RuleError::general(msg)));
            }
            let name = def.name.clone();
            rules.push(Rule::compile(def, schema).map_err(|e| (name, e))?);
        }
        Ok(RuleSet::new(version, rules))
    }

    /// Evaluates every non-disabled rule and returns those that fired
    /// (active and shadow), in priority order. Does not allocate when
    /// nothing fires.
    pub fn evaluate<'r>(&'r self, facts: &dyn Facts) -> Vec<&'r Rule> {
        let mut fired = Vec::new();
        for rule in &self.rules {
            if rule.def.mode != Mode::Disabled && rule.expr.matches(facts) {
                fired.push(rule);
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::tests::{schema, Mock, AMOUNT};

    fn def(name: &str, expression: &str, priority: i32, mode: Mode) -> RuleDef {
        RuleDef {
            name: name.into(),
            expression: expression.into(),
            action: Action::Flag,
            priority,
            mode,
            description: String::new(),
        }
    }

    #[test]
    fn action_and_mode_json() {
        let cases = [
            (Action::Flag, r#""flag""#),
            (Action::Review, r#""review""#),
            (Action::Decline, r#""decline""#),
            (Action::AddScore(0.3), r#"{"add_score":0.3}"#),
        ];
        for (a, json) in cases {
            assert_eq!(serde_json::to_string(&a).unwrap(), json);
            assert_eq!(serde_json::from_str::<Action>(json).unwrap(), a);
        }
        assert!(serde_json::from_str::<Action>(r#""block""#).is_err());
        for (m, json) in [
            (Mode::Active, r#""active""#),
            (Mode::Shadow, r#""shadow""#),
            (Mode::Disabled, r#""disabled""#),
        ] {
            assert_eq!(serde_json::to_string(&m).unwrap(), json);
            assert_eq!(serde_json::from_str::<Mode>(json).unwrap(), m);
        }
        assert_eq!(Mode::default(), Mode::Active);
    }

    #[test]
    fn rule_def_json() {
        let d: RuleDef = serde_json::from_str(
            r#"{"name": "big", "expression": "amount > 1", "action": {"add_score": 0.5}}"#,
        )
        .unwrap();
        assert_eq!(d.priority, 0);
        assert_eq!(d.mode, Mode::Active);
        assert_eq!(d.description, "");
        assert_eq!(d.action, Action::AddScore(0.5));
        let full = RuleDef {
            description: "large amounts".into(),
            ..def("big one", "amount > 1", -3, Mode::Shadow)
        };
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(
            json,
            r#"{"name":"big one","expression":"amount > 1","action":"flag","priority":-3,"mode":"shadow","description":"large amounts"}"#
        );
        assert_eq!(serde_json::from_str::<RuleDef>(&json).unwrap(), full);
        let unknown = r#"{"name":"x","expression":"true","action":"flag","severity":3}"#;
        let err = serde_json::from_str::<RuleDef>(unknown).unwrap_err();
        assert!(err.to_string().contains("severity"), "{err}");
        assert!(serde_json::from_str::<RuleDef>(r#"{"name":"x","action":"flag"}"#).is_err());
    }

    #[test]
    fn rule_validation() {
        let s = schema();
        assert!(Rule::compile(def("ok name_1-2.3", "amount > 1", 0, Mode::Active), &s).is_ok());
        for bad in ["", "   ", "bad/name", "é", &"x".repeat(129)] {
            let e = Rule::compile(def(bad, "amount > 1", 0, Mode::Active), &s).unwrap_err();
            assert_eq!((e.line, e.column), (0, 0));
            assert!(e.message.contains("`name`"), "{}", e.message);
        }
        assert!(Rule::compile(def(&"x".repeat(128), "true", 0, Mode::Active), &s).is_ok());
        for score in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let d = RuleDef {
                action: Action::AddScore(score),
                ..def("s", "true", 0, Mode::Active)
            };
            let e = Rule::compile(d, &s).unwrap_err();
            assert_eq!((e.line, e.column), (0, 0));
            assert!(e.message.contains("add_score"));
        }
        for score in [0.0, 1.0] {
            let d = RuleDef {
                action: Action::AddScore(score),
                ..def("s", "true", 0, Mode::Active)
            };
            assert!(Rule::compile(d, &s).is_ok());
        }
        let e = Rule::compile(def("x", "amount >", 0, Mode::Active), &s).unwrap_err();
        assert_eq!((e.line, e.column), (1, 9));
    }

    #[test]
    fn rule_set_order_duplicates_and_evaluation() {
        let s = schema();
        let set = RuleSet::compile(
            7,
            vec![
                def("b-low", "amount > 1", 1, Mode::Active),
                def("z-high", "amount > 1", 10, Mode::Shadow),
                def("a-high", "amount > 1", 10, Mode::Active),
                def("off", "amount > 1", 100, Mode::Disabled),
                def("never", "amount > 1000", 50, Mode::Active),
                def("neg", "amount > 1", -5, Mode::Active),
            ],
            &s,
        )
        .unwrap();
        assert_eq!(set.version, 7);
        let names: Vec<_> = set.rules().iter().map(|r| r.def.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["off", "never", "a-high", "z-high", "b-low", "neg"]
        );
        let fired = set.evaluate(&Mock::default().num(AMOUNT, 5.0));
        let names: Vec<_> = fired.iter().map(|r| r.def.name.as_str()).collect();
        assert_eq!(names, vec!["a-high", "z-high", "b-low", "neg"]);
        let none = set.evaluate(&Mock::default());
        assert!(none.is_empty());
        assert_eq!(none.capacity(), 0, "no allocation when nothing fires");

        let dup = RuleSet::compile(
            1,
            vec![
                def("same", "true", 0, Mode::Active),
                def("same", "false", 0, Mode::Active),
            ],
            &s,
        )
        .unwrap_err();
        assert_eq!(dup.0, "same");
        assert!(dup.1.message.contains("already"));

        let bad = RuleSet::compile(
            1,
            vec![
                def("good", "true", 0, Mode::Active),
                def("broken", "amont > 1", 0, Mode::Active),
            ],
            &s,
        )
        .unwrap_err();
        assert_eq!(bad.0, "broken");
        assert_eq!((bad.1.line, bad.1.column), (1, 1));
        assert!(bad.1.message.contains("did you mean `amount`?"));
    }
}
