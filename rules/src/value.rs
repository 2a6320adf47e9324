//! Types and runtime values.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The type of a field or expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    /// A number (stored as `f64`).
    Number,
    /// A piece of text.
    Text,
    /// A yes/no value.
    Bool,
}

impl Type {
    /// How the type is named in error messages, with an article ("a number").
    pub(crate) fn phrase(self) -> &'static str {
        match self {
            Type::Number => "a number",
            Type::Text => "text",
            Type::Bool => "a yes/no value",
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Number => "number",
            Type::Text => "text",
            Type::Bool => "bool",
        })
    }
}

/// The aggregate computed by a window function such as `count(user, 5m)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Agg {
    /// Number of events in the window (`count`).
    Count,
    /// Sum of the amounts in the window (`sum`).
    Sum,
    /// Average amount in the window (`avg`).
    Avg,
    /// Smallest amount in the window (`min`).
    Min,
    /// Largest amount in the window (`max`).
    Max,
}

impl Agg {
    /// The function name used in rule text.
    pub fn name(self) -> &'static str {
        match self {
            Agg::Count => "count",
            Agg::Sum => "sum",
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
        }
    }

    /// The aggregate for a function name used in rule text, if any.
    pub fn from_name(name: &str) -> Option<Agg> {
        Some(match name {
            "count" => Agg::Count,
            "sum" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            _ => return None,
        })
    }
}

/// A runtime value handed to the evaluator by [`Facts`](crate::Facts).
///
/// Text borrows from the facts so that evaluation does not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Value<'a> {
    /// Missing or unknown.
    #[default]
    Null,
    /// A number. NaN is treated as [`Value::Null`].
    Number(f64),
    /// A piece of text.
    Text(&'a str),
    /// A yes/no value.
    Bool(bool),
}

impl Value<'_> {
    /// Converts into an owned value.
    pub fn to_owned_value(&self) -> OwnedValue {
        match *self {
            Value::Null => OwnedValue::Null,
            Value::Number(n) => OwnedValue::Number(n),
            Value::Text(s) => OwnedValue::Text(s.to_owned()),
            Value::Bool(b) => OwnedValue::Bool(b),
        }
    }
}

/// An owned runtime value, serialized untagged: `null`, `1.5`, `"x"`, `true`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OwnedValue {
    /// Missing or unknown (`null`).
    #[default]
    Null,
    /// A number.
    Number(f64),
    /// A piece of text.
    Text(String),
    /// A yes/no value.
    Bool(bool),
}

impl OwnedValue {
    /// Borrows as a [`Value`].
    pub fn as_value(&self) -> Value<'_> {
        match self {
            OwnedValue::Null => Value::Null,
            OwnedValue::Number(n) => Value::Number(*n),
            OwnedValue::Text(s) => Value::Text(s),
            OwnedValue::Bool(b) => Value::Bool(*b),
        }
    }
}

impl From<Value<'_>> for OwnedValue {
    fn from(v: Value<'_>) -> Self {
        v.to_owned_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_value_json_is_untagged() {
        let vals = vec![
            OwnedValue::Null,
            OwnedValue::Number(1.5),
            OwnedValue::Text("x".into()),
            OwnedValue::Bool(true),
        ];
        let json = serde_json::to_string(&vals).unwrap();
        assert_eq!(json, r#"[null,1.5,"x",true]"#);
        let back: Vec<OwnedValue> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vals);
    }

    #[test]
    fn value_round_trip() {
        let o = OwnedValue::Text("FR".into());
        assert_eq!(o.as_value(), Value::Text("FR"));
        assert_eq!(OwnedValue::from(o.as_value()), o);
        assert_eq!(
            OwnedValue::from(Value::Number(2.0)),
            OwnedValue::Number(2.0)
        );
    }

    #[test]
    fn agg_names_and_json() {
        for a in [Agg::Count, Agg::Sum, Agg::Avg, Agg::Min, Agg::Max] {
            assert_eq!(Agg::from_name(a.name()), Some(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()));
        }
        assert_eq!(Agg::from_name("median"), None);
        assert_eq!(serde_json::to_string(&Type::Number).unwrap(), "\"number\"");
    }
}
