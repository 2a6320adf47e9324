//! Producer payloads onto the event schema: aliases and JSON paths (`account_id` → `user_id`,
//! `payer.id` → `user_id`), what becomes of top-level fields the schema does not know, and a
//! text location read as `"City, CC"`.
//!
//! A mapping is applied by [`parse_transaction`](crate::parse_transaction) when the node's
//! [`Limits`](crate::Limits) carry one; without one, events are decoded straight into the typed
//! form, with no intermediate JSON tree.

use crate::iso::is_country;
use crate::transaction::Transaction;
use crate::validate::InvalidEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The event's top-level fields ([`Transaction::FIELDS`]). `base` is node-owned: never a
/// mapping target.
const TOP_LEVEL: &[&str] = &Transaction::FIELDS;

/// The alias producers may send for `merchant_name` (accepted without a mapping).
const MERCHANT_ALIAS: &str = "merchant";

/// The fields of `location` a mapping may fill one by one.
const LOCATION: &[&str] = &["country", "city", "lat", "lon"];

/// What becomes of a top-level field that neither the schema nor the mapping knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownFields {
    /// The event is refused (HTTP 422, Kafka dead letter) naming the field.
    #[default]
    Reject,
    /// The field is moved to `metadata.<name>`, where rules read it as `metadata.<name>`.
    Metadata,
}

impl UnknownFields {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownFields::Reject => "reject",
            UnknownFields::Metadata => "metadata",
        }
    }
}

/// The `[mapping]` settings, as written in configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingConfig {
    /// Source path in the producer's payload (`account_id`, `payer.id`) to the schema field it
    /// fills (`user_id`, `merchant_name`, `location.city`, `metadata.<key>`).
    pub fields: BTreeMap<String, String>,
    /// What becomes of top-level fields neither the schema nor `fields` knows.
    pub unknown_fields: UnknownFields,
    /// Kafka messages without `transaction_id`, `timestamp` or `currency` get them as HTTP
    /// events do, from the message: the id `<topic>:<partition>:<offset>` (a redelivered
    /// message keeps it, so it is decided once), the message's timestamp, the default currency.
    pub assign_missing: bool,
}

/// A mapping setting that cannot work, naming it (`mapping.fields."payer.id"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct MappingError {
    /// The offending setting.
    pub setting: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Where a mapped value goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A top-level field of the event.
    Top(&'static str),
    /// One field of `location`.
    Location(&'static str),
    /// `metadata.<key>`.
    Metadata(String),
}

/// One source path and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    source: String,
    path: Vec<String>,
    target: String,
    to: Target,
}

/// A validated mapping, ready to apply to payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    rules: Vec<Rule>,
    unknown: UnknownFields,
    assign_missing: bool,
}

impl MappingConfig {
    /// Validates the settings. `None` when they change nothing (no fields, unknown fields
    /// rejected, nothing assigned): events then take the direct typed decode.
    pub fn compile(&self) -> Result<Option<FieldMapping>, MappingError> {
        if self.fields.is_empty()
            && self.unknown_fields == UnknownFields::Reject
            && !self.assign_missing
        {
            return Ok(None);
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(self.fields.len());
        for (source, target) in &self.fields {
            let setting = format!("mapping.fields.{}", quoted_key(source));
            let path = parse_path(source).map_err(|reason| MappingError {
                setting: setting.clone(),
                reason,
            })?;
            let to = parse_target(target).map_err(|reason| MappingError {
                setting: setting.clone(),
                reason,
            })?;
            if let Some(other) = rules.iter().find(|r| r.to == to) {
                return Err(MappingError {
                    setting,
                    reason: format!(
                        "`{target}` is already the target of `{}`; each field has one source",
                        other.source
                    ),
                });
            }
            if let Some(other) = rules
                .iter()
                .find(|r| is_prefix(&r.path, &path) || is_prefix(&path, &r.path))
            {
                return Err(MappingError {
                    setting,
                    reason: format!(
                        "`{source}` and `{}` overlap: one lies inside the other",
                        other.source
                    ),
                });
            }
            rules.push(Rule {
                source: source.clone(),
                path,
                target: target.clone(),
                to,
            });
        }
        Ok(Some(FieldMapping {
            rules,
            unknown: self.unknown_fields,
            assign_missing: self.assign_missing,
        }))
    }
}

impl FieldMapping {
    /// Source path → target, in the order they are applied.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules
            .iter()
            .map(|r| (r.source.as_str(), r.target.as_str()))
    }

    /// What becomes of unknown top-level fields.
    pub fn unknown_fields(&self) -> UnknownFields {
        self.unknown
    }

    /// Whether Kafka messages get missing ids, times and currencies assigned.
    pub fn assign_missing(&self) -> bool {
        self.assign_missing
    }

