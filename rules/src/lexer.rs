//! Splits rule text into tokens.

use crate::error::Located;

/// Longest duration accepted in a window function: 366 days, in milliseconds.
pub(crate) const MAX_DURATION_MS: u64 = 366 * 24 * 60 * 60 * 1000;

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name, possibly dotted: `amount`, `location.country`.
    Ident(String),
    Number(f64),
    Str(String),
    /// A duration such as `5m`, in milliseconds.
    Duration(u64),
    /// `@name`, without the `@`.
    ListName(String),
    And,
    Or,
    Not,
    In,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    True,
    False,
    Null,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Number(_) => "a number".into(),
            Tok::Str(_) => "a text value".into(),
            Tok::Duration(_) => "a duration".into(),
            Tok::ListName(s) => format!("`@{s}`"),
            Tok::Eof => "the end of the rule".into(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::In => "in",
            Tok::Contains => "contains",
            Tok::StartsWith => "starts_with",
            Tok::EndsWith => "ends_with",
            Tok::Matches => "matches",
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::Eq => "=",
            Tok::Ne => "!=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            _ => "?",
        }
    }
}

/// A token with its byte range in the rule text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "and" | "AND" => Tok::And,
        "or" | "OR" => Tok::Or,
        "not" | "NOT" => Tok::Not,
        "in" => Tok::In,
        "contains" => Tok::Contains,
        "starts_with" => Tok::StartsWith,
        "ends_with" => Tok::EndsWith,
        "matches" => Tok::Matches,
        "true" => Tok::True,
        "false" => Tok::False,
        "null" => Tok::Null,
        _ => return None,
    })
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, Located> {
    let mut lexer = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        let token = lexer.next_token()?;
        let done = token.tok == Tok::Eof;
        out.push(token);
        if done {
            return Ok(out);
        }
    }
}

