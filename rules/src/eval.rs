//! Evaluation of compiled conditions against caller-supplied [`Facts`].
//!
//! The evaluator is generic over a [`Recorder`]: [`Quiet`] records nothing and
//! short-circuits (used by [`Expr::matches`](crate::Expr::matches)), while
//! [`Explainer`] evaluates every leaf and records its value (used by
//! [`Expr::explain`](crate::Expr::explain)).

use crate::check::{norm_zero, Arith, CmpOp, Cond, Num, Operand, TextOp, Txt};
use crate::parser::Span;
use crate::schema::{EntityId, FieldId};
use crate::value::{Agg, OwnedValue, Value};

/// Resolves the values a rule looks at. Implemented by the caller.
///
/// Values are requested lazily, only when evaluation reaches them. A value of
/// the wrong type (for example text for a number field) is treated as missing.
pub trait Facts {
    /// The value of a field of the current event, or [`Value::Null`] when missing.
    fn field(&self, id: FieldId) -> Value<'_>;

    /// Aggregate over the entity's event-time window of `window_ms`
    /// milliseconds ending at the current event (the caller decides
    /// inclusion). Count of nothing is 0; sum of nothing is 0; avg/min/max of
    /// nothing is Null.
    fn window(&self, entity: EntityId, agg: Agg, window_ms: u64) -> Value<'_>;

    /// Distinct users of the current event's `entity` (its device, card …) over the
    /// event-time window of `window_ms` milliseconds ending at the current event, the
    /// current event's user included. Null when the event has no such entity or the count
    /// is unknown (then comparisons with it are false). By default always unknown.
    fn distinct_users(&self, entity: EntityId, window_ms: u64) -> Value<'_> {
        let _ = (entity, window_ms);
        Value::Null
    }

    /// Whether the named list contains the value (lists are sets of text items).
    fn list_contains(&self, list: &str, value: &str) -> bool;

    /// The value of `metadata.<key>` on the current event, for schemas that allow it
    /// ([`Schema::metadata`](crate::Schema::metadata)): [`Value::Null`] when missing. By
    /// default always missing.
    fn metadata(&self, key: &str) -> Value<'_> {
        let _ = key;
        Value::Null
    }
}

/// Receives the value of each leaf as it is evaluated.
pub(crate) trait Recorder {
    /// Evaluate every leaf instead of short-circuiting.
    const FULL: bool;
    /// Called with the leaf's span and the value used.
    fn record(&mut self, span: Span, value: Value<'_>);
}

/// Records nothing and short-circuits.
pub(crate) struct Quiet;

impl Recorder for Quiet {
    const FULL: bool = false;

    #[inline(always)]
    fn record(&mut self, _span: Span, _value: Value<'_>) {}
}

/// Records `(source text of leaf, value)` pairs, first occurrence of each label only.
pub(crate) struct Explainer<'s> {
    pub source: &'s str,
    pub out: Vec<(String, OwnedValue)>,
}

impl Recorder for Explainer<'_> {
    const FULL: bool = true;

    fn record(&mut self, span: Span, value: Value<'_>) {
        let label = span.text(self.source);
        if !self.out.iter().any(|(l, _)| l == label) {
            self.out.push((label.to_owned(), value.to_owned_value()));
        }
    }
}

fn finite_or_inf(x: f64) -> Option<f64> {
    if x.is_nan() {
        None
    } else {
        Some(x)
    }
}

fn as_num(v: Value<'_>) -> Option<f64> {
    match v {
        Value::Number(x) => finite_or_inf(x),
        _ => None,
    }
}

fn num_value(x: Option<f64>) -> Value<'static> {
    x.map_or(Value::Null, Value::Number)
}

/// Evaluates a number expression; `None` means Null.
pub(crate) fn num<R: Recorder>(n: &Num, facts: &dyn Facts, r: &mut R) -> Option<f64> {
    match n {
        Num::Const(x) => Some(*x),
        Num::Field(id, span) => {
            let x = as_num(facts.field(*id));
            r.record(*span, num_value(x));
            x
        }
        Num::Meta(key, span) => {
            let x = as_num(facts.metadata(key));
            r.record(*span, num_value(x));
            x
        }
        Num::Window {
            entity,
            agg,
            window_ms,
            span,
        } => {
            let x = as_num(facts.window(*entity, *agg, *window_ms));
            r.record(*span, num_value(x));
            x
        }
        Num::DistinctUsers {
            entity,
            window_ms,
            span,
        } => {
            let x = as_num(facts.distinct_users(*entity, *window_ms));
            r.record(*span, num_value(x));
            x
        }
        Num::Neg(a) => num(a, facts, r).map(|x| -x),
        Num::Abs(a) => num(a, facts, r).map(f64::abs),
        Num::Log(a) => num(a, facts, r).filter(|x| *x > 0.0).map(f64::ln),
        Num::Arith(op, a, b) => {
            let x = num(a, facts, r);
            if x.is_none() && !R::FULL {
                return None;
            }
            let y = num(b, facts, r);
            let (x, y) = (x?, y?);
            let z = match op {
                Arith::Add => x + y,
                Arith::Sub => x - y,
                Arith::Mul => x * y,
                Arith::Div if y == 0.0 => return None,
                Arith::Div => x / y,
                Arith::Rem if y == 0.0 => return None,
                Arith::Rem => x % y,
            };
            finite_or_inf(z)
        }
    }
}

