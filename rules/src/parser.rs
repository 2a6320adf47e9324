//! The syntax tree and a recursive-descent parser producing it.
//!
//! The parser knows the language but not the schema: names are resolved and
//! types checked afterwards, in [`check`](crate::check).

use crate::error::Located;
use crate::lexer::{tokenize, Tok, Token};
use crate::value::Agg;

/// Longest accepted rule text, in bytes.
pub const MAX_RULE_BYTES: usize = 4096;
/// Deepest accepted nesting of parentheses, `not`, unary `-` and function calls.
pub const MAX_DEPTH: usize = 32;
/// Largest accepted number of syntax-tree nodes (a list literal counts as one).
pub const MAX_NODES: usize = 256;
/// Largest accepted number of items in a list literal.
pub const MAX_LIST_ITEMS: usize = 1024;

/// Byte range of a node in the rule text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        // Rule text is at most MAX_RULE_BYTES long, so offsets fit in u32.
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn start(self) -> usize {
        self.start as usize
    }

    /// The text covered by the span (empty if out of range).
    pub(crate) fn text(self, src: &str) -> &str {
        src.get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "=",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Contains => "contains",
            BinOp::StartsWith => "starts_with",
            BinOp::EndsWith => "ends_with",
            BinOp::Matches => "matches",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

/// A plain math function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MathFn {
    Abs,
    Log,
}

/// Items of a list literal (homogeneous).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListItems {
    Numbers(Vec<f64>),
    Texts(Vec<String>),
}

/// The right-hand side of `in` / `not in`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ListRef {
    Literal(ListItems),
    Named(String),
}

/// The method-like window function counting an entity's distinct users.
const DISTINCT_USERS_SUFFIX: &str = ".distinct_users";

/// A syntax-tree node kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Number(f64),
    Str(String),
    Bool(bool),
    Null,
    Field(String),
    Window {
        agg: Agg,
        entity: String,
        entity_span: Span,
        window_ms: u64,
    },
    /// `<entity>.distinct_users(<duration>)`.
    DistinctUsers {
        entity: String,
        entity_span: Span,
        window_ms: u64,
    },
    Math(MathFn, Box<Node>),
    Neg(Box<Node>),
    Not(Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    In {
        negated: bool,
        lhs: Box<Node>,
        list: ListRef,
        list_span: Span,
    },
}

/// A syntax-tree node with its span in the rule text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub span: Span,
    /// Where the operator is, for binary nodes; equal to `span` otherwise.
    pub op_span: Span,
}

/// Parses `src` into a syntax tree, enforcing the size and nesting limits.
pub(crate) fn parse(src: &str) -> Result<Node, Located> {
    if src.len() > MAX_RULE_BYTES {
        return Err(Located::new(
            0,
            format!(
                "the rule is too long ({} bytes; at most {MAX_RULE_BYTES} are allowed)",
                src.len()
            ),
        ));
    }
    let tokens = tokenize(src)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
        nodes: 0,
    };
    if p.peek().tok == Tok::Eof {
        return Err(Located::new(p.peek().start, "the rule is empty"));
    }
    let node = p.parse_or()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        let hint = match t.tok {
            Tok::RParen => " (there is a `)` without a matching `(`)",
            Tok::Ident(_) | Tok::Number(_) | Tok::Str(_) => {
                " (did you forget `and`, `or` or an operator before it?)"
            }
            _ => "",
        };
        return Err(Located::new(
            t.start,
            format!("unexpected {}{hint}", t.tok.describe()),
        ));
    }
    Ok(node)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    nodes: usize,
}

