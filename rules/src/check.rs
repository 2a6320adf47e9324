//! Type checking: turns a syntax tree into an executable tree with every
//! name resolved against the [`Schema`].

use crate::error::Located;
use crate::parser::{BinOp, ListItems, ListRef, MathFn, Node, NodeKind, Span};
use crate::schema::{suggest, EntityId, FieldId, Schema};
use crate::value::{Agg, Type};
use regex::{Regex, RegexBuilder};
use std::cell::RefCell;

/// Compiled-size limit for `matches` patterns, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A compiled number-valued expression.
#[derive(Debug, Clone)]
pub(crate) enum Num {
    Const(f64),
    Field(FieldId, Span),
    /// `metadata.<key>` read as a number.
    Meta(Box<str>, Span),
    Window {
        entity: EntityId,
        agg: Agg,
        window_ms: u64,
        span: Span,
    },
    /// Distinct users of the current event's entity over a window.
    DistinctUsers {
        entity: EntityId,
        window_ms: u64,
        span: Span,
    },
    Neg(Box<Num>),
    Arith(Arith, Box<Num>, Box<Num>),
    Abs(Box<Num>),
    Log(Box<Num>),
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// A compiled text-valued expression.
#[derive(Debug, Clone)]
pub(crate) enum Txt {
    Const(Box<str>),
    Field(FieldId, Span),
    /// `metadata.<key>` read as text.
    Meta(Box<str>, Span),
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A text test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// Any compiled expression, for `= null` / `!= null`.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Num(Num),
    Txt(Txt),
    Cond(Box<Cond>),
    /// `metadata.<key>`, present whatever its type.
    Meta(Box<str>, Span),
}

/// A compiled condition (yes/no expression).
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Const(bool),
    Field(FieldId, Span),
    /// `metadata.<key>` read as a yes/no value.
    Meta(Box<str>, Span),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    CmpNum(CmpOp, Num, Num),
    EqText {
        negated: bool,
        lhs: Txt,
        rhs: Txt,
    },
    EqBool {
        negated: bool,
        lhs: Box<Cond>,
        rhs: Box<Cond>,
    },
    IsNull {
        negated: bool,
        operand: Operand,
    },
    /// Items sorted with `f64::total_cmp`, negative zero normalized.
    InNumbers {
        negated: bool,
        lhs: Num,
        items: Box<[f64]>,
    },
    /// Items sorted and deduplicated.
    InTexts {
        negated: bool,
        lhs: Txt,
        items: Box<[Box<str>]>,
    },
    InList {
        negated: bool,
        lhs: Txt,
        list: Box<str>,
        span: Span,
    },
    Text(TextOp, Txt, Txt),
    Matches(Txt, Box<Regex>),
}

/// A checked expression of some type, the `null` literal, or an open field.
enum Typed {
    Num(Num),
    Txt(Txt),
    Cond(Cond),
    Null,
    /// `metadata.<key>`: its type is the one its use asks for (see [`Typed::read_as`]).
    Open(Box<str>, Span),
}

impl Typed {
    fn ty(&self) -> Option<Type> {
        match self {
            Typed::Num(_) => Some(Type::Number),
            Typed::Txt(_) => Some(Type::Text),
            Typed::Cond(_) => Some(Type::Bool),
            Typed::Null | Typed::Open(..) => None,
        }
    }

    /// An open field read as `ty` (a value of another type then reads as missing); any other
    /// expression unchanged.
    fn read_as(self, ty: Type) -> Typed {
        match self {
            Typed::Open(key, span) => match ty {
                Type::Number => Typed::Num(Num::Meta(key, span)),
                Type::Text => Typed::Txt(Txt::Meta(key, span)),
                Type::Bool => Typed::Cond(Cond::Meta(key, span)),
            },
            other => other,
        }
    }
}