/// Evaluates a text expression; `None` means Null.
pub(crate) fn txt<'a, R: Recorder>(t: &'a Txt, facts: &'a dyn Facts, r: &mut R) -> Option<&'a str> {
    match t {
        Txt::Const(s) => Some(s),
        Txt::Field(id, span) => {
            let s = match facts.field(*id) {
                Value::Text(s) => Some(s),
                _ => None,
            };
            r.record(*span, s.map_or(Value::Null, Value::Text));
            s
        }
        Txt::Meta(key, span) => {
            let s = match facts.metadata(key) {
                Value::Text(s) => Some(s),
                _ => None,
            };
            r.record(*span, s.map_or(Value::Null, Value::Text));
            s
        }
    }
}

/// Evaluates a condition that may be Null (only a missing yes/no field is).
fn cond_opt<R: Recorder>(c: &Cond, facts: &dyn Facts, r: &mut R) -> Option<bool> {
    match c {
        Cond::Field(id, span) => {
            let b = match facts.field(*id) {
                Value::Bool(b) => Some(b),
                _ => None,
            };
            r.record(*span, b.map_or(Value::Null, Value::Bool));
            b
        }
        Cond::Meta(key, span) => {
            let b = match facts.metadata(key) {
                Value::Bool(b) => Some(b),
                _ => None,
            };
            r.record(*span, b.map_or(Value::Null, Value::Bool));
            b
        }
        other => Some(cond(other, facts, r)),
    }
}

/// Evaluates both sides (in order) and applies `f` when neither is Null.
/// Without a full recorder, the right side is skipped when the left is Null.
macro_rules! both {
    ($R:ty, $a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {{
        let l = $a;
        if l.is_none() && !<$R>::FULL {
            return false;
        }
        let rr = $b;
        match (l, rr) {
            (Some($x), Some($y)) => $body,
            _ => false,
        }
    }};
}

/// Evaluates a condition; Null operands make comparisons false.
pub(crate) fn cond<R: Recorder>(c: &Cond, facts: &dyn Facts, r: &mut R) -> bool {
    match c {
        Cond::Const(b) => *b,
        Cond::Field(..) | Cond::Meta(..) => cond_opt(c, facts, r).unwrap_or(false),
        Cond::Not(a) => !cond(a, facts, r),
        Cond::And(a, b) => {
            let x = cond(a, facts, r);
            if !x && !R::FULL {
                return false;
            }
            let y = cond(b, facts, r);
            x && y
        }
        Cond::Or(a, b) => {
            let x = cond(a, facts, r);
            if x && !R::FULL {
                return true;
            }
            let y = cond(b, facts, r);
            x || y
        }
        Cond::CmpNum(op, a, b) => both!(R, num(a, facts, r), num(b, facts, r), |x, y| match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
        }),
        Cond::EqText { negated, lhs, rhs } => {
            both!(R, txt(lhs, facts, r), txt(rhs, facts, r), |x, y| (x == y)
                != *negated)
        }
        Cond::EqBool { negated, lhs, rhs } => both!(
            R,
            cond_opt(lhs, facts, r),
            cond_opt(rhs, facts, r),
            |x, y| (x == y) != *negated
        ),
        Cond::IsNull { negated, operand } => {
            let missing = match operand {
                Operand::Num(n) => num(n, facts, r).is_none(),
                Operand::Txt(t) => txt(t, facts, r).is_none(),
                Operand::Cond(c) => cond_opt(c, facts, r).is_none(),
                Operand::Meta(key, span) => {
                    let value = facts.metadata(key);
                    r.record(*span, value);
                    matches!(value, Value::Null)
                }
            };
            missing != *negated
        }
        Cond::InNumbers {
            negated,
            lhs,
            items,
        } => match num(lhs, facts, r) {
            Some(x) => {
                let x = norm_zero(x);
                items.binary_search_by(|p| p.total_cmp(&x)).is_ok() != *negated
            }
            None => false,
        },
        Cond::InTexts {
            negated,
            lhs,
            items,
        } => match txt(lhs, facts, r) {
            Some(s) => items.binary_search_by(|p| (**p).cmp(s)).is_ok() != *negated,
            None => false,
        },
        Cond::InList {
            negated,
            lhs,
            list,
            span,
        } => match txt(lhs, facts, r) {
            Some(s) => {
                let found = facts.list_contains(list, s);
                r.record(*span, Value::Bool(found));
                found != *negated
            }
            None => {
                r.record(*span, Value::Null);
                false
            }
        },
        Cond::Text(op, a, b) => both!(R, txt(a, facts, r), txt(b, facts, r), |x, y| match op {
            TextOp::Contains => x.contains(y),
            TextOp::StartsWith => x.starts_with(y),
            TextOp::EndsWith => x.ends_with(y),
        }),
        Cond::Matches(a, re) => match txt(a, facts, r) {
            Some(s) => re.is_match(s),
            None => false,
        },
    }
}
