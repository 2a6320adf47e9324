//! [`Expr`]: a compiled, type-checked rule condition.

use crate::check::{check, Cond};
use crate::error::RuleError;
use crate::eval::{cond, Explainer, Facts, Quiet};
use crate::parser::parse;
use crate::schema::{EntityId, Schema};
use crate::value::OwnedValue;
use std::sync::Arc;

/// A compiled, type-checked boolean expression. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Expr {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: String,
    root: Cond,
    distinct_user_entities: Vec<EntityId>,
}

impl Expr {
    /// Parses and type-checks `text` against `schema`. The top-level
    /// expression must be a condition (Bool).
    pub fn compile(text: &str, schema: &Schema) -> Result<Expr, RuleError> {
        let node = parse(text).map_err(|e| e.into_rule_error(text))?;
        let checked = check(&node, text, schema).map_err(|e| e.into_rule_error(text))?;
        Ok(Expr {
            inner: Arc::new(Inner {
                source: text.to_owned(),
                root: checked.root,
                distinct_user_entities: checked.distinct_user_entities,
            }),
        })
    }

    /// Evaluates the condition. Never panics and does not allocate; values
    /// are requested from `facts` only as needed (`and`/`or` short-circuit).
    pub fn matches(&self, facts: &dyn Facts) -> bool {
        cond(&self.inner.root, facts, &mut Quiet)
    }

    /// The entities whose distinct users this expression asks for
    /// (`device.distinct_users(24h)` names `device`), each once, so the caller can skip
    /// computing counts nobody reads.
    pub fn distinct_user_entities(&self) -> &[EntityId] {
        &self.inner.distinct_user_entities
    }

    /// Evaluates every leaf (fields, window aggregates and named-list
    /// lookups) without short-circuiting and returns `(label, value)` pairs
    /// in source order. Labels are the leaf's source text, e.g. `amount`,
    /// `count(user, 5m)` or `@high_risk_merchants` (whose value is whether
    /// the list contained the looked-up text). Each label appears once.
    pub fn explain(&self, facts: &dyn Facts) -> Vec<(String, OwnedValue)> {
        let mut rec = Explainer {
            source: &self.inner.source,
            out: Vec::new(),
        };
        cond(&self.inner.root, facts, &mut rec);
        rec.out
    }

    /// The rule text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.inner.source
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schema::FieldId;
    use crate::value::{Agg, Type, Value};
    use std::collections::HashMap;

    pub(crate) const AMOUNT: FieldId = FieldId(0);
    pub(crate) const AVG: FieldId = FieldId(1);
    pub(crate) const COUNTRY: FieldId = FieldId(2);
    pub(crate) const LAST_COUNTRY: FieldId = FieldId(3);
    pub(crate) const MINUTES: FieldId = FieldId(4);
    pub(crate) const MCC: FieldId = FieldId(5);
    pub(crate) const IP: FieldId = FieldId(6);
    pub(crate) const EMAIL: FieldId = FieldId(7);
    pub(crate) const VPN: FieldId = FieldId(8);
    pub(crate) const USER: EntityId = EntityId(0);
    pub(crate) const CARD: EntityId = EntityId(1);

    pub(crate) fn schema() -> Schema {
        Schema::new()
            .field("amount", Type::Number, AMOUNT)
            .field("user.avg_amount_30d", Type::Number, AVG)
            .field("location.country", Type::Text, COUNTRY)
            .field("user.last_country", Type::Text, LAST_COUNTRY)
            .field("minutes_since_last", Type::Number, MINUTES)
            .field("merchant_category", Type::Text, MCC)
            .field("ip", Type::Text, IP)
            .field("email", Type::Text, EMAIL)
            .field("is_vpn", Type::Bool, VPN)
            .entity("user", USER)
            .entity("card", CARD)
            .list("high_risk_merchants")
    }

    /// A tiny in-memory [`Facts`] for tests.
    #[derive(Default)]
    pub(crate) struct Mock {
        pub fields: HashMap<u16, OwnedValue>,
        pub windows: HashMap<(u8, Agg, u64), OwnedValue>,
        pub lists: HashMap<String, Vec<String>>,
        pub distinct_users: HashMap<(u8, u64), f64>,
    }