/// Checks `node` against `schema`; the whole expression must be a condition.
/// A type-checked condition and the entities whose distinct users it asks for.
pub(crate) struct Checked {
    pub(crate) root: Cond,
    pub(crate) distinct_user_entities: Vec<EntityId>,
}

pub(crate) fn check(node: &Node, src: &str, schema: &Schema) -> Result<Checked, Located> {
    let checker = Checker {
        src,
        schema,
        distinct_user_entities: RefCell::new(Vec::new()),
    };
    let typed = checker.check(node)?.read_as(Type::Bool);
    match typed {
        Typed::Cond(root) => Ok(Checked {
            root,
            distinct_user_entities: checker.distinct_user_entities.into_inner(),
        }),
        Typed::Null => Err(Checker::null_error(node)),
        other => Err(Located::new(
            node.span.start(),
            format!(
                "a rule must be a condition that is either true or false, but {}",
                checker.subject(node, &other)
            ),
        )),
    }
}

/// Normalizes negative zero to positive zero (so `-0 = 0` in list lookups).
pub(crate) fn norm_zero(x: f64) -> f64 {
    x + 0.0
}

struct Checker<'a> {
    src: &'a str,
    schema: &'a Schema,
    /// Entities named by `<entity>.distinct_users(..)`, each once.
    distinct_user_entities: RefCell<Vec<EntityId>>,
}

