//! The error type reported for rules that cannot be compiled.

use serde::Serialize;

/// A problem found in a rule, with the position of the offending token.
///
/// `line` and `column` are 1-based; the column counts characters, not bytes.
/// Problems that are not about the rule text itself (for example an invalid
/// rule name) are reported at line 0, column 0.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq, Serialize)]
#[error("line {line}, column {column}: {message}")]
pub struct RuleError {
    /// 1-based line of the offending token (0 when not about the rule text).
    pub line: u32,
    /// 1-based column, in characters, of the offending token (0 when not about the rule text).
    pub column: u32,
    /// What is wrong, in words an analyst can act on.
    pub message: String,
}

impl RuleError {
    /// An error that is not about a position in the rule text (line 0, column 0).
    pub fn general(message: impl Into<String>) -> Self {
        RuleError {
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// An error at byte offset `offset` of `source`.
    pub(crate) fn at(source: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = position(source, offset);
        RuleError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// An error found while parsing or checking, positioned by byte offset.
///
/// It is turned into a [`RuleError`] (with line and column) once, at the end.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located {
    pub offset: usize,
    pub message: String,
}

impl Located {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        Located {
            offset,
            message: message.into(),
        }
    }

    pub(crate) fn into_rule_error(self, source: &str) -> RuleError {
        RuleError::at(source, self.offset, self.message)
    }
}

/// 1-based (line, column) of byte `offset` in `source`; columns count characters.
pub(crate) fn position(source: &str, offset: usize) -> (u32, u32) {
    let mut line: u32 = 1;
    let mut column: u32 = 1;
    for (i, c) in source.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line = line.saturating_add(1);
            column = 1;
        } else {
            column = column.saturating_add(1);
        }
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let src = "ab\ncdé f";
        assert_eq!(position(src, 0), (1, 1));
        assert_eq!(position(src, 1), (1, 2));
        assert_eq!(position(src, 3), (2, 1));
        // 'é' is two bytes but one column.
        let f = src.find('f').unwrap();
        assert_eq!(position(src, f), (2, 5));
        // Offsets past the end clamp to the end.
        assert_eq!(position(src, 100), (2, 6));
    }

    #[test]
    fn display_format() {
        let e = RuleError::at("a\n  b", 4, "oops");
        assert_eq!(e.to_string(), "line 2, column 3: oops");
        assert_eq!(RuleError::general("x").to_string(), "line 0, column 0: x");
    }

    #[test]
    fn serializes_as_object() {
        let e = RuleError::at("abc", 1, "bad");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"line": 1, "column": 2, "message": "bad"})
        );
    }
}
