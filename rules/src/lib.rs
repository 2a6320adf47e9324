//! SentinelStream's rule language: a small, readable language in which fraud
//! analysts write conditions, plus its parser, type checker and evaluator.
//!
//! ```text
//! amount > 5 * user.avg_amount_30d and location.country != user.last_country and minutes_since_last < 60
//! count(user, 5m) > 10
//! merchant_category in @high_risk_merchants
//! merchant_category in ["gambling", "crypto"] or ip starts_with "10."
//! email matches "^[a-z]+@example\\.com$"
//! ```
//!
//! The crate does not know the event model. The caller describes it with a
//! [`Schema`] (field names and types, entity names for window functions, list
//! names) and supplies values at evaluation time through [`Facts`].
//!
//! ```
//! use sentinel_rules::{Agg, EntityId, Expr, Facts, FieldId, Schema, Type, Value};
//!
//! let schema = Schema::new()
//!     .field("amount", Type::Number, FieldId(0))
//!     .field("location.country", Type::Text, FieldId(1))
//!     .entity("user", EntityId(0))
//!     .list("high_risk_countries");
//!
//! struct Event;
//! impl Facts for Event {
//!     fn field(&self, id: FieldId) -> Value<'_> {
//!         match id.0 {
//!             0 => Value::Number(912.5),
//!             1 => Value::Text("FR"),
//!             _ => Value::Null,
//!         }
//!     }
//!     fn window(&self, _: EntityId, agg: Agg, _window_ms: u64) -> Value<'_> {
//!         match agg {
//!             Agg::Count => Value::Number(12.0),
//!             _ => Value::Null,
//!         }
//!     }
//!     fn list_contains(&self, list: &str, value: &str) -> bool {
//!         list == "high_risk_countries" && value == "FR"
//!     }
//! }
//!
//! let rule = Expr::compile(
//!     "amount > 500 and (count(user, 5m) > 10 or location.country in @high_risk_countries)",
//!     &schema,
//! )?;
//! assert!(rule.matches(&Event));
//!
//! let err = Expr::compile("amont > 500", &schema).unwrap_err();
//! assert_eq!(err.to_string(), "line 1, column 1: unknown field `amont`; did you mean `amount`?");
//! # Ok::<(), sentinel_rules::RuleError>(())
//! ```
//!
//! # The language
//!
//! * **Values**: numbers (`12`, `12.5`, `1_000`, `1e3`), text in double quotes
//!   with the escapes `\"`, `\\`, `\n` and `\t`, `true` and `false`.
//! * **Fields** are names from the schema, possibly dotted
//!   (`location.country`). A misspelt name is reported with a suggestion.
//! * **Operators**, from loosest to tightest binding: `or`; `and`; `not`;
//!   comparisons `=` (or `==`), `!=`, `>`, `>=`, `<`, `<=`, `in`, `not in`,
//!   `contains`, `starts_with`, `ends_with`, `matches`; `+` `-`; `*` `/` `%`;
//!   unary `-`; parentheses. `and`, `or` and `not` may also be written in
//!   upper case; other keywords are lower case. Comparisons cannot be chained
//!   (`a < b < c` is an error).
//! * **Types**: arithmetic and `>`/`>=`/`<`/`<=` need numbers; `=` and `!=`
//!   need two values of the same type; `contains`, `starts_with` and
//!   `ends_with` need text on both sides (comparisons of text are exact and
//!   case-sensitive); `matches` needs text on the left and a regular
//!   expression written as text in quotes on the right; `and`, `or` and
//!   `not` combine conditions. A yes/no field can be used as a condition by
//!   itself (`is_vpn and amount > 100`). The whole rule must be a condition.
//! * **Lists**: `x in ["a", "b"]` or `x in [1, 2, 3]` (all items of one kind,
//!   at most 1024, only after `in`/`not in`), or `x in @list_name` for a named
//!   list of text known to the schema.
//! * **Window functions**: `count(E, D)`, `sum(E, D)`, `avg(E, D)`,
//!   `min(E, D)` and `max(E, D)` aggregate the recent events of entity `E`
//!   (such as `user` or `card`) over duration `D`, written as a whole number
//!   followed by `s`, `m`, `h` or `d` (`30s`, `5m`, `24h`, `7d`; at most
//!   `366d`). Durations are only allowed there.
//! * **Distinct users**: `E.distinct_users(D)` counts the different users that
//!   used the current event's entity `E` (its `device`, `card` …) over
//!   duration `D`, the current event's user included, such as
//!   `device.distinct_users(24h) > 2`. It is missing (so comparisons are
//!   false) when the event has no such entity or the count is unknown.
//! * **Math functions**: `abs(x)` and `log(x)` (natural logarithm).
//! * **Metadata**: when the schema allows it ([`Schema::metadata`]),
//!   `metadata.<key>` reads one key of the event's free-form metadata. It has
//!   no declared type: the checker gives it the type its use asks for (text
//!   beside text or in a text test, a number beside a number or in
//!   arithmetic, a yes/no value as a condition); comparing two metadata
//!   fields with each other is an error. A missing key, or a value of another
//!   type, is missing (see below), so `metadata.kind = "transfer"` is false
//!   for an event without it.
//!
//! # Missing values (null semantics)
//!
//! A field may be missing from an event (its value is Null). Rules never see
//! a third truth value; instead:
//!
//! * arithmetic with a missing value gives a missing value; so do division
//!   or `%` by zero, `log` of zero or a negative number, and results that are
//!   not a number (such as infinity minus infinity);
//! * every comparison, `in`, `not in`, `contains`, `starts_with`,
//!   `ends_with` and `matches` with a missing operand is **false**; so
//!   `amount != 5` and `country not in ["FR"]` are false when the value is
//!   missing;
//! * `not` turns false into true, so `not (amount > 5)` is true when
//!   `amount` is missing; a missing yes/no field used as a condition is false;
//! * `and` and `or` are ordinary boolean operators on these results;
//! * the one exception: `x = null` is true exactly when `x` is missing, and
//!   `x != null` when it is present. `null` may be used nowhere else.
//!
//! Number values that are NaN, and values of the wrong type (such as text for
//! a number field), are treated as missing.
//!
//! # Limits
//!
//! Rule text may be at most [`MAX_RULE_BYTES`] bytes, nest at most
//! [`MAX_DEPTH`] levels (parentheses, `not`, unary `-`, function calls), have
//! at most [`MAX_NODES`] parts, and list literals at most [`MAX_LIST_ITEMS`]
//! items. Regular expressions are limited to about 1 MiB compiled. Parsing
//! and evaluation never panic; evaluation does not allocate and takes time
//! bounded by the rule's size.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod error;
mod eval;
mod expr;
mod lexer;
#[cfg(test)]
mod metadata_tests;
mod parser;
mod rule;
mod schema;
mod value;