impl Checker<'_> {
    /// The source text of `node`, shortened for messages.
    fn snippet(&self, node: &Node) -> String {
        let text = node.span.text(self.src).trim();
        if text.chars().count() > 40 {
            let cut: String = text.chars().take(37).collect();
            format!("{cut}...")
        } else {
            text.to_owned()
        }
    }

    /// "`amount` is a number", "\"abc\" is text", ...
    fn subject(&self, node: &Node, typed: &Typed) -> String {
        match (typed, typed.ty()) {
            (_, Some(ty)) => format!("`{}` is {}", self.snippet(node), ty.phrase()),
            (Typed::Open(..), None) => format!(
                "`{}` is a metadata field, whose type comes from what it is compared with",
                self.snippet(node)
            ),
            (_, None) => "`null` is not a value".to_owned(),
        }
    }

    /// "text \"abc\"", "the number 5", "`country`, which is text", ...
    fn object(&self, node: &Node, typed: &Typed) -> String {
        match (&node.kind, typed.ty()) {
            (NodeKind::Str(s), _) => format!("text {s:?}"),
            (NodeKind::Number(_), _) => format!("the number {}", self.snippet(node)),
            (NodeKind::Bool(b), _) => format!("the yes/no value `{b}`"),
            (_, Some(ty)) => format!("`{}`, which is {}", self.snippet(node), ty.phrase()),
            (_, None) => "`null`".to_owned(),
        }
    }

    fn null_error(node: &Node) -> Located {
        Located::new(
            node.span.start(),
            "`null` can only be used with `=` or `!=`, to check whether a value is missing",
        )
    }

    fn num(&self, node: &Node, what: impl FnOnce() -> String) -> Result<Num, Located> {
        match self.check(node)?.read_as(Type::Number) {
            Typed::Num(n) => Ok(n),
            Typed::Null => Err(Self::null_error(node)),
            other => Err(Located::new(
                node.span.start(),
                format!("{}, but {}", what(), self.subject(node, &other)),
            )),
        }
    }

    fn txt(&self, node: &Node, what: impl FnOnce() -> String) -> Result<Txt, Located> {
        match self.check(node)?.read_as(Type::Text) {
            Typed::Txt(t) => Ok(t),
            Typed::Null => Err(Self::null_error(node)),
            other => Err(Located::new(
                node.span.start(),
                format!("{}, but {}", what(), self.subject(node, &other)),
            )),
        }
    }

    fn cond(&self, node: &Node, what: impl FnOnce() -> String) -> Result<Cond, Located> {
        match self.check(node)?.read_as(Type::Bool) {
            Typed::Cond(c) => Ok(c),
            Typed::Null => Err(Self::null_error(node)),
            other => Err(Located::new(
                node.span.start(),
                format!("{}, but {}", what(), self.subject(node, &other)),
            )),
        }
    }

    fn check(&self, node: &Node) -> Result<Typed, Located> {
        Ok(match &node.kind {
            NodeKind::Number(x) => Typed::Num(Num::Const(*x)),
            NodeKind::Str(s) => Typed::Txt(Txt::Const(s.as_str().into())),
            NodeKind::Bool(b) => Typed::Cond(Cond::Const(*b)),
            NodeKind::Null => Typed::Null,
            NodeKind::Field(name) => self.field(name, node)?,
            NodeKind::Window {
                agg,
                entity,
                entity_span,
                window_ms,
            } => {
                let Some(id) = self.schema.lookup_entity(entity) else {
                    return Err(self.unknown_entity(entity, *entity_span, agg.name()));
                };
                Typed::Num(Num::Window {
                    entity: id,
                    agg: *agg,
                    window_ms: *window_ms,
                    span: node.span,
                })
            }
            NodeKind::DistinctUsers {
                entity,
                entity_span,
                window_ms,
            } => {
                let Some(id) = self.schema.lookup_entity(entity) else {
                    return Err(self.unknown_entity(entity, *entity_span, "distinct_users"));
                };
                let mut used = self.distinct_user_entities.borrow_mut();
                if !used.contains(&id) {
                    used.push(id);
                }
                Typed::Num(Num::DistinctUsers {
                    entity: id,
                    window_ms: *window_ms,
                    span: node.span,
                })
            }
            NodeKind::Math(f, arg) => {
                let name = match f {
                    MathFn::Abs => "abs",
                    MathFn::Log => "log",
                };
                let a = Box::new(self.num(arg, || format!("`{name}` works on numbers"))?);
                Typed::Num(match f {
                    MathFn::Abs => Num::Abs(a),
                    MathFn::Log => Num::Log(a),
                })
            }
            NodeKind::Neg(arg) => match self.num(arg, || "`-` only works with numbers".into())? {
                Num::Const(x) => Typed::Num(Num::Const(-x)),
                n => Typed::Num(Num::Neg(Box::new(n))),
            },
            NodeKind::Not(arg) => Typed::Cond(Cond::Not(Box::new(
                self.cond(arg, || "`not` applies to a condition".into())?,
            ))),
            NodeKind::Binary(op, lhs, rhs) => self.binary(*op, lhs, rhs)?,
            NodeKind::In {
                negated,
                lhs,
                list,
                list_span,
            } => self.in_list(*negated, lhs, list, *list_span)?,
        })
    }

    fn field(&self, name: &str, node: &Node) -> Result<Typed, Located> {
        if let Some(key) = name.strip_prefix("metadata.") {
            if self.schema.has_metadata() && !key.is_empty() && !key.contains('.') {
                return Ok(Typed::Open(key.into(), node.span));
            }
        }
        let Some((ty, id)) = self.schema.lookup_field(name) else {
            let mut msg = format!("unknown field `{name}`");
            if let Some(s) = suggest(name, self.schema.field_names().map(|(n, _)| n)) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            return Err(Located::new(node.span.start(), msg));
        };
        Ok(match ty {
            Type::Number => Typed::Num(Num::Field(id, node.span)),
            Type::Text => Typed::Txt(Txt::Field(id, node.span)),
            Type::Bool => Typed::Cond(Cond::Field(id, node.span)),
        })
    }

    fn unknown_entity(&self, entity: &str, span: Span, function: &str) -> Located {
        let names: Vec<&str> = self.schema.entity_names().collect();
        let mut msg = format!("unknown entity `{entity}` in `{function}`");
        if let Some(s) = suggest(entity, names.iter().copied()) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        }
        if names.is_empty() {
            msg.push_str("; no entities are available for window functions");
        } else {
            msg.push_str(&format!("; valid entities are: {}", names.join(", ")));
        }
        Located::new(span.start(), msg)
    }

    fn binary(&self, op: BinOp, lhs: &Node, rhs: &Node) -> Result<Typed, Located> {
        let sym = op.symbol();
        Ok(match op {
            BinOp::And | BinOp::Or => {
                let what = || format!("`{sym}` needs a condition on each side");
                let a = Box::new(self.cond(lhs, what)?);
                let b = Box::new(self.cond(rhs, what)?);
                Typed::Cond(if op == BinOp::And {
                    Cond::And(a, b)
                } else {
                    Cond::Or(a, b)
                })
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let what = || format!("`{sym}` only works with numbers");
                let a = self.num(lhs, what)?;
                let b = self.num(rhs, what)?;
                let arith = match op {
                    BinOp::Add => Arith::Add,
                    BinOp::Sub => Arith::Sub,
                    BinOp::Mul => Arith::Mul,
                    BinOp::Div => Arith::Div,
                    _ => Arith::Rem,
                };
                Typed::Num(Num::Arith(arith, Box::new(a), Box::new(b)))
            }
            BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le => {
                let cmp = match op {
                    BinOp::Gt => CmpOp::Gt,
                    BinOp::Ge => CmpOp::Ge,
                    BinOp::Lt => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                let a = self.num(lhs, || format!("`{sym}` only works with numbers"))?;
                let b_typed = self.check(rhs)?.read_as(Type::Number);
                match b_typed {
                    Typed::Num(b) => Typed::Cond(Cond::CmpNum(cmp, a, b)),
                    Typed::Null => return Err(Self::null_error(rhs)),
                    other => {
                        return Err(Located::new(
                            rhs.span.start(),
                            format!(
                                "`{}` is a number and cannot be compared with {}",
                                self.snippet(lhs),
                                self.object(rhs, &other)
                            ),
                        ))
                    }
                }
            }
            BinOp::Eq | BinOp::Ne => self.equality(op == BinOp::Ne, lhs, rhs)?,
            BinOp::Contains | BinOp::StartsWith | BinOp::EndsWith => {
                let what = || format!("`{sym}` works on text");
                let a = self.txt(lhs, what)?;
                let b = self.txt(rhs, what)?;
                let t = match op {
                    BinOp::Contains => TextOp::Contains,
                    BinOp::StartsWith => TextOp::StartsWith,
                    _ => TextOp::EndsWith,
                };
                Typed::Cond(Cond::Text(t, a, b))
            }
            BinOp::Matches => {
                let a = self.txt(lhs, || "`matches` works on text".into())?;
                let NodeKind::Str(pattern) = &rhs.kind else {
                    return Err(Located::new(
                        rhs.span.start(),
                        "`matches` needs a pattern written as text in double quotes, like \"^[a-z]+$\"",
                    ));
                };
                let re = RegexBuilder::new(pattern)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| Located::new(rhs.span.start(), regex_message(&e)))?;
                Typed::Cond(Cond::Matches(a, Box::new(re)))
            }
        })
    }

    fn equality(&self, negated: bool, lhs: &Node, rhs: &Node) -> Result<Typed, Located> {
        let a = self.check(lhs)?;
        let b = self.check(rhs)?;
        // An open field takes the type of the other side; two open fields have none.
        let (a, b) = match (a.ty(), b.ty()) {
            (None, Some(ty)) => (a.read_as(ty), b),
            (Some(ty), None) => (a, b.read_as(ty)),
            _ => (a, b),
        };
        if let (Typed::Open(..), Typed::Open(..)) = (&a, &b) {
            return Err(Located::new(
                rhs.span.start(),
                format!(
                    "`{}` and `{}` are both metadata fields, so neither says which type to \
                     compare; compare each with a value",
                    self.snippet(lhs),
                    self.snippet(rhs)
                ),
            ));
        }
        let operand = |t: Typed| match t {
            Typed::Num(n) => Some(Operand::Num(n)),
            Typed::Txt(t) => Some(Operand::Txt(t)),
            Typed::Cond(c) => Some(Operand::Cond(Box::new(c))),
            Typed::Open(key, span) => Some(Operand::Meta(key, span)),
            Typed::Null => None,
        };
        Ok(Typed::Cond(match (a, b) {
            (Typed::Null, Typed::Null) => return Err(Located::new(
                rhs.span.start(),
                "comparing `null` with `null` makes no sense; compare a field with `null` instead",
            )),
            (Typed::Null, other) | (other, Typed::Null) => Cond::IsNull {
                negated,
                operand: operand(other).unwrap_or(Operand::Cond(Box::new(Cond::Const(false)))),
            },
            (Typed::Num(x), Typed::Num(y)) => {
                Cond::CmpNum(if negated { CmpOp::Ne } else { CmpOp::Eq }, x, y)
            }
            (Typed::Txt(x), Typed::Txt(y)) => Cond::EqText {
                negated,
                lhs: x,
                rhs: y,
            },
            (Typed::Cond(x), Typed::Cond(y)) => Cond::EqBool {
                negated,
                lhs: Box::new(x),
                rhs: Box::new(y),
            },
            (x, y) => {
                return Err(Located::new(
                    rhs.span.start(),
                    format!(
                        "{} and cannot be compared with {}",
                        self.subject(lhs, &x),
                        self.object(rhs, &y)
                    ),
                ))
            }
        }))
    }

    fn in_list(
        &self,
        negated: bool,
        lhs: &Node,
        list: &ListRef,
        list_span: Span,
    ) -> Result<Typed, Located> {
        let a = self.check(lhs)?.read_as(match list {
            ListRef::Literal(ListItems::Numbers(_)) => Type::Number,
            _ => Type::Text,
        });
        if matches!(a, Typed::Null) {
            return Err(Self::null_error(lhs));
        }
        let mismatch = |kind: &str| {
            Located::new(
                lhs.span.start(),
                format!(
                    "{} and cannot be looked up in {kind}",
                    self.subject(lhs, &a)
                ),
            )
        };
        Ok(Typed::Cond(match list {
            ListRef::Named(name) => {
                let Typed::Txt(t) = &a else {
                    return Err(mismatch(&format!("`@{name}`; named lists contain text")));
                };
                if !self.schema.has_list(name) {
                    let mut msg = format!("unknown list `@{name}`");
                    if let Some(s) = suggest(name, self.schema.list_names()) {
                        msg.push_str(&format!("; did you mean `@{s}`?"));
                    }
                    return Err(Located::new(list_span.start(), msg));
                }
                Cond::InList {
                    negated,
                    lhs: t.clone(),
                    list: name.as_str().into(),
                    span: list_span,
                }
            }
            ListRef::Literal(ListItems::Numbers(items)) => {
                let Typed::Num(n) = &a else {
                    return Err(mismatch("a list of numbers"));
                };
                let mut items: Vec<f64> = items.iter().map(|x| norm_zero(*x)).collect();
                items.sort_by(f64::total_cmp);
                items.dedup();
                Cond::InNumbers {
                    negated,
                    lhs: n.clone(),
                    items: items.into_boxed_slice(),
                }
            }
            ListRef::Literal(ListItems::Texts(items)) => {
                let Typed::Txt(t) = &a else {
                    return Err(mismatch("a list of text"));
                };
                let mut items: Vec<Box<str>> = items.iter().map(|s| s.as_str().into()).collect();
                items.sort();
                items.dedup();
                Cond::InTexts {
                    negated,
                    lhs: t.clone(),
                    items: items.into_boxed_slice(),
                }
            }
        }))
    }
}

