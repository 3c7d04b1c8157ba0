//! A small JSON reader that keeps every number's text exactly as written.
//!
//! Hand-written on purpose: EventBridge decides whether a number is comparable from its text
//! (`9007199254740993` is not, `5.0` is), and the event flattener must skip the parts of an event
//! that no pattern names without building a tree. `serde_json` would round-trip numbers through
//! `f64`, and its `arbitrary_precision` feature would change number handling for the whole binary.
//!
//! The [`Lexer`] works on text that is already known to be UTF-8 (`&str`), so string contents can
//! be borrowed without further checks. Syntax errors use Jackson's wording for the cases AWS
//! reports (an unrecognised token, a single quote where a field name belongs).

use std::borrow::Cow;

use super::structural::{Skip, string_end, string_stop};

/// Nesting deeper than this is refused; PutEvents documents the same bound for events.
pub const MAX_DEPTH: usize = 1000;

/// A parsed JSON document with number text preserved.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number exactly as written in the source.
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Members in source order; duplicate keys are kept.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document (surrounding white space allowed, nothing else).
    pub fn parse(text: &str) -> Result<Json, SyntaxError> {
        let mut lexer = Lexer::new(text);
        lexer.skip_ws();
        let value = lexer.value(0)?;
        lexer.end()?;
        Ok(value)
    }

    /// Converts a `serde_json::Value`. Numbers take serde_json's text for them, which for
    /// floats is the shortest text that reads back as the same double.
    pub fn from_value(value: &serde_json::Value) -> Json {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.to_string()),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(items) => {
                Json::Array(items.iter().map(Json::from_value).collect())
            }
            serde_json::Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Json::from_value(v)))
                    .collect(),
            ),
        }
    }
}