fn comparison(tok: &Tok) -> Option<BinOp> {
    Some(match tok {
        Tok::Eq => BinOp::Eq,
        Tok::Ne => BinOp::Ne,
        Tok::Gt => BinOp::Gt,
        Tok::Ge => BinOp::Ge,
        Tok::Lt => BinOp::Lt,
        Tok::Le => BinOp::Le,
        Tok::Contains => BinOp::Contains,
        Tok::StartsWith => BinOp::StartsWith,
        Tok::EndsWith => BinOp::EndsWith,
        Tok::Matches => BinOp::Matches,
        _ => return None,
    })
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and we never move past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek2(&self) -> &Tok {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].tok
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.tokens[self.pos - 1].end
        }
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, Located> {
        if self.peek().tok == tok {
            Ok(self.advance())
        } else {
            let t = self.peek();
            Err(Located::new(
                t.start,
                format!("expected {what} but found {}", t.tok.describe()),
            ))
        }
    }

    fn node(&mut self, kind: NodeKind, span: Span, op_span: Span) -> Result<Node, Located> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Located::new(
                op_span.start(),
                format!(
                    "the rule is too complex (more than {MAX_NODES} parts); split it into several rules"
                ),
            ));
        }
        Ok(Node {
            kind,
            span,
            op_span,
        })
    }

    fn leaf(&mut self, kind: NodeKind, start: usize, end: usize) -> Result<Node, Located> {
        let span = Span::new(start, end);
        self.node(kind, span, span)
    }

    fn binary(&mut self, op: BinOp, op_tok: &Token, lhs: Node, rhs: Node) -> Result<Node, Located> {
        let span = Span {
            start: lhs.span.start,
            end: rhs.span.end,
        };
        let op_span = Span::new(op_tok.start, op_tok.end);
        self.node(
            NodeKind::Binary(op, Box::new(lhs), Box::new(rhs)),
            span,
            op_span,
        )
    }

    /// Runs `f` one nesting level deeper, failing cleanly past [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        at: usize,
        f: impl FnOnce(&mut Self) -> Result<T, Located>,
    ) -> Result<T, Located> {
        if self.depth >= MAX_DEPTH {
            return Err(Located::new(
                at,
                format!("the rule is nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn parse_or(&mut self) -> Result<Node, Located> {
        let mut lhs = self.parse_and()?;
        while self.peek().tok == Tok::Or {
            let op = self.advance();
            let rhs = self.parse_and()?;
            lhs = self.binary(BinOp::Or, &op, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn parse_and(&mut self) -> Result<Node, Located> {
        let mut lhs = self.parse_not()?;
        while self.peek().tok == Tok::And {
            let op = self.advance();
            let rhs = self.parse_not()?;
            lhs = self.binary(BinOp::And, &op, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn parse_not(&mut self) -> Result<Node, Located> {
        if self.peek().tok != Tok::Not {
            return self.parse_cmp();
        }
        let not = self.advance();
        let inner = self.nested(not.start, |p| p.parse_not())?;
        let span = Span::new(not.start, inner.span.end as usize);
        let op_span = Span::new(not.start, not.end);
        self.node(NodeKind::Not(Box::new(inner)), span, op_span)
    }

    fn parse_cmp(&mut self) -> Result<Node, Located> {
        let lhs = self.parse_add()?;
        let node = if let Some(op) = comparison(&self.peek().tok) {
            let op_tok = self.advance();
            let rhs = self.parse_add()?;
            self.binary(op, &op_tok, lhs, rhs)?
        } else if self.peek().tok == Tok::In
            || (self.peek().tok == Tok::Not && *self.peek2() == Tok::In)
        {
            let op_tok = self.advance();
            let negated = op_tok.tok == Tok::Not;
            let op_end = if negated {
                self.advance().end
            } else {
                op_tok.end
            };
            let (list, list_span) = self.parse_list()?;
            let span = Span::new(lhs.span.start(), list_span.end as usize);
            self.node(
                NodeKind::In {
                    negated,
                    lhs: Box::new(lhs),
                    list,
                    list_span,
                },
                span,
                Span::new(op_tok.start, op_end),
            )?
        } else {
            return Ok(lhs);
        };
        let t = self.peek();
        if comparison(&t.tok).is_some()
            || t.tok == Tok::In
            || (t.tok == Tok::Not && *self.peek2() == Tok::In)
        {
            return Err(Located::new(
                t.start,
                "comparisons cannot be chained; combine them with `and`, e.g. `a < b and b < c`",
            ));
        }
        Ok(node)
    }

    fn parse_list(&mut self) -> Result<(ListRef, Span), Located> {
        let t = self.advance();
        match t.tok {
            Tok::ListName(name) => Ok((ListRef::Named(name), Span::new(t.start, t.end))),
            Tok::LBracket => {
                let items = self.parse_list_items(t.start)?;
                let span = Span::new(t.start, self.prev_end());
                self.nodes += 1;
                if self.nodes > MAX_NODES {
                    return Err(Located::new(
                        t.start,
                        format!("the rule is too complex (more than {MAX_NODES} parts); split it into several rules"),
                    ));
                }
                Ok((ListRef::Literal(items), span))
            }
            other => Err(Located::new(
                t.start,
                format!(
                    "expected a list after `in`, like [\"a\", \"b\"] or @list_name, but found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// Parses list items after `[` up to and including `]`.
    fn parse_list_items(&mut self, open: usize) -> Result<ListItems, Located> {
        let mut numbers = Vec::new();
        let mut texts = Vec::new();
        let mut count = 0usize;
        loop {
            let t = self.advance();
            let negative = t.tok == Tok::Minus;
            let t = if negative { self.advance() } else { t };
            match t.tok {
                Tok::RBracket if count == 0 && !negative => {
                    return Err(Located::new(open, "a list cannot be empty"))
                }
                Tok::Number(n) if texts.is_empty() => numbers.push(if negative { -n } else { n }),
                Tok::Str(s) if numbers.is_empty() && !negative => texts.push(s),
                Tok::Number(_) | Tok::Str(_) => {
                    return Err(Located::new(
                        t.start,
                        "all items of a list must be of the same kind: all numbers or all text",
                    ))
                }
                Tok::Eof => return Err(Located::new(open, "this list is missing its closing `]`")),
                other => {
                    return Err(Located::new(
                        t.start,
                        format!(
                            "list items must be numbers or text in double quotes, but found {}",
                            other.describe()
                        ),
                    ))
                }
            }
            count += 1;
            if count > MAX_LIST_ITEMS {
                return Err(Located::new(
                    t.start,
                    format!("a list may have at most {MAX_LIST_ITEMS} items; use a named @list for longer ones"),
                ));
            }
            let sep = self.advance();
            match sep.tok {
                Tok::Comma => continue,
                Tok::RBracket => break,
                Tok::Eof => return Err(Located::new(open, "this list is missing its closing `]`")),
                other => {
                    return Err(Located::new(
                        sep.start,
                        format!(
                            "expected `,` or `]` in the list but found {}",
                            other.describe()
                        ),
                    ))
                }
            }
        }
        Ok(if numbers.is_empty() {
            ListItems::Texts(texts)
        } else {
            ListItems::Numbers(numbers)
        })
    }

    fn parse_add(&mut self) -> Result<Node, Located> {
        let mut lhs = self.parse_mul()?;
        loop {
            let op = match self.peek().tok {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            let op_tok = self.advance();
            let rhs = self.parse_mul()?;
            lhs = self.binary(op, &op_tok, lhs, rhs)?;
        }
    }

    fn parse_mul(&mut self) -> Result<Node, Located> {
        let mut lhs = self.parse_unary()?;
        loop {
            let op = match self.peek().tok {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                Tok::Percent => BinOp::Rem,
                _ => return Ok(lhs),
            };
            let op_tok = self.advance();
            let rhs = self.parse_unary()?;
            lhs = self.binary(op, &op_tok, lhs, rhs)?;
        }
    }

    fn parse_unary(&mut self) -> Result<Node, Located> {
        if self.peek().tok != Tok::Minus {
            return self.parse_primary();
        }
        let minus = self.advance();
        let inner = self.nested(minus.start, |p| p.parse_unary())?;
        let span = Span::new(minus.start, inner.span.end as usize);
        let op_span = Span::new(minus.start, minus.end);
        self.node(NodeKind::Neg(Box::new(inner)), span, op_span)
    }

    fn parse_primary(&mut self) -> Result<Node, Located> {
        let t = self.advance();
        let (start, end) = (t.start, t.end);
        match t.tok {
            Tok::Number(n) => self.leaf(NodeKind::Number(n), start, end),
            Tok::Str(s) => self.leaf(NodeKind::Str(s), start, end),
            Tok::True => self.leaf(NodeKind::Bool(true), start, end),
            Tok::False => self.leaf(NodeKind::Bool(false), start, end),
            Tok::Null => self.leaf(NodeKind::Null, start, end),
            Tok::Ident(name) if self.peek().tok == Tok::LParen => self.parse_call(name, start),
            Tok::Ident(name) => self.leaf(NodeKind::Field(name), start, end),
            Tok::LParen => {
                let mut inner = self.nested(start, |p| p.parse_or())?;
                let close = self.peek();
                if close.tok != Tok::RParen {
                    let msg = if close.tok == Tok::Eof {
                        "this `(` is never closed; add a matching `)`".to_owned()
                    } else {
                        format!("expected `)` but found {}", close.tok.describe())
                    };
                    let at = if close.tok == Tok::Eof { start } else { close.start };
                    return Err(Located::new(at, msg));
                }
                let close = self.advance();
                // Keep the inner node but widen its span to the parentheses.
                inner.span = Span::new(start, close.end);
                Ok(inner)
            }
            Tok::Duration(_) => Err(Located::new(
                start,
                "a duration like `5m` can only be used inside a window function such as count(user, 5m)",
            )),
            Tok::LBracket => Err(Located::new(
                start,
                "a list in [brackets] can only follow `in` or `not in`",
            )),
            Tok::ListName(name) => Err(Located::new(
                start,
                format!("the list `@{name}` can only follow `in` or `not in`"),
            )),
            Tok::Eof => Err(Located::new(
                start,
                "the rule ends too early; expected a value after the last operator",
            )),
            other => Err(Located::new(
                start,
                format!("expected a value (a field, number or text) but found {}", other.describe()),
            )),
        }
    }

    fn parse_call(&mut self, name: String, start: usize) -> Result<Node, Located> {
        if let Some(entity) = name.strip_suffix(DISTINCT_USERS_SUFFIX) {
            return self.parse_distinct_users(entity.to_owned(), start);
        }
        let math = match name.as_str() {
            "abs" => Some(MathFn::Abs),
            "log" => Some(MathFn::Log),
            _ => None,
        };
        let agg = Agg::from_name(&name);
        if math.is_none() && agg.is_none() {
            return Err(Located::new(
                start,
                format!(
                    "unknown function `{name}`; available functions are count, sum, avg, min, max (over a time window), <entity>.distinct_users and abs, log"
                ),
            ));
        }
        self.nested(start, |p| {
            p.advance(); // `(`
            if let Some(f) = math {
                let arg = p.parse_or()?;
                let close = p.expect(Tok::RParen, &format!("`)` to close `{name}(`"))?;
                let span = Span::new(start, close.end);
                return p.node(NodeKind::Math(f, Box::new(arg)), span, span);
            }
            let agg = agg.unwrap_or(Agg::Count);
            let usage = format!("`{name}` is used like {name}(user, 5m)");
            let ent = p.advance();
            let Tok::Ident(entity) = ent.tok else {
                return Err(Located::new(
                    ent.start,
                    format!(
                        "expected an entity name but found {}; {usage}",
                        ent.tok.describe()
                    ),
                ));
            };
            let entity_span = Span::new(ent.start, ent.end);
            let comma = p.advance();
            if comma.tok != Tok::Comma {
                return Err(Located::new(
                    comma.start,
                    format!("expected `,` but found {}; {usage}", comma.tok.describe()),
                ));
            }
            let window_ms = p.expect_duration(&usage)?;
            let close = p.expect(Tok::RParen, &format!("`)` to close `{name}(`"))?;
            let span = Span::new(start, close.end);
            p.node(
                NodeKind::Window {
                    agg,
                    entity,
                    entity_span,
                    window_ms,
                },
                span,
                span,
            )
        })
    }

    /// The duration argument of a window function; `usage` shows how to write the call.
    fn expect_duration(&mut self, usage: &str) -> Result<u64, Located> {
        let dur = self.advance();
        match dur.tok {
            Tok::Duration(window_ms) => Ok(window_ms),
            other => Err(Located::new(
                dur.start,
                format!(
                    "expected a duration such as 30s, 5m, 1h or 7d but found {}; {usage}",
                    other.describe()
                ),
            )),
        }
    }

    /// `device.distinct_users(24h)`: the entity is the name before the dot, the only
    /// argument a duration.
    fn parse_distinct_users(&mut self, entity: String, start: usize) -> Result<Node, Located> {
        let entity_span = Span::new(start, start + entity.len());
        let usage = format!("`{entity}.distinct_users` is used like {entity}.distinct_users(24h)");
        self.nested(start, |p| {
            p.advance(); // `(`
            let window_ms = p.expect_duration(&usage)?;
            let close = p.expect(
                Tok::RParen,
                &format!("`)` to close `{entity}.distinct_users(`"),
            )?;
            let span = Span::new(start, close.end);
            p.node(
                NodeKind::DistinctUsers {
                    entity,
                    entity_span,
                    window_ms,
                },
                span,
                span,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a tree in fully parenthesized prefix form for compact assertions.
    fn show(n: &Node) -> String {
        match &n.kind {
            NodeKind::Number(x) => format!("{x}"),
            NodeKind::Str(s) => format!("{s:?}"),
            NodeKind::Bool(b) => format!("{b}"),
            NodeKind::Null => "null".into(),
            NodeKind::Field(f) => f.clone(),
            NodeKind::Window {
                agg,
                entity,
                window_ms,
                ..
            } => format!("{}({entity},{window_ms})", agg.name()),
            NodeKind::DistinctUsers {
                entity, window_ms, ..
            } => format!("{entity}.distinct_users({window_ms})"),
            NodeKind::Math(f, a) => format!("{f:?}({})", show(a)),
            NodeKind::Neg(a) => format!("(- {})", show(a)),
            NodeKind::Not(a) => format!("(not {})", show(a)),
            NodeKind::Binary(op, a, b) => format!("({} {} {})", op.symbol(), show(a), show(b)),
            NodeKind::In {
                negated, lhs, list, ..
            } => {
                let l = match list {
                    ListRef::Named(n) => format!("@{n}"),
                    ListRef::Literal(ListItems::Numbers(v)) => format!("{v:?}"),
                    ListRef::Literal(ListItems::Texts(v)) => format!("{v:?}"),
                };
                format!(
                    "({} {} {l})",
                    if *negated { "not_in" } else { "in" },
                    show(lhs)
                )
            }
        }
    }

    fn p(src: &str) -> String {
        show(&parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}")))
    }

    fn perr(src: &str) -> (usize, String) {
        let e = parse(src).unwrap_err();
        (e.offset, e.message)
    }

    #[test]
    fn every_operator() {
        assert_eq!(p("a = 1"), "(= a 1)");
        assert_eq!(p("a == 1"), "(= a 1)");
        assert_eq!(p("a != 1"), "(!= a 1)");
        assert_eq!(p("a > 1"), "(> a 1)");
        assert_eq!(p("a >= 1"), "(>= a 1)");
        assert_eq!(p("a < 1"), "(< a 1)");
        assert_eq!(p("a <= 1"), "(<= a 1)");
        assert_eq!(p("a + b"), "(+ a b)");
        assert_eq!(p("a - b"), "(- a b)");
        assert_eq!(p("a * b"), "(* a b)");
        assert_eq!(p("a / b"), "(/ a b)");
        assert_eq!(p("a % b"), "(% a b)");
        assert_eq!(p("-a"), "(- a)");
        assert_eq!(p("a and b"), "(and a b)");
        assert_eq!(p("a AND b"), "(and a b)");
        assert_eq!(p("a or b"), "(or a b)");
        assert_eq!(p("a OR b"), "(or a b)");
        assert_eq!(p("not a"), "(not a)");
        assert_eq!(p("NOT a"), "(not a)");
        assert_eq!(p(r#"a contains "x""#), r#"(contains a "x")"#);
        assert_eq!(p(r#"a starts_with "x""#), r#"(starts_with a "x")"#);
        assert_eq!(p(r#"a ends_with "x""#), r#"(ends_with a "x")"#);
        assert_eq!(p(r#"a matches "^x$""#), r#"(matches a "^x$")"#);
        assert_eq!(p(r#"a in ["x", "y"]"#), r#"(in a ["x", "y"])"#);
        assert_eq!(p("a in [1, -2.5, 1e3]"), "(in a [1.0, -2.5, 1000.0])");
        assert_eq!(p("a not in @bad"), "(not_in a @bad)");
        assert_eq!(p("a NOT in @bad"), "(not_in a @bad)");
        assert_eq!(
            p("a = true or b = false or c = null"),
            "(or (or (= a true) (= b false)) (= c null))"
        );
        assert_eq!(p("count(user, 5m) > 10"), "(> count(user,300000) 10)");
        assert_eq!(
            p("sum(card,1h)+avg(user,7d)+min(user,30s)+max(user,1d)"),
            "(+ (+ (+ sum(card,3600000) avg(user,604800000)) min(user,30000)) max(user,86400000))"
        );
        assert_eq!(p("abs(a - b) > log(c)"), "(> Abs((- a b)) Log(c))");
    }

    #[test]
    fn precedence() {
        assert_eq!(p("a or b and c"), "(or a (and b c))");
        assert_eq!(p("a and b or c"), "(or (and a b) c)");
        assert_eq!(p("not a and b"), "(and (not a) b)");
        assert_eq!(p("not a > 1"), "(not (> a 1))");
        assert_eq!(
            p("a + b * c > d - e / f % g"),
            "(> (+ a (* b c)) (- d (% (/ e f) g)))"
        );
        assert_eq!(p("a - b - c"), "(- (- a b) c)");
        assert_eq!(p("(a + b) * c"), "(* (+ a b) c)");
        assert_eq!(p("-a * b"), "(* (- a) b)");
        assert_eq!(p("- - a"), "(- (- a))");
        assert_eq!(p("not not a"), "(not (not a))");
        assert_eq!(
            p("amount > 5 * user.avg_amount_30d and location.country != user.last_country and minutes_since_last < 60"),
            "(and (and (> amount (* 5 user.avg_amount_30d)) (!= location.country user.last_country)) (< minutes_since_last 60))"
        );
        assert_eq!(
            p("a in [\"x\"] or ip starts_with \"10.\""),
            "(or (in a [\"x\"]) (starts_with ip \"10.\"))"
        );
    }

    #[test]
    fn spans() {
        let n = parse("  count( user , 5m ) > 1").unwrap();
        let NodeKind::Binary(_, lhs, _) = &n.kind else {
            panic!()
        };
        assert_eq!(
            lhs.span.text("  count( user , 5m ) > 1"),
            "count( user , 5m )"
        );
        assert_eq!(n.op_span.start, 21);
        let src = "(a) and b";
        let n = parse(src).unwrap();
        assert_eq!(n.span.text(src), src);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(perr("a < b < c").0, 6);
        assert!(perr("a < b < c").1.contains("cannot be chained"));
        assert_eq!(perr("a = 1 in [1]").0, 6);
        assert_eq!(perr("").1, "the rule is empty");
        assert_eq!(perr("   ").0, 3);
        assert_eq!(perr("a >").0, 3);
        assert_eq!(perr("(a > 1").0, 0);
        assert_eq!(perr("(a > 1 b").0, 7);
        assert_eq!(perr("a > 1)").0, 5);
        assert_eq!(perr("a b").0, 2);
        assert_eq!(perr("a > 5m").0, 4);
        assert_eq!(perr("[1] = a").0, 0);
        assert_eq!(perr("@x").0, 0);
        assert_eq!(perr("a in b").0, 5);
        assert_eq!(perr("a in []").0, 5);
        assert_eq!(perr("a in [1, \"x\"]").0, 9);
        assert_eq!(perr("a in [\"x\", 1]").0, 11);
        assert_eq!(perr("a in [1, 2").0, 5);
        assert_eq!(perr("a in [1 2]").0, 8);
        assert_eq!(perr("a in [b]").0, 6);
        assert_eq!(perr("a in [-\"x\"]").0, 7);
        assert_eq!(perr("foo(a) > 1").0, 0);
        assert!(perr("foo(a) > 1").1.contains("count, sum, avg, min, max"));
        assert_eq!(perr("count(5m) > 1").0, 6);
        assert_eq!(perr("count(user 5m) > 1").0, 11);
        assert_eq!(perr("count(user, 5) > 1").0, 12);
        assert_eq!(perr("count(user, 5m > 1").0, 15);
        assert_eq!(perr("abs(a > 1").0, 9);
        assert_eq!(perr("a and").0, 5);
        assert_eq!(perr("a > ,").0, 4);
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}a{} > 1", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let bad = format!(
            "{}a{} > 1",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let (at, msg) = perr(&bad);
        assert_eq!(at, MAX_DEPTH);
        assert!(msg.contains("nested too deeply"));
        assert!(parse(&format!("{}a", "not ".repeat(MAX_DEPTH))).is_ok());
        assert!(perr(&format!("{}a", "not ".repeat(MAX_DEPTH + 1)))
            .1
            .contains("too deeply"));
        assert!(perr(&format!("{}a > 1", "-".repeat(MAX_DEPTH + 1)))
            .1
            .contains("too deeply"));
        assert!(perr(&format!(
            "{}a{} > 1",
            "abs(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        ))
        .1
        .contains("too deeply"));
        // Thousands of parentheses fit in 4096 bytes; must not overflow the stack.
        assert!(perr(&"(".repeat(4000)).1.contains("too deeply"));
    }

    #[test]
    fn size_limits() {
        let long = format!("a > {}", "1".repeat(MAX_RULE_BYTES));
        assert!(perr(&long).1.contains("too long"));
        // 128 leaves + 127 operators = 255 nodes is fine; one more pair is not.
        let ok = vec!["a"; 128].join("+");
        assert!(parse(&ok).is_ok());
        let bad = vec!["a"; 129].join("+");
        let (at, msg) = perr(&bad);
        assert!(msg.contains("too complex"), "{msg}");
        assert_eq!(at, 255);
        let items = vec!["1"; MAX_LIST_ITEMS].join(",");
        assert!(parse(&format!("a in [{items}]")).is_ok());
        let items = vec!["1"; MAX_LIST_ITEMS + 1].join(",");
        let (at, msg) = perr(&format!("a in [{items}]"));
        assert!(msg.contains("at most 1024 items"));
        assert_eq!(at, 6 + 2 * MAX_LIST_ITEMS);
    }
}