struct Lexer<'s> {
    src: &'s str,
    bytes: &'s [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn peek_at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    fn next_token(&mut self) -> Result<Token, Located> {
        while let Some(b) = self.peek_at(self.pos) {
            if b.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
        let start = self.pos;
        let Some(b) = self.peek_at(start) else {
            return Ok(Token {
                tok: Tok::Eof,
                start,
                end: start,
            });
        };
        let next = self.peek_at(start + 1);
        let (tok, len) = match b {
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b',' => (Tok::Comma, 1),
            b'+' => (Tok::Plus, 1),
            b'-' => (Tok::Minus, 1),
            b'*' => (Tok::Star, 1),
            b'/' => (Tok::Slash, 1),
            b'%' => (Tok::Percent, 1),
            b'=' if next == Some(b'=') => (Tok::Eq, 2),
            b'=' => (Tok::Eq, 1),
            b'!' if next == Some(b'=') => (Tok::Ne, 2),
            b'!' => return Err(Located::new(
                start,
                "unexpected `!`; write `not` to negate a condition or `!=` for \"is not equal to\"",
            )),
            b'>' if next == Some(b'=') => (Tok::Ge, 2),
            b'>' => (Tok::Gt, 1),
            b'<' if next == Some(b'=') => (Tok::Le, 2),
            b'<' if next == Some(b'>') => {
                return Err(Located::new(
                    start,
                    "unexpected `<>`; write `!=` for \"is not equal to\"",
                ))
            }
            b'<' => (Tok::Lt, 1),
            b'&' => {
                return Err(Located::new(
                    start,
                    "unexpected `&`; write `and` to combine conditions",
                ))
            }
            b'|' => {
                return Err(Located::new(
                    start,
                    "unexpected `|`; write `or` to combine conditions",
                ))
            }
            b'\'' => {
                return Err(Located::new(
                    start,
                    "text must be written in double quotes, like \"FR\"",
                ))
            }
            b'"' => return self.string(start),
            b'@' => return self.list_name(start),
            b'0'..=b'9' => return self.number(start),
            b if is_ident_start(b) => return Ok(self.ident(start)),
            _ => {
                let c = self.src[start..].chars().next().unwrap_or('?');
                return Err(Located::new(start, format!("unexpected character `{c}`")));
            }
        };
        self.pos = start + len;
        Ok(Token {
            tok,
            start,
            end: self.pos,
        })
    }

    /// Consumes a (possibly dotted) name starting at `start`.
    fn scan_name(&mut self, start: usize) -> usize {
        let mut i = start;
        loop {
            while self.peek_at(i).is_some_and(is_ident_char) {
                i += 1;
            }
            if self.peek_at(i) == Some(b'.') && self.peek_at(i + 1).is_some_and(is_ident_start) {
                i += 1;
            } else {
                break;
            }
        }
        i
    }

    fn ident(&mut self, start: usize) -> Token {
        let end = self.scan_name(start);
        self.pos = end;
        let word = &self.src[start..end];
        let tok = keyword(word).unwrap_or_else(|| Tok::Ident(word.to_owned()));
        Token { tok, start, end }
    }

    fn list_name(&mut self, start: usize) -> Result<Token, Located> {
        if !self.peek_at(start + 1).is_some_and(is_ident_start) {
            return Err(Located::new(
                start,
                "`@` must be followed by a list name, like @high_risk_merchants",
            ));
        }
        let end = self.scan_name(start + 1);
        self.pos = end;
        Ok(Token {
            tok: Tok::ListName(self.src[start + 1..end].to_owned()),
            start,
            end,
        })
    }

    fn string(&mut self, start: usize) -> Result<Token, Located> {
        let mut out = String::new();
        let mut i = start + 1;
        loop {
            let Some(c) = self.src[i..].chars().next() else {
                return Err(Located::new(
                    start,
                    "this text is missing its closing double quote `\"`",
                ));
            };
            match c {
                '"' => {
                    self.pos = i + 1;
                    return Ok(Token {
                        tok: Tok::Str(out),
                        start,
                        end: self.pos,
                    });
                }
                '\\' => {
                    let escaped = match self.peek_at(i + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        _ => {
                            return Err(Located::new(
                                i,
                                "unknown escape after `\\`; inside text only \\\" \\\\ \\n and \\t are allowed (write \\\\ for a single backslash)",
                            ))
                        }
                    };
                    out.push(escaped);
                    i += 2;
                }
                c => {
                    out.push(c);
                    i += c.len_utf8();
                }
            }
        }
    }

    fn number(&mut self, start: usize) -> Result<Token, Located> {
        let digits = |lx: &Self, mut i: usize| {
            while lx
                .peek_at(i)
                .is_some_and(|b| b.is_ascii_digit() || b == b'_')
            {
                i += 1;
            }
            i
        };
        let mut i = digits(self, start);
        let mut integer = true;
        if self.peek_at(i) == Some(b'.') && self.peek_at(i + 1).is_some_and(|b| b.is_ascii_digit())
        {
            integer = false;
            i = digits(self, i + 1);
        }
        if matches!(self.peek_at(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(self.peek_at(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if self.peek_at(j).is_some_and(|b| b.is_ascii_digit()) {
                integer = false;
                i = digits(self, j);
            }
        }
        let text = &self.src[start..i];
        let bytes = text.as_bytes();
        for (k, &b) in bytes.iter().enumerate() {
            if b == b'_' {
                let ok = k > 0
                    && bytes[k - 1].is_ascii_digit()
                    && bytes.get(k + 1).is_some_and(|b| b.is_ascii_digit());
                if !ok {
                    return Err(Located::new(
                        start + k,
                        "`_` in a number may only separate digits, like 1_000",
                    ));
                }
            }
        }
        // A unit letter directly after an integer makes a duration.
        if let Some(unit) = self.peek_at(i) {
            if is_ident_char(unit) {
                let unit_ms: Option<u64> = match unit {
                    b's' => Some(1000),
                    b'm' => Some(60_000),
                    b'h' => Some(3_600_000),
                    b'd' => Some(86_400_000),
                    _ => None,
                };
                let alone = !self.peek_at(i + 1).is_some_and(is_ident_char);
                return match unit_ms {
                    Some(unit_ms) if integer && alone => self.duration(start, text, unit_ms, i + 1),
                    _ => Err(Located::new(
                        i,
                        "unexpected letter after a number; durations are written like 30s, 5m, 1h or 7d",
                    )),
                };
            }
        }
        let cleaned: String = text.chars().filter(|c| *c != '_').collect();
        let value: f64 = cleaned
            .parse()
            .map_err(|_| Located::new(start, format!("`{text}` is not a valid number")))?;
        if !value.is_finite() {
            return Err(Located::new(
                start,
                format!("the number `{text}` is too large"),
            ));
        }
        self.pos = i;
        Ok(Token {
            tok: Tok::Number(value),
            start,
            end: i,
        })
    }

    fn duration(
        &mut self,
        start: usize,
        digits: &str,
        unit_ms: u64,
        end: usize,
    ) -> Result<Token, Located> {
        let too_long = || {
            Located::new(
                start,
                format!(
                    "the duration `{}` is too long; the longest allowed is 366d",
                    &self.src[start..end]
                ),
            )
        };
        let mut n: u64 = 0;
        for b in digits.bytes().filter(|b| b.is_ascii_digit()) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or_else(too_long)?;
        }
        let ms = n.checked_mul(unit_ms).ok_or_else(too_long)?;
        if ms > MAX_DURATION_MS {
            return Err(too_long());
        }
        if ms == 0 {
            return Err(Located::new(start, "a duration must be longer than zero"));
        }
        self.pos = end;
        Ok(Token {
            tok: Tok::Duration(ms),
            start,
            end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn err(src: &str) -> (usize, String) {
        let e = tokenize(src).unwrap_err();
        (e.offset, e.message)
    }

    #[test]
    fn operators_and_keywords() {
        assert_eq!(
            toks("= == != > >= < <= + - * / % ( ) [ ] , and AND or OR not NOT in contains starts_with ends_with matches true false null"),
            vec![
                Tok::Eq, Tok::Eq, Tok::Ne, Tok::Gt, Tok::Ge, Tok::Lt, Tok::Le, Tok::Plus, Tok::Minus,
                Tok::Star, Tok::Slash, Tok::Percent, Tok::LParen, Tok::RParen, Tok::LBracket,
                Tok::RBracket, Tok::Comma, Tok::And, Tok::And, Tok::Or, Tok::Or, Tok::Not, Tok::Not,
                Tok::In, Tok::Contains, Tok::StartsWith, Tok::EndsWith, Tok::Matches, Tok::True,
                Tok::False, Tok::Null, Tok::Eof
            ]
        );
        // Only and/or/not accept upper case.
        assert_eq!(toks("IN")[0], Tok::Ident("IN".into()));
        assert_eq!(toks("And")[0], Tok::Ident("And".into()));
    }

    #[test]
    fn names() {
        assert_eq!(
            toks("user.avg_amount_30d @high_risk x"),
            vec![
                Tok::Ident("user.avg_amount_30d".into()),
                Tok::ListName("high_risk".into()),
                Tok::Ident("x".into()),
                Tok::Eof
            ]
        );
        let t = tokenize("  location.country").unwrap();
        assert_eq!((t[0].start, t[0].end), (2, 18));
    }

    #[test]
    fn numbers() {
        assert_eq!(toks("12")[0], Tok::Number(12.0));
        assert_eq!(toks("12.5")[0], Tok::Number(12.5));
        assert_eq!(toks("1_000")[0], Tok::Number(1000.0));
        assert_eq!(toks("1e3")[0], Tok::Number(1000.0));
        assert_eq!(toks("2.5E-1")[0], Tok::Number(0.25));
        assert_eq!(err("1e999").1, "the number `1e999` is too large");
        assert_eq!(err("1__0").0, 1);
        assert_eq!(err("10_").0, 2);
        assert_eq!(err("12abc").0, 2);
        assert_eq!(err("1.5m").0, 3);
    }

    #[test]
    fn durations() {
        assert_eq!(toks("30s")[0], Tok::Duration(30_000));
        assert_eq!(toks("5m")[0], Tok::Duration(300_000));
        assert_eq!(toks("1h")[0], Tok::Duration(3_600_000));
        assert_eq!(toks("24h")[0], Tok::Duration(86_400_000));
        assert_eq!(toks("7d")[0], Tok::Duration(7 * 86_400_000));
        assert_eq!(toks("366d")[0], Tok::Duration(MAX_DURATION_MS));
        assert!(err("367d").1.contains("too long"));
        assert!(err("99999999999999999999999d").1.contains("too long"));
        assert!(err("0s").1.contains("longer than zero"));
        assert_eq!(err("5ms").0, 1);
    }

    #[test]
    fn strings() {
        assert_eq!(
            toks(r#""a\"b\\c\nd\te""#)[0],
            Tok::Str("a\"b\\c\nd\te".into())
        );
        assert_eq!(toks(r#""héllo""#)[0], Tok::Str("héllo".into()));
        assert_eq!(err(r#"x = "abc"#).0, 4);
        assert_eq!(err(r#""a\qb""#).0, 2);
        assert_eq!(err("'FR'").0, 0);
    }

    #[test]
    fn bad_characters() {
        assert_eq!(err("a && b").0, 2);
        assert_eq!(err("a || b").0, 2);
        assert_eq!(err("!a").0, 0);
        assert_eq!(err("a <> b").0, 2);
        assert_eq!(err("a é").1, "unexpected character `é`");
        assert_eq!(err("@ x").0, 0);
        assert_eq!(err("a.").1, "unexpected character `.`");
    }
}
