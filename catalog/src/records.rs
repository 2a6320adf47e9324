//! What the catalogue stores, as analysts see it through the API.

use chrono::{DateTime, Utc};
use sentinel_rules::{Action, Mode, OwnedValue, RuleDef};
use serde::{Deserialize, Serialize};

/// One immutable version of a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleVersion {
    /// Stable identifier of the rule across versions.
    pub id: String,
    /// Version number, from 1.
    pub version: u32,
    /// Unique name, shown in decisions' reasons.
    pub name: String,
    /// The rule text.
    pub expression: String,
    /// What the rule asks for when it matches.
    pub action: Action,
    /// Higher runs first and is listed first in reasons.
    pub priority: i32,
    /// `active`, `shadow` or `disabled`.
    pub mode: Mode,
    /// What the rule is for.
    pub description: String,
    /// This version deleted the rule; its history stays.
    pub deleted: bool,
    /// When this version was made.
    pub created_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
}

impl RuleVersion {
    /// The rule definition this version holds.
    pub fn def(&self) -> RuleDef {
        RuleDef {
            name: self.name.clone(),
            expression: self.expression.clone(),
            action: self.action,
            priority: self.priority,
            mode: self.mode,
            description: self.description.clone(),
        }
    }
}

/// A named list that rules use as `@name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListRecord {
    /// The name rules use (`@name`).
    pub name: String,
    /// What the list is for.
    #[serde(default)]
    pub description: String,
    /// The items; expired items are ignored.
    pub items: Vec<ListItem>,
    /// Incremented on every change.
    pub version: u32,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: String,
}

/// One list item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListItem {
    /// The value matched against (exact text).
    pub value: String,
    /// After this time the item no longer counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// One change to rules, lists or models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub principal: String,
    /// What, e.g. `rule.create`, `rule.rollback`, `list.update`.
    pub action: String,
    /// Which, e.g. `rule/<id>` or `list/<name>`.
    pub entity: String,
    /// The policy version the change produced.
    pub policy_version: u64,
    /// State before, absent for creations.
    pub before: Option<serde_json::Value>,
    /// State after, absent for deletions of lists.
    pub after: Option<serde_json::Value>,
}

/// An analyst's verdict on a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LabelValue {
    /// It was fraud.
    Fraud,
    /// It was legitimate.
    Legit,
}

/// Where a label came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LabelSource {
    /// An analyst's verdict.
    #[default]
    Analyst,
    /// A chargeback (the card holder's bank reported the fraud).
    Chargeback,
    /// Anything else (a customer call, a rule of thumb).
    Other,
}

impl LabelSource {
    /// Every source, in the order a refusal lists them.
    pub const ALL: [LabelSource; 3] = [
        LabelSource::Chargeback,
        LabelSource::Analyst,
        LabelSource::Other,
    ];

    /// The source its snake-case name names.
    pub fn from_name(name: &str) -> Option<LabelSource> {
        LabelSource::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelSource::Analyst => "analyst",
            LabelSource::Chargeback => "chargeback",
            LabelSource::Other => "other",
        }
    }
}

/// Feedback on one decision, used by backtests, model training and the entity-risk features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Label {
    /// The labelled transaction.
    pub transaction_id: String,
    /// Fraud or legit.
    pub label: LabelValue,
    /// The analyst's note.
    pub note: String,
    /// When the verdict became known (a chargeback's report date): features of an event at
    /// time `t` count the label only when `labelled_at <= t - label delay`. Labels stored
    /// before this field existed read their posting time (`at`).
    #[serde(alias = "at")]
    pub labelled_at: DateTime<Utc>,
    /// Where it came from.
    #[serde(default)]
    pub source: LabelSource,
    /// The fraud pattern, when known (for recall per pattern).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Who stored it.
    pub by: String,
    /// When it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<DateTime<Utc>>,
}

/// The answer to a rule test.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleTest {
    /// Whether the rule matched the transaction.
    pub matches: bool,
    /// Every value the rule looked at, labelled by its source text.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<serde_json::Value>>))]
    pub values: Vec<(String, OwnedValue)>,
}