    impl Mock {
        pub(crate) fn set(mut self, id: FieldId, v: OwnedValue) -> Self {
            self.fields.insert(id.0, v);
            self
        }
        pub(crate) fn num(self, id: FieldId, x: f64) -> Self {
            self.set(id, OwnedValue::Number(x))
        }
        pub(crate) fn text(self, id: FieldId, s: &str) -> Self {
            self.set(id, OwnedValue::Text(s.into()))
        }
        pub(crate) fn window(mut self, e: EntityId, agg: Agg, ms: u64, v: f64) -> Self {
            self.windows.insert((e.0, agg, ms), OwnedValue::Number(v));
            self
        }
        pub(crate) fn distinct(mut self, e: EntityId, ms: u64, users: f64) -> Self {
            self.distinct_users.insert((e.0, ms), users);
            self
        }
        pub(crate) fn list(mut self, name: &str, items: &[&str]) -> Self {
            self.lists
                .insert(name.into(), items.iter().map(|s| s.to_string()).collect());
            self
        }
    }

    impl Facts for Mock {
        fn field(&self, id: FieldId) -> Value<'_> {
            self.fields
                .get(&id.0)
                .map_or(Value::Null, OwnedValue::as_value)
        }
        fn window(&self, entity: EntityId, agg: Agg, window_ms: u64) -> Value<'_> {
            match self.windows.get(&(entity.0, agg, window_ms)) {
                Some(v) => v.as_value(),
                None if matches!(agg, Agg::Count | Agg::Sum) => Value::Number(0.0),
                None => Value::Null,
            }
        }
        fn distinct_users(&self, entity: EntityId, window_ms: u64) -> Value<'_> {
            self.distinct_users
                .get(&(entity.0, window_ms))
                .map_or(Value::Null, |n| Value::Number(*n))
        }
        fn list_contains(&self, list: &str, value: &str) -> bool {
            self.lists
                .get(list)
                .is_some_and(|l| l.iter().any(|x| x == value))
        }
    }

    pub(crate) fn compile(src: &str) -> Expr {
        Expr::compile(src, &schema()).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    pub(crate) fn eval(src: &str, facts: &Mock) -> bool {
        compile(src).matches(facts)
    }

    #[test]
    fn spec_examples() {
        let facts = Mock::default()
            .num(AMOUNT, 912.5)
            .num(AVG, 100.0)
            .text(COUNTRY, "FR")
            .text(LAST_COUNTRY, "DE")
            .num(MINUTES, 12.0)
            .text(MCC, "gambling")
            .text(IP, "10.1.2.3")
            .text(EMAIL, "bob@example.com")
            .window(USER, Agg::Count, 300_000, 12.0)
            .list("high_risk_merchants", &["gambling"]);
        assert!(eval(
            "amount > 5 * user.avg_amount_30d and location.country != user.last_country and minutes_since_last < 60",
            &facts
        ));
        assert!(eval("count(user, 5m) > 10", &facts));
        assert!(!eval("count(user, 1h) > 10", &facts));
        assert!(eval("merchant_category in @high_risk_merchants", &facts));
        assert!(eval(
            r#"merchant_category in ["gambling", "crypto"] or ip starts_with "10.""#,
            &facts
        ));
        assert!(eval(r#"email matches "^[a-z]+@example\\.com$""#, &facts));
        assert!(!eval(r#"email matches "^[a-z]+@example\\.org$""#, &facts));
    }

    #[test]
    fn operators_evaluate() {
        let f = Mock::default()
            .num(AMOUNT, 10.0)
            .text(COUNTRY, "FR")
            .text(IP, "10.0.0.1")
            .set(VPN, OwnedValue::Bool(true));
        let cases = [
            ("amount = 10", true),
            ("amount == 10", true),
            ("amount != 10", false),
            ("amount > 9.5", true),
            ("amount >= 10", true),
            ("amount < 10", false),
            ("amount <= 10", true),
            ("amount + 1 = 11", true),
            ("amount - 1 = 9", true),
            ("amount * 2 = 20", true),
            ("amount / 4 = 2.5", true),
            ("amount % 3 = 1", true),
            ("-amount = -10", true),
            ("abs(0 - amount) = 10", true),
            ("log(amount) > 2.30 and log(amount) < 2.31", true),
            ("1_000 = 1e3", true),
            ("amount in [1, 10, 100]", true),
            ("amount in [-0, 1]", false),
            ("amount - 10 in [-0]", true),
            ("amount not in [1, 10]", false),
            (r#"location.country = "FR""#, true),
            (r#"location.country != "FR""#, false),
            (r#"location.country in ["DE", "FR"]"#, true),
            (r#"location.country not in ["DE", "IT"]"#, true),
            (r#"ip contains ".0.""#, true),
            (r#"ip starts_with "10.""#, true),
            (r#"ip ends_with ".1""#, true),
            (r#"ip ends_with """#, true),
            (r#"ip matches "^10\\.""#, true),
            ("is_vpn", true),
            ("is_vpn = true", true),
            ("is_vpn != false", true),
            ("not is_vpn", false),
            ("is_vpn and amount > 5", true),
            ("is_vpn AND NOT amount > 5", false),
            ("amount > 100 or is_vpn", true),
            ("amount > 100 OR not is_vpn", false),
            ("(amount > 5) = true", true),
            ("true", true),
            ("false or not false", true),
            (r#"location.country = location.country"#, true),
        ];
        for (src, want) in cases {
            assert_eq!(eval(src, &f), want, "{src}");
        }
    }

    #[test]
    fn a_zero_amount_is_a_value_not_a_missing_one() {
        // Zero-amount authorisations (card checks) are valid events: rules can single them out.
        let zero = Mock::default().num(AMOUNT, 0.0).num(AVG, 40.0);
        let cases = [
            ("amount == 0", true),
            ("amount = 0 and not (amount > 0)", true),
            ("amount < 1", true),
            ("amount = null", false),
            ("amount in [0, 1]", true),
            // Dividing by a zero amount has no value, so a comparison on it does not match.
            ("user.avg_amount_30d / amount > 1", false),
        ];
        for (src, want) in cases {
            assert_eq!(eval(src, &zero), want, "{src}");
        }
        let paid = Mock::default().num(AMOUNT, 0.01);
        assert!(!eval("amount == 0", &paid));
    }

    #[test]
    fn null_semantics() {
        let none = Mock::default();
        let cases = [
            ("amount > 1", false),
            ("amount < 1", false),
            ("amount = 1", false),
            ("amount != 1", false),
            ("not amount > 1", true),
            ("not (amount != 1)", true),
            ("amount + 1 > 0", false),
            ("-amount < 1", false),
            ("abs(amount) >= 0", false),
            ("amount in [1, 2]", false),
            ("amount not in [1, 2]", false),
            ("not (amount in [1, 2])", true),
            (r#"location.country = "FR""#, false),
            (r#"location.country != "FR""#, false),
            (r#"location.country contains """#, false),
            (r#"location.country matches ".*""#, false),
            ("merchant_category in @high_risk_merchants", false),
            ("merchant_category not in @high_risk_merchants", false),
            ("is_vpn", false),
            ("not is_vpn", true),
            ("is_vpn = false", false),
            ("is_vpn != true", false),
            ("amount = null", true),
            ("null = amount", true),
            ("amount != null", false),
            ("location.country = null", true),
            ("is_vpn = null", true),
            ("amount + 1 = null", true),
            ("amount > 1 or not amount > 1", true),
            // Empty windows: count/sum are 0, avg/min/max are missing.
            ("count(user, 1h) = 0", true),
            ("sum(user, 1h) = 0", true),
            ("avg(user, 1h) = null", true),
            ("min(user, 1h) < 1", false),
            ("max(user, 1h) >= 0", false),
        ];
        for (src, want) in cases {
            assert_eq!(eval(src, &none), want, "{src}");
        }
        let f = Mock::default().num(AMOUNT, 0.0).num(AVG, 5.0);
        let cases = [
            ("user.avg_amount_30d / amount > 0", false),
            ("user.avg_amount_30d / amount = null", true),
            ("user.avg_amount_30d % amount = null", true),
            ("log(amount) = null", true),
            ("log(0 - user.avg_amount_30d) = null", true),
            ("amount != null", true),
        ];
        for (src, want) in cases {
            assert_eq!(eval(src, &f), want, "{src}");
        }
    }

    #[test]
    fn odd_values_do_not_panic() {
        let odd = [
            OwnedValue::Number(f64::NAN),
            OwnedValue::Number(f64::INFINITY),
            OwnedValue::Number(f64::NEG_INFINITY),
            OwnedValue::Number(-0.0),
            OwnedValue::Number(f64::MAX),
            OwnedValue::Text(String::new()),
            OwnedValue::Text("日本語 🎉 \u{0}".into()),
            OwnedValue::Bool(true),
            OwnedValue::Null,
        ];
        let rules = [
            "amount * user.avg_amount_30d - amount > amount / user.avg_amount_30d % 3",
            "abs(amount) > log(user.avg_amount_30d)",
            "amount in [0, 1, -1]",
            r#"location.country matches "^\\p{L}+$" or location.country contains "本""#,
            r#"location.country in ["", "日本語 🎉"] and not is_vpn"#,
            "location.country = user.last_country",
            "is_vpn = (amount > 1)",
            "merchant_category in @high_risk_merchants",
        ];
        for v in &odd {
            for w in &odd {
                let f = Mock::default()
                    .set(AMOUNT, v.clone())
                    .set(AVG, w.clone())
                    .set(COUNTRY, v.clone())
                    .set(LAST_COUNTRY, w.clone())
                    .set(MCC, v.clone())
                    .set(VPN, w.clone())
                    .list("high_risk_merchants", &[""]);
                for r in rules {
                    let e = compile(r);
                    let m = e.matches(&f);
                    let _ = e.explain(&f);
                    assert_eq!(m, e.matches(&f));
                }
            }
        }
        // NaN is missing: `!=` is false rather than true.
        let f = Mock::default().num(AMOUNT, f64::NAN);
        assert!(!eval("amount != 1", &f));
        assert!(eval("amount = null", &f));
        // Infinity minus infinity is missing.
        let f = Mock::default().num(AMOUNT, f64::INFINITY);
        assert!(eval("amount > 1e300", &f));
        assert!(eval("amount - amount = null", &f));
        // Wrong-typed values are missing.
        let f = Mock::default().text(AMOUNT, "12").num(COUNTRY, 1.0);
        assert!(eval("amount = null and location.country = null", &f));
    }

    #[test]
    fn explain_lists_leaves_in_source_order() {
        let f = Mock::default()
            .num(AMOUNT, 912.5)
            .text(COUNTRY, "FR")
            .text(MCC, "crypto")
            .window(USER, Agg::Count, 300_000, 12.0)
            .list("high_risk_merchants", &["crypto"]);
        let e = compile(
            "amount > 1000 and count(user, 5m) > 10 or location.country = \"FR\" and amount > 5\n  or merchant_category in @high_risk_merchants or is_vpn",
        );
        assert!(e.matches(&f));
        let got = e.explain(&f);
        let want: Vec<(String, OwnedValue)> = vec![
            ("amount".into(), OwnedValue::Number(912.5)),
            ("count(user, 5m)".into(), OwnedValue::Number(12.0)),
            ("location.country".into(), OwnedValue::Text("FR".into())),
            (
                "merchant_category".into(),
                OwnedValue::Text("crypto".into()),
            ),
            ("@high_risk_merchants".into(), OwnedValue::Bool(true)),
            ("is_vpn".into(), OwnedValue::Null),
        ];
        assert_eq!(got, want);
        // Literals and arithmetic are not leaves; a missing text value is Null.
        let e = compile("abs(amount * 2) > 1 and merchant_category in @high_risk_merchants");
        let got = e.explain(&Mock::default());
        assert_eq!(
            got,
            vec![
                ("amount".to_string(), OwnedValue::Null),
                ("merchant_category".to_string(), OwnedValue::Null),
                ("@high_risk_merchants".to_string(), OwnedValue::Null),
            ]
        );
    }

    #[test]
    fn distinct_users_is_a_typed_window_function() {
        let e = compile("card.distinct_users(24h) > 2 and amount > 1");
        assert_eq!(e.distinct_user_entities(), &[CARD]);
        let three = Mock::default()
            .num(AMOUNT, 5.0)
            .distinct(CARD, 86_400_000, 3.0);
        assert!(e.matches(&three));
        let two = Mock::default()
            .num(AMOUNT, 5.0)
            .distinct(CARD, 86_400_000, 2.0);
        assert!(!e.matches(&two));
        // Unknown (no card, or the count could not be had): the comparison is false.
        assert!(!e.matches(&Mock::default().num(AMOUNT, 5.0)));
        assert!(compile("not (card.distinct_users(24h) > 2)").matches(&Mock::default()));
        assert_eq!(
            e.explain(&three)[0],
            ("card.distinct_users(24h)".into(), OwnedValue::Number(3.0))
        );
        assert_eq!(
            compile("user.distinct_users(1h) + card.distinct_users(5m) >= 0 or card.distinct_users(1m) > 1")
                .distinct_user_entities(),
            &[USER, CARD]
        );
        assert!(compile("amount > 1").distinct_user_entities().is_empty());
        let err = |src: &str| Expr::compile(src, &schema()).unwrap_err().to_string();
        assert_eq!(
            err("devise.distinct_users(24h) > 2"),
            "line 1, column 1: unknown entity `devise` in `distinct_users`; valid entities are: card, user"
        );
        assert!(err("card.distinct_users(24) > 2").contains("expected a duration"));
        assert!(err("card.distinct_users(24h, 1h) > 2").contains("`)`"));
        assert!(err("card.distinct_users(24h)").contains("condition"));
        assert!(err("card.distinct_users(24h) = \"x\"")
            .contains("is a number and cannot be compared with text"));
    }

    #[test]
    fn source_and_sharing() {
        let e = compile("amount > 1");
        assert_eq!(e.source(), "amount > 1");
        let e2 = e.clone();
        let handle = std::thread::spawn(move || e2.matches(&Mock::default().num(AMOUNT, 2.0)));
        assert!(handle.join().unwrap());
        fn assert_send_sync<T: Send + Sync + Clone + std::fmt::Debug>() {}
        assert_send_sync::<Expr>();
    }

    /// A tiny deterministic generator (xorshift64*), so no extra crates are needed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn check_error_position(src: &str, e: &RuleError) {
        let lines = src.split('\n').count() as u32;
        assert!(e.line >= 1 && e.line <= lines, "{src:?}: {e}");
        assert!(e.column >= 1, "{src:?}: {e}");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn fuzz_never_panics() {
        let schema = schema();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let facts = [
            Mock::default(),
            Mock::default()
                .num(AMOUNT, f64::NAN)
                .text(COUNTRY, "")
                .set(VPN, OwnedValue::Bool(false))
                .window(USER, Agg::Avg, 300_000, f64::INFINITY),
            Mock::default()
                .num(AMOUNT, 3.0)
                .num(AVG, 0.0)
                .text(COUNTRY, "FR")
                .text(MCC, "é")
                .list("high_risk_merchants", &["é"]),
        ];
        let vocab = [
            "amount",
            "user.avg_amount_30d",
            "location.country",
            "is_vpn",
            "merchant_category",
            "count(user, 5m)",
            "sum(card, 1h)",
            "avg(user,7d)",
            "user.distinct_users(1h)",
            "abs(",
            "log(",
            "(",
            ")",
            "[",
            "]",
            ",",
            "and",
            "or",
            "not",
            "AND",
            "NOT",
            "in",
            "not in",
            "contains",
            "starts_with",
            "ends_with",
            "matches",
            "true",
            "false",
            "null",
            "=",
            "==",
            "!=",
            ">",
            ">=",
            "<",
            "<=",
            "+",
            "-",
            "*",
            "/",
            "%",
            "0",
            "1",
            "-1",
            "2.5",
            "1e3",
            "1_000",
            "\"FR\"",
            "\"\"",
            "\"(\"",
            "\"^[a-z]+$\"",
            "\"\\\\d\"",
            "@high_risk_merchants",
            "@nope",
            "5m",
            "366d",
            "\n",
            "é",
            "\"",
            "\\",
            "count(",
            "user",
            "foo(",
            "@",
            "!",
            "'",
        ];
        let mut compiled = 0;
        for i in 0..4000 {
            let src = match i % 3 {
                0 => {
                    let n = rng.below(40);
                    let bytes: Vec<u8> = (0..n)
                        .map(|_| {
                            if rng.below(4) == 0 {
                                rng.next() as u8
                            } else {
                                b" ()[],.@\"\\=!<>+-*/%_0123456789abcdefmnosu\n"[rng.below(42)]
                            }
                        })
                        .collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                1 => {
                    let n = 1 + rng.below(14);
                    (0..n)
                        .map(|_| vocab[rng.below(vocab.len())])
                        .collect::<Vec<_>>()
                        .join(if rng.below(3) == 0 { "" } else { " " })
                }
                _ => {
                    // Mostly well-formed rules, sometimes with one token mutated.
                    let mut parts = Vec::new();
                    gen_cond(&mut rng, 0, &mut parts);
                    if rng.below(3) == 0 && !parts.is_empty() {
                        let k = rng.below(parts.len());
                        match rng.below(3) {
                            0 => {
                                parts.remove(k);
                            }
                            1 => parts.insert(k, vocab[rng.below(vocab.len())].to_string()),
                            _ => parts[k] = vocab[rng.below(vocab.len())].to_string(),
                        }
                    }
                    parts.join(" ")
                }
            };
            match Expr::compile(&src, &schema) {
                Ok(e) => {
                    compiled += 1;
                    for f in &facts {
                        let m = e.matches(f);
                        let _ = e.explain(f);
                        assert_eq!(m, e.matches(f));
                    }
                }
                Err(e) => check_error_position(&src, &e),
            }
        }
        assert!(compiled > 500, "only {compiled} generated rules compiled");
    }

    fn gen_num(rng: &mut Rng, depth: usize, out: &mut Vec<String>) {
        let leaves = [
            "amount",
            "user.avg_amount_30d",
            "minutes_since_last",
            "0",
            "1",
            "-2.5",
            "1e300",
            "count(user, 5m)",
            "sum(card, 1h)",
            "avg(user, 7d)",
            "min(card, 30s)",
            "max(user, 366d)",
            "card.distinct_users(24h)",
        ];
        match if depth > 4 { 0 } else { rng.below(5) } {
            0 | 1 => out.push(leaves[rng.below(leaves.len())].into()),
            2 => {
                gen_num(rng, depth + 1, out);
                out.push(["+", "-", "*", "/", "%"][rng.below(5)].into());
                gen_num(rng, depth + 1, out);
            }
            3 => {
                out.push(["abs(", "log(", "-(", "("][rng.below(4)].into());
                gen_num(rng, depth + 1, out);
                out.push(")".into());
            }
            _ => out.push("-amount".into()),
        }
    }

    fn gen_text(rng: &mut Rng, out: &mut Vec<String>) {
        let leaves = [
            "location.country",
            "user.last_country",
            "merchant_category",
            "ip",
            "email",
            "\"FR\"",
            "\"\"",
            "\"é\"",
        ];
        out.push(leaves[rng.below(leaves.len())].into());
    }

    fn gen_cond(rng: &mut Rng, depth: usize, out: &mut Vec<String>) {
        match if depth > 4 {
            rng.below(3)
        } else {
            rng.below(9)
        } {
            0 => {
                gen_num(rng, depth + 1, out);
                out.push(["=", "!=", ">", ">=", "<", "<="][rng.below(6)].into());
                gen_num(rng, depth + 1, out);
            }
            1 => {
                gen_text(rng, out);
                out.push(["=", "!=", "contains", "starts_with", "ends_with"][rng.below(5)].into());
                gen_text(rng, out);
            }
            2 => {
                let leaves = [
                    "is_vpn",
                    "true",
                    "false",
                    "amount = null",
                    "ip != null",
                    "merchant_category in @high_risk_merchants",
                    "location.country not in [\"FR\", \"DE\"]",
                    "amount in [1, -0, 3]",
                    "email matches \"^[a-z]+@\"",
                    "is_vpn = (amount > 3)",
                ];
                out.push(leaves[rng.below(leaves.len())].into());
            }
            3 | 4 => {
                gen_cond(rng, depth + 1, out);
                out.push(["and", "or", "AND", "OR"][rng.below(4)].into());
                gen_cond(rng, depth + 1, out);
            }
            5 => {
                out.push("not".into());
                gen_cond(rng, depth + 1, out);
            }
            _ => {
                out.push("(".into());
                gen_cond(rng, depth + 1, out);
                out.push(")".into());
            }
        }
    }
}