/// Compact JSON text, numbers exactly as they were read.
impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(text) => f.write_str(text),
            Json::String(s) => write_string(f, s),
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(members) => {
                f.write_str("{")?;
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_string(f, key)?;
                    write!(f, ":{value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_string(f: &mut std::fmt::Formatter<'_>, s: &str) -> std::fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// A JSON syntax error: what was wrong and where (byte offset, 1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
    pub line: usize,
    pub column: usize,
}

/// A cursor over JSON text.
pub(crate) struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lexer {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> SyntaxError {
        let offset = self.pos.min(self.bytes.len());
        let before = &self.bytes[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        SyntaxError {
            message: message.into(),
            offset,
            line,
            column,
        }
    }

    fn unexpected(&self, expecting: &str) -> SyntaxError {
        match self.text[self.pos.min(self.text.len())..].chars().next() {
            None => self.error(format!("Unexpected end-of-input: {expecting}")),
            Some(c) => self.error(format!(
                "Unexpected character ('{c}' (code {})): {expecting}",
                u32::from(c)
            )),
        }
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// After the root value: only white space may follow.
    pub(crate) fn end(&mut self) -> Result<(), SyntaxError> {
        self.skip_ws();
        if self.pos < self.bytes.len() {
            return Err(self.unexpected("expected end of input after the JSON value"));
        }
        Ok(())
    }

    /// Consumes `{` (after white space); errors if something else is there.
    pub(crate) fn expect_byte(&mut self, byte: u8, expecting: &str) -> Result<(), SyntaxError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expecting))
        }
    }

    /// Called after `{` or `,` inside an object: reads the next key and its colon, or returns
    /// `None` at the closing `}`. `first` says whether this is the first member.
    #[inline]
    pub(crate) fn next_key(&mut self, first: bool) -> Result<Option<Cow<'a, str>>, SyntaxError> {
        self.skip_ws();
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                return Ok(None);
            }
            Some(b',') if !first => {
                self.pos += 1;
                self.skip_ws();
            }
            _ if !first => {
                return Err(self.unexpected("was expecting comma to separate Object entries"));
            }
            _ => {}
        }
        if self.peek() != Some(b'"') {
            if first && self.peek().is_none() {
                return Err(self.error("Unexpected end-of-input: expected close marker for Object"));
            }
            return Err(self.unexpected("was expecting double-quote to start field name"));
        }
        let key = self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.unexpected("was expecting a colon to separate field name and value"));
        }
        self.pos += 1;
        self.skip_ws();
        Ok(Some(key))
    }

    /// Called after `[` or after an element: returns false at the closing `]`, true when
    /// another element follows (and positions the cursor on it).
    #[inline]
    pub(crate) fn next_element(&mut self, first: bool) -> Result<bool, SyntaxError> {
        self.skip_ws();
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.pos += 1;
                self.skip_ws();
                Ok(true)
            }
            None => Err(self.error("Unexpected end-of-input: expected close marker for Array")),
            _ if !first => Err(self.unexpected("was expecting comma to separate Array entries")),
            _ => Ok(true),
        }
    }

    /// Reads a string; the cursor must be on its opening quote. Borrowed unless it has escapes.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let start = self.pos;
        self.pos = string_stop(self.bytes, self.pos);
        match self.bytes.get(self.pos) {
            None => return Err(self.error("Unexpected end-of-input in a String value")),
            Some(b'"') => {
                let s = &self.text[start..self.pos];
                self.pos += 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(b'\\') => {}
            Some(&b) => return Err(self.control_char(b)),
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.text[start..self.pos]);
        loop {
            match self.bytes.get(self.pos) {
                None => return Err(self.error("Unexpected end-of-input in a String value")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                Some(&b) if b < 0x20 => return Err(self.control_char(b)),
                Some(_) => {
                    let run_start = self.pos;
                    self.pos = string_stop(self.bytes, self.pos);
                    out.push_str(&self.text[run_start..self.pos]);
                }
            }
        }
    }

    fn control_char(&self, b: u8) -> SyntaxError {
        self.error(format!(
            "Illegal unquoted character ((CTRL-CHAR, code {b})): has to be escaped using backslash to be included in string value"
        ))
    }

    fn escape(&mut self, out: &mut String) -> Result<(), SyntaxError> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.error("Unexpected end-of-input in character escape sequence"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                if (0xD800..0xDC00).contains(&first) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    if self.bytes.get(self.pos) == Some(&b'\\')
                        && self.bytes.get(self.pos + 1) == Some(&b'u')
                    {
                        self.pos += 2;
                        let second = self.hex4()?;
                        if (0xDC00..0xE000).contains(&second) {
                            let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                            char::from_u32(code).unwrap_or('\u{FFFD}')
                        } else {
                            return Err(
                                self.error("Invalid UTF-16 surrogate pair in a String value")
                            );
                        }
                    } else {
                        return Err(self.error("Unpaired UTF-16 surrogate in a String value"));
                    }
                } else if (0xDC00..0xE000).contains(&first) {
                    return Err(self.error("Unpaired UTF-16 surrogate in a String value"));
                } else {
                    char::from_u32(first).unwrap_or('\u{FFFD}')
                }
            }
            other => {
                self.pos -= 1;
                return Err(self.error(format!(
                    "Unrecognized character escape '{}' (code {other})",
                    char::from(other)
                )));
            }
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let digit = self
                .bytes
                .get(self.pos)
                .and_then(|&b| char::from(b).to_digit(16));
            match digit {
                Some(d) => code = code * 16 + d,
                None => {
                    return Err(
                        self.error("Unexpected character in a \\u escape: expected a hex digit")
                    );
                }
            }
            self.pos += 1;
        }
        Ok(code)
    }

    /// Reads a number (cursor on its first byte) and returns its text.
    #[inline]
    pub(crate) fn number(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        let b = self.bytes;
        let mut p = self.pos;
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        match b.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => {
                while matches!(b.get(p), Some(b'0'..=b'9')) {
                    p += 1;
                }
            }
            _ => {
                self.pos = p;
                return Err(self.unexpected("expected digit for a number"));
            }
        }
        if b.get(p) == Some(&b'.') {
            p += 1;
            if !matches!(b.get(p), Some(b'0'..=b'9')) {
                self.pos = p;
                return Err(self.unexpected("Decimal point not followed by a digit"));
            }
            while matches!(b.get(p), Some(b'0'..=b'9')) {
                p += 1;
            }
        }
        if matches!(b.get(p), Some(b'e' | b'E')) {
            p += 1;
            if matches!(b.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            if !matches!(b.get(p), Some(b'0'..=b'9')) {
                self.pos = p;
                return Err(self.unexpected("Exponent indicator not followed by a digit"));
            }
            while matches!(b.get(p), Some(b'0'..=b'9')) {
                p += 1;
            }
        }
        self.pos = p;
        Ok(&self.text[start..p])
    }

    /// Reads `true`, `false` or `null` (cursor on its first byte), or reports the unrecognised
    /// token the way Jackson does.
    pub(crate) fn literal(&mut self) -> Result<Scalar, SyntaxError> {
        let rest = &self.bytes[self.pos..];
        let (scalar, len) = if rest.starts_with(b"true") {
            (Scalar::True, 4)
        } else if rest.starts_with(b"false") {
            (Scalar::False, 5)
        } else if rest.starts_with(b"null") {
            (Scalar::Null, 4)
        } else {
            (Scalar::Null, 0)
        };
        let token_end = self.pos
            + self.text[self.pos..]
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
                .map_or(self.text.len() - self.pos, |(i, _)| i);
        if len == 0 || token_end != self.pos + len {
            let token = &self.text[self.pos..token_end.max(self.pos)];
            if token.is_empty() {
                return Err(self.unexpected(
                    "expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')",
                ));
            }
            return Err(self.error(format!(
                "Unrecognized token '{token}': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
            )));
        }
        self.pos += len;
        Ok(scalar)
    }

    /// Parses one value into a tree (cursor on its first byte).
    pub(crate) fn value(&mut self, depth: usize) -> Result<Json, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                let mut first = true;
                while let Some(key) = self.next_key(first)? {
                    first = false;
                    let value = self.value(depth + 1)?;
                    members.push((key.into_owned(), value));
                }
                Ok(Json::Object(members))
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                let mut first = true;
                while self.next_element(first)? {
                    first = false;
                    items.push(self.value(depth + 1)?);
                }
                Ok(Json::Array(items))
            }
            Some(b'"') => Ok(Json::String(self.string()?.into_owned())),
            Some(b'-' | b'0'..=b'9') => Ok(Json::Number(self.number()?.to_owned())),
            _ => Ok(match self.literal()? {
                Scalar::True => Json::Bool(true),
                Scalar::False => Json::Bool(false),
                Scalar::Null => Json::Null,
            }),
        }
    }

    /// Skips one value, checking its syntax, without building anything.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Result<(), SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut first = true;
                while self.next_key(first)?.is_some() {
                    first = false;
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            Some(b'[') => {
                self.pos += 1;
                let mut first = true;
                while self.next_element(first)? {
                    first = false;
                    self.skip_value(depth + 1)?;
                }
                Ok(())
            }
            Some(b'"') => self.skip_string(),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            _ => self.literal().map(|_| ()),
        }
    }

    /// Skips one value of text already known to be valid JSON without checking it again: a
    /// container by its brackets ([`super::structural`]), a string up to its closing quote, a
    /// number or literal up to the next delimiter. Only the depth limit is still enforced.
    pub(crate) fn skip_trusted(&mut self, depth: usize) -> Result<(), SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        let b = self.bytes;
        match b.get(self.pos) {
            Some(b'{' | b'[') => {
                match super::structural::container_end(b, self.pos, depth, MAX_DEPTH) {
                    Ok(end) => self.pos = end,
                    Err(Skip::TooDeep(at)) => {
                        self.pos = at;
                        return Err(self.too_deep());
                    }
                    Err(Skip::Truncated) => {
                        self.pos = b.len();
                        return Err(self.error("Unexpected end-of-input: expected close marker"));
                    }
                }
            }
            Some(b'"') => self.pos = (string_end(b, self.pos + 1) + 1).min(b.len()),
            _ => {
                while let Some(&c) = b.get(self.pos) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.pos += 1;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn too_deep(&self) -> SyntaxError {
        self.error(format!("JSON nesting deeper than {MAX_DEPTH} levels"))
    }

    /// The byte offset of the cursor.
    #[cfg(test)]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Skips a string without unescaping it, still checking its escapes.
    fn skip_string(&mut self) -> Result<(), SyntaxError> {
        self.pos += 1;
        loop {
            self.pos = string_stop(self.bytes, self.pos);
            match self.bytes.get(self.pos) {
                None => return Err(self.error("Unexpected end-of-input in a String value")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.bytes.get(self.pos) {
                        Some(b'u') => {
                            self.pos += 1;
                            self.hex4()?;
                        }
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        _ => return Err(self.error("Unrecognized character escape")),
                    }
                }
                Some(&b) => return Err(self.control_char(b)),
            }
        }
    }
}

/// The three literal tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    True,
    False,
    Null,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        let json = Json::parse(r#"{"a": [5.0, 5e0, -0, 37.807807921694092]}"#).unwrap();
        let Json::Object(members) = json else {
            panic!("not an object")
        };
        let Json::Array(items) = &members[0].1 else {
            panic!("not an array")
        };
        let texts: Vec<_> = items
            .iter()
            .map(|i| match i {
                Json::Number(t) => t.as_str(),
                _ => "?",
            })
            .collect();
        assert_eq!(texts, ["5.0", "5e0", "-0", "37.807807921694092"]);
    }

    #[test]
    fn display_round_trips() {
        let text = r#"{"a":[1.50,"x\"y\\z\n\u0001",true,null,{}],"b":-0e5}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(Json::parse(&json.to_string()).unwrap(), json);
        assert!(json.to_string().contains("1.50"));
    }

    #[test]
    fn escapes_are_decoded() {
        let json = Json::parse(r#""a\"b\\c\u00e9\ud83d\ude80""#).unwrap();
        assert_eq!(json, Json::String("a\"b\\cé🚀".into()));
    }

    #[test]
    fn jackson_wording_for_common_errors() {
        let err = Json::parse("this is valid json but not a dict").unwrap_err();
        assert_eq!(
            err.message,
            "Unrecognized token 'this': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
        );
        let err = Json::parse("{'bad': 'quotation'}").unwrap_err();
        assert_eq!(
            err.message,
            "Unexpected character (''' (code 39)): was expecting double-quote to start field name"
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "\"\\x\"",
            "nul",
            "{} x",
            "\"a\u{1}\"",
            "[1 2]",
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn skip_value_checks_syntax_too() {
        for (text, ok) in [
            ("{\"a\":[1,{\"b\":\"\\n\"}]}", true),
            ("{\"a\":[1,}", false),
            ("\"\\q\"", false),
        ] {
            let mut lexer = Lexer::new(text);
            assert_eq!(lexer.skip_value(0).is_ok(), ok, "{text}");
        }
    }
}