/// A short, single-line explanation of a regex error.
fn regex_message(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => {
            let detail = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or("invalid syntax");
            format!("this pattern is not a valid regular expression: {detail}")
        }
        regex::Error::CompiledTooBig(_) => {
            "this pattern is too large; simplify the regular expression".to_owned()
        }
        _ => format!("this pattern cannot be used: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::expr::tests::schema;
    use crate::{Expr, RuleError, Schema};

    fn err(src: &str) -> RuleError {
        match Expr::compile(src, &schema()) {
            Ok(_) => panic!("{src:?} compiled"),
            Err(e) => e,
        }
    }

    fn at(src: &str) -> (u32, u32, String) {
        let e = err(src);
        (e.line, e.column, e.message)
    }

    #[test]
    fn type_errors_in_analyst_language() {
        assert_eq!(
            at(r#"amount > "abc""#),
            (
                1,
                10,
                r#"`amount` is a number and cannot be compared with text "abc""#.into()
            )
        );
        assert_eq!(
            at(r#"amount = "abc""#),
            (
                1,
                10,
                r#"`amount` is a number and cannot be compared with text "abc""#.into()
            )
        );
        assert_eq!(
            at("location.country = amount").2,
            "`location.country` is text and cannot be compared with `amount`, which is a number"
        );
        assert_eq!(
            at("location.country = 5").2,
            "`location.country` is text and cannot be compared with the number 5"
        );
        assert_eq!(
            at("is_vpn = 1").2,
            "`is_vpn` is a yes/no value and cannot be compared with the number 1"
        );
        assert_eq!(
            at("amount = true").2,
            "`amount` is a number and cannot be compared with the yes/no value `true`"
        );
        assert_eq!(
            at("location.country > 5"),
            (
                1,
                1,
                "`>` only works with numbers, but `location.country` is text".into()
            )
        );
        assert_eq!(
            at(r#"amount + "x" > 1"#),
            (
                1,
                10,
                r#"`+` only works with numbers, but `"x"` is text"#.into()
            )
        );
        assert_eq!(
            at("amount and is_vpn"),
            (
                1,
                1,
                "`and` needs a condition on each side, but `amount` is a number".into()
            )
        );
        assert_eq!(at("is_vpn or amount").1, 11);
        assert_eq!(
            at("not amount").2,
            "`not` applies to a condition, but `amount` is a number"
        );
        assert_eq!(
            at("amount contains \"1\"").2,
            "`contains` works on text, but `amount` is a number"
        );
        assert_eq!(at("ip starts_with 1").1, 16);
        assert_eq!(at("ip ends_with is_vpn").1, 14);
        assert_eq!(
            at("amount matches \"1\"").2,
            "`matches` works on text, but `amount` is a number"
        );
        assert_eq!(at("ip matches ip").1, 12);
        assert_eq!(
            at("amount in [\"a\"]").2,
            "`amount` is a number and cannot be looked up in a list of text"
        );
        assert_eq!(
            at("ip in [1, 2]").2,
            "`ip` is text and cannot be looked up in a list of numbers"
        );
        assert!(at("amount in @high_risk_merchants")
            .2
            .contains("named lists contain text"));
        assert_eq!(
            at("amount + 1").2,
            "a rule must be a condition that is either true or false, but `amount + 1` is a number"
        );
        assert!(at("location.country").2.contains("is text"));
        assert!(at("-is_vpn").2.contains("`-` only works with numbers"));
        assert!(at("abs(ip) > 1").2.contains("`abs` works on numbers"));
        assert!(at("log(is_vpn) > 1").2.contains("`log` works on numbers"));
        // Long expressions are shortened in messages.
        let long = at("amount + amount + amount + amount + amount + amount + amount").2;
        assert!(long.contains("..."), "{long}");
    }

    #[test]
    fn null_literal_only_with_equality() {
        for src in [
            "null",
            "amount > null",
            "null + 1 > 2",
            "not null",
            "null in [1]",
            "null contains \"a\"",
            "abs(null) > 1",
        ] {
            let e = err(src);
            assert!(e.message.contains("`null` can only be used"), "{src}: {e}");
        }
        assert_eq!(at("amount > null").1, 10);
        assert!(at("null = null").2.contains("makes no sense"));
    }

    #[test]
    fn unknown_names_with_suggestions() {
        assert_eq!(
            at("amont > 1"),
            (1, 1, "unknown field `amont`; did you mean `amount`?".into())
        );
        assert_eq!(
            at("amount > 1 and location.county = \"FR\""),
            (
                1,
                16,
                "unknown field `location.county`; did you mean `location.country`?".into()
            )
        );
        assert_eq!(at("velocity > 1").2, "unknown field `velocity`");
        assert_eq!(
            at("count(usr, 5m) > 1"),
            (
                1,
                7,
                "unknown entity `usr` in `count`; did you mean `user`?; valid entities are: card, user".into()
            )
        );
        assert!(at("sum(merchant, 1h) > 1")
            .2
            .ends_with("valid entities are: card, user"));
        let none = Expr::compile("count(user, 5m) > 1", &Schema::new()).unwrap_err();
        assert!(none.message.contains("no entities"));
        assert_eq!(
            at("ip in @high_risk_merchant"),
            (
                1,
                7,
                "unknown list `@high_risk_merchant`; did you mean `@high_risk_merchants`?".into()
            )
        );
        let f = at("median(user, 5m) > 1");
        assert_eq!((f.0, f.1), (1, 1));
        assert!(f.2.contains("unknown function `median`"));
    }

    #[test]
    fn multi_line_positions() {
        let src = "amount > 100\nand  amont < 5";
        assert_eq!(
            at(src),
            (2, 6, "unknown field `amont`; did you mean `amount`?".into())
        );
        let src = "amount > 100 and\n    location.country > 1";
        let (line, col, _) = at(src);
        assert_eq!((line, col), (2, 5));
        let src = "amount > 1 and\n\tip matches \"(\"";
        let (line, col, _) = at(src);
        assert_eq!((line, col), (2, 13));
        let src = "amount > 1\nor\n  ip = \"x";
        assert_eq!(at(src).0, 3);
        assert_eq!(at(src).1, 8);
        // Columns count characters, not bytes.
        let src = "ip = \"é\" and\n\"ü\" = ip and x";
        assert_eq!((at(src).0, at(src).1), (2, 14));
        let src = "ip = \"é\" & x";
        assert_eq!((at(src).0, at(src).1), (1, 10));
    }

    #[test]
    fn regex_errors() {
        let e = err("email matches \"(abc\"");
        assert_eq!((e.line, e.column), (1, 15));
        assert_eq!(
            e.message,
            "this pattern is not a valid regular expression: unclosed group"
        );
        let e = err("email matches \"[z-a]\"");
        assert!(e
            .message
            .starts_with("this pattern is not a valid regular expression"));
        // Patterns that compile to more than the size limit are refused.
        let e = err("email matches \"\\\\w{1000}\\\\w{1000}\"");
        assert_eq!(e.column, 15);
        assert!(e.message.contains("too large"), "{}", e.message);
        assert!(Expr::compile("email matches \"^\\\\w+@\\\\w+\\\\.com$\"", &schema()).is_ok());
    }

    #[test]
    fn giant_inputs_are_rejected_cleanly() {
        let e = err(&format!("amount > {}", "1".repeat(5000)));
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.message.contains("too long"));
        let e = err(&format!("{}amount > 1{}", "(".repeat(40), ")".repeat(40)));
        assert_eq!((e.line, e.column), (1, 33));
        assert!(e.message.contains("nested too deeply"));
        let e = err(&vec!["amount > 1"; 200].join(" and "));
        assert!(e.message.contains("too complex"));
        let items = vec!["1"; 1025].join(",");
        let e = err(&format!("amount in [{items}]"));
        assert!(e.message.contains("at most 1024 items"));
    }
}