pub use error::RuleError;
pub use eval::Facts;
pub use expr::Expr;
pub use parser::{MAX_DEPTH, MAX_LIST_ITEMS, MAX_NODES, MAX_RULE_BYTES};
pub use rule::{Action, Mode, Rule, RuleDef, RuleSet, MAX_RULE_NAME_CHARS};
pub use schema::{EntityId, FieldId, Schema};
pub use value::{Agg, OwnedValue, Type, Value};

/// Checks that evaluation does not allocate, with a counting allocator
/// installed for the test binary only.
#[cfg(test)]
#[allow(unsafe_code)]
mod no_alloc_tests {
    use crate::expr::tests::{compile, schema, Mock, AMOUNT, COUNTRY, EMAIL, MCC, USER, VPN};
    use crate::{Agg, Mode, OwnedValue, RuleDef, RuleSet};
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    // SAFETY: forwards to the system allocator; only counts calls.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn allocations_during(f: impl FnOnce()) -> usize {
        let before = ALLOCATIONS.with(Cell::get);
        f();
        ALLOCATIONS.with(Cell::get) - before
    }

    #[test]
    fn matches_and_quiet_evaluate_do_not_allocate() {
        let facts = Mock::default()
            .num(AMOUNT, 912.5)
            .text(COUNTRY, "FR")
            .text(MCC, "crypto")
            .text(EMAIL, "bob@example.com")
            .set(VPN, OwnedValue::Bool(true))
            .window(USER, Agg::Count, 300_000, 12.0)
            .list("high_risk_merchants", &["crypto"]);
        let e = compile(
            "(amount * 2 > 1000 or abs(log(amount)) < 1) and count(user, 5m) > 10 \
             and location.country in [\"DE\", \"FR\"] and amount not in [1, 2] \
             and merchant_category in @high_risk_merchants and email matches \"^[a-z]+@\" \
             and email contains \"@\" and is_vpn and location.country != null",
        );
        // Warm up the regex's per-thread cache.
        assert!(e.matches(&facts));
        assert_eq!(allocations_during(|| assert!(e.matches(&facts))), 0);

        let set = RuleSet::compile(
            1,
            vec![RuleDef {
                name: "never".into(),
                expression: "amount > 1e9".into(),
                action: crate::Action::Review,
                priority: 0,
                mode: Mode::Active,
                description: String::new(),
            }],
            &schema(),
        )
        .unwrap();
        assert_eq!(
            allocations_during(|| assert!(set.evaluate(&facts).is_empty())),
            0
        );
    }
}
