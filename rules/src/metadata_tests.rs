//! `metadata.<key>`: an open field typed by its use, missing (so false) when absent or of
//! another type.

use crate::expr::tests::{schema, Mock, AMOUNT};
use crate::{Agg, EntityId, Expr, Facts, FieldId, OwnedValue, Value};
use std::collections::HashMap;

/// The test schema with metadata allowed, and events carrying some metadata.
struct WithMetadata {
    base: Mock,
    metadata: HashMap<&'static str, OwnedValue>,
}

impl Facts for WithMetadata {
    fn field(&self, id: FieldId) -> Value<'_> {
        Facts::field(&self.base, id)
    }
    fn window(&self, entity: EntityId, agg: Agg, window_ms: u64) -> Value<'_> {
        Facts::window(&self.base, entity, agg, window_ms)
    }
    fn list_contains(&self, list: &str, value: &str) -> bool {
        Facts::list_contains(&self.base, list, value)
    }
    fn metadata(&self, key: &str) -> Value<'_> {
        self.metadata
            .get(key)
            .map_or(Value::Null, OwnedValue::as_value)
    }
}

fn event() -> WithMetadata {
    WithMetadata {
        base: Mock::default()
            .num(AMOUNT, 2500.0)
            .list("high_risk_merchants", &["transfer"]),
        metadata: HashMap::from([
            ("transaction_type", OwnedValue::Text("transfer".into())),
            ("risk_points", OwnedValue::Number(7.0)),
            ("vip", OwnedValue::Bool(true)),
        ]),
    }
}

fn compile(src: &str) -> Result<Expr, String> {
    Expr::compile(src, &schema().metadata()).map_err(|e| e.to_string())
}

fn eval(src: &str) -> bool {
    compile(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .matches(&event())
}

#[test]
fn metadata_takes_the_type_of_what_it_is_compared_with() {
    assert!(eval(r#"metadata.transaction_type == "transfer""#));
    assert!(eval(r#""transfer" = metadata.transaction_type"#));
    assert!(eval(r#"metadata.transaction_type != "purchase""#));
    assert!(eval(
        r#"metadata.transaction_type in ["transfer", "withdrawal"]"#
    ));
    assert!(eval("metadata.transaction_type in @high_risk_merchants"));
    assert!(eval(r#"metadata.transaction_type starts_with "trans""#));
    assert!(eval(r#"metadata.transaction_type matches "^tr""#));
    assert!(eval(
        "metadata.risk_points > 5 and metadata.risk_points * 2 = 14"
    ));
    assert!(eval("metadata.risk_points in [7, 8]"));
    assert!(eval("metadata.risk_points < amount"));
    assert!(eval("metadata.vip and not (metadata.vip = false)"));
    assert!(eval("metadata.vip"));
    assert!(eval(
        "metadata.transaction_type != null and metadata.nothing = null"
    ));
}

#[test]
fn a_missing_key_or_another_type_makes_the_comparison_false() {
    assert!(!eval(r#"metadata.channel_hint == "web""#));
    assert!(!eval(r#"metadata.channel_hint != "web""#));
    assert!(!eval("metadata.absent > 0"));
    assert!(!eval("metadata.absent"));
    assert!(eval("not metadata.absent"));
    // Text where a number is asked for is missing too, never an error.
    assert!(!eval("metadata.transaction_type > 0"));
    assert!(!eval(r#"metadata.risk_points == "7""#));
}

#[test]
fn the_checker_refuses_what_has_no_type_or_no_schema() {
    let err = compile("metadata.a = metadata.b").unwrap_err();
    assert!(err.contains("both metadata fields"), "{err}");
    let err = compile(r#"metadata.a.b == "x""#).unwrap_err();
    assert!(err.contains("unknown field `metadata.a.b`"), "{err}");
    // Only schemas that allow metadata accept it.
    let err = Expr::compile(r#"metadata.kind == "x""#, &schema())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `metadata.kind`"), "{err}");
}

#[test]
fn explain_shows_the_metadata_values_seen() {
    let expr =
        compile(r#"metadata.transaction_type == "transfer" and metadata.absent > 1"#).unwrap();
    let seen = expr.explain(&event());
    assert!(seen.contains(&(
        "metadata.transaction_type".to_owned(),
        OwnedValue::Text("transfer".into())
    )));
    assert!(seen.contains(&("metadata.absent".to_owned(), OwnedValue::Null)));
}