    /// The producer's name for a schema field the mapping fills (`user_id` → `account_id`),
    /// so that an error names what the producer sent.
    pub(crate) fn source_of(&self, field: &str) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.target == field)
            .map(|r| r.source.as_str())
    }

    /// Rewrites one payload into the schema's shape. The payload must be a JSON object.
    pub fn apply(&self, payload: Value) -> Result<Value, InvalidEvent> {
        let Value::Object(mut input) = payload else {
            return Err(invalid("body", "must be a JSON object"));
        };
        let mut moved: Vec<(&Rule, Value)> = Vec::with_capacity(self.rules.len());
        for rule in &self.rules {
            if let Some(value) = take(&mut input, &rule.path) {
                moved.push((rule, value));
            }
        }
        let mut output = Map::with_capacity(input.len() + moved.len());
        let mut metadata = match input.remove("metadata") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(invalid("metadata", "must be an object")),
        };
        for (name, value) in input {
            if TOP_LEVEL.contains(&name.as_str()) || name == MERCHANT_ALIAS {
                output.insert(name, value);
            } else if self.unknown == UnknownFields::Metadata {
                insert_metadata(metadata.get_or_insert_with(Map::new), name, value, None)?;
            } else {
                let reason = "is not a field of the event schema; map it in [mapping.fields], \
                              or set [mapping] unknown_fields = \"metadata\"";
                return Err(invalid(&name, reason));
            }
        }
        for (rule, value) in moved {
            match &rule.to {
                Target::Top(field) => {
                    if output.contains_key(*field) {
                        return Err(invalid(
                            &rule.source,
                            format!("maps onto `{field}`, which the payload also sets"),
                        ));
                    }
                    output.insert((*field).to_owned(), value);
                }
                Target::Location(field) => {
                    let location = output
                        .entry("location")
                        .or_insert_with(|| Value::Object(Map::new()));
                    let Value::Object(location) = location else {
                        return Err(invalid(
                            &rule.source,
                            "maps into `location`, which the payload sets as a whole",
                        ));
                    };
                    if location.contains_key(*field) {
                        return Err(invalid(
                            &rule.source,
                            format!("maps onto `location.{field}`, which the payload also sets"),
                        ));
                    }
                    location.insert((*field).to_owned(), value);
                }
                Target::Metadata(key) => insert_metadata(
                    metadata.get_or_insert_with(Map::new),
                    key.clone(),
                    value,
                    Some(&rule.source),
                )?,
            }
        }
        if let Some(Value::String(text)) = output.get("location") {
            let location = text_location(text).map_err(|reason| {
                invalid(self.source_of("location").unwrap_or("location"), reason)
            })?;
            output.insert("location".to_owned(), location);
        }
        if let Some(metadata) = metadata {
            output.insert("metadata".to_owned(), Value::Object(metadata));
        }
        Ok(Value::Object(output))
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> InvalidEvent {
    InvalidEvent {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn insert_metadata(
    metadata: &mut Map<String, Value>,
    key: String,
    value: Value,
    source: Option<&str>,
) -> Result<(), InvalidEvent> {
    if metadata.contains_key(&key) {
        let field = source.map_or_else(|| key.clone(), str::to_owned);
        return Err(invalid(
            &field,
            format!("would become `metadata.{key}`, which the payload also sets"),
        ));
    }
    metadata.insert(key, value);
    Ok(())
}

/// Removes the value at `path`, and any object the removal left empty on the way.
fn take(object: &mut Map<String, Value>, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    if rest.is_empty() {
        return object.remove(first);
    }
    let Some(Value::Object(inner)) = object.get_mut(first) else {
        return None;
    };
    let value = take(inner, rest);
    if inner.is_empty() {
        object.remove(first);
    }
    value
}

/// `"New York, US"` → `{"city": "New York", "country": "US"}`; `"US"` → `{"country": "US"}`.
fn text_location(text: &str) -> Result<Value, String> {
    let (city, code) = match text.rsplit_once(',') {
        Some((city, code)) => (Some(city.trim()), code.trim()),
        None => (None, text.trim()),
    };
    let country = code.to_ascii_uppercase();
    if !is_country(&country) || city == Some("") {
        let shown: String = text.chars().take(64).collect();
        return Err(format!(
            "text location `{shown}` must read \"City, CC\" (or \"CC\"), CC an ISO 3166-1 \
             alpha-2 country code"
        ));
    }
    let mut location = Map::new();
    location.insert("country".to_owned(), Value::String(country));
    if let Some(city) = city {
        location.insert("city".to_owned(), Value::String(city.to_owned()));
    }
    Ok(Value::Object(location))
}

fn parse_path(source: &str) -> Result<Vec<String>, String> {
    if source.is_empty() {
        return Err("the source path is empty".to_owned());
    }
    let path: Vec<String> = source.split('.').map(str::to_owned).collect();
    if path.iter().any(String::is_empty) {
        return Err(format!(
            "`{source}` is not a path: write names separated by single dots (`payer.id`)"
        ));
    }
    if path
        .iter()
        .any(|s| s.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(format!(
            "`{source}` is not a path: names hold no spaces or control characters"
        ));
    }
    Ok(path)
}

fn parse_target(target: &str) -> Result<Target, String> {
    if let Some(key) = target.strip_prefix("metadata.") {
        if key.is_empty() || key.contains('.') {
            return Err(format!(
                "`{target}` is not a metadata key: write `metadata.<key>` with one name"
            ));
        }
        return Ok(Target::Metadata(key.to_owned()));
    }
    if let Some(field) = target.strip_prefix("location.") {
        return LOCATION
            .iter()
            .find(|f| **f == field)
            .map(|f| Target::Location(f))
            .ok_or_else(|| {
                format!("`{target}` is not a field of the event schema; location has country, city, lat and lon")
            });
    }
    match target {
        "base" => Err("`base` is set by the node from its rate table, never by producers".to_owned()),
        "merchant" => Err("`merchant` is not a schema field; the merchant's name is `merchant_name`".to_owned()),
        _ => TOP_LEVEL
            .iter()
            .find(|f| **f == target)
            .map(|f| Target::Top(f))
            .ok_or_else(|| {
                format!(
                    "`{target}` is not a field of the event schema (one of {}, location.<field>, metadata.<key>)",
                    TOP_LEVEL
                        .iter()
                        .filter(|f| **f != "base")
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
    }
}

fn is_prefix(short: &[String], long: &[String]) -> bool {
    short.len() <= long.len() && long.starts_with(short)
}

/// A TOML key as it would be written: bare when it can be, quoted otherwise.
fn quoted_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests;
