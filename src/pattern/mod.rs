//! The EventBridge pattern language: parse and validate patterns, compile many of them into an
//! immutable [`RuleSet`], and match events against it. `PATTERNS.md` is the specification.
//!
//! This module is pure: it uses only `std` and `serde_json`, does no I/O and holds no locks
//! (`tests/architecture.rs` enforces that). The matcher, JSON reader, number model, CIDR and
//! case model are hand-written because exact EventBridge fidelity and speed are the product.
//!
//! Two entry points read event text: [`Matcher::matches_str`] checks every byte (text from
//! anywhere); [`Matcher::matches_validated`], for text a JSON reader already accepted (ingest's
//! bodies, stored events), passes over the parts no pattern names by their brackets alone,
//! 64 bytes at a time (`structural`), and gives the same answers.
//!
//! ```
//! use switchyard::pattern::{self, RuleSet};
//! let p = pattern::parse(r#"{"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}"#).unwrap();
//! let rules = RuleSet::compile([("big-orders", &p)]);
//! let hits = rules.matches_json(br#"{"source": "shop", "detail": {"total": 250}}"#).unwrap();
//! assert_eq!(hits, [&"big-orders"]);
//! ```
//!
//! Limits (see [`Limits`]): pattern text ≤ 4,096 bytes, `$or` ≤ 1,000 combinations, wildcard
//! complexity ≤ 10 per field, ≤ 64 leaf paths per `$or` branch, JSON nesting ≤ 1,000 levels.
//! Numbers compare by value as IEEE-754 doubles over the whole double range, but only when their
//! text is exactly a double (`5`, `5.0` and `5e0` are equal; `9007199254740993` is not a double,
//! so it matches only the identical text and cannot be used in `numeric`). The string `"5"` is
//! never a number.

mod ast;
mod casefold;
mod compile;
mod error;
mod flatten;
mod ip;
mod json;
mod matcher;
mod number;
mod parse;
pub mod reference;
mod structural;
mod wildcard;

pub use ast::{FieldUse, Pattern};
pub use compile::RuleSet;
pub use error::{EventError, INVALID_PATTERN, PatternError};
pub use json::{Json, SyntaxError};
pub use matcher::Matcher;
pub use parse::{Limits, TOO_COMPLEX};

/// Parses pattern text with the default [`Limits`].
pub fn parse(text: &str) -> Result<Pattern, PatternError> {
    parse::parse_str(text, &Limits::default())
}

/// Parses pattern text with explicit limits.
pub fn parse_with(text: &str, limits: &Limits) -> Result<Pattern, PatternError> {
    parse::parse_str(text, limits)
}

/// Parses a pattern already read as JSON (number text kept as written).
pub fn parse_json(json: &Json, limits: &Limits) -> Result<Pattern, PatternError> {
    parse::parse_json(json, limits)
}

/// Parses a pattern given as a `serde_json::Value`. The length limit applies to its compact
/// serialisation; numbers are as serde_json holds them.
pub fn parse_value(value: &serde_json::Value, limits: &Limits) -> Result<Pattern, PatternError> {
    parse::check_length(serde_json::to_string(value).map_or(0, |s| s.len()), limits)?;
    parse::parse_json(&Json::from_value(value), limits)
}

/// Whether one pattern matches one event given as JSON text.
pub fn matches(pattern: &Pattern, event: &[u8]) -> Result<bool, EventError> {
    let set = RuleSet::compile([((), pattern)]);
    let mut matcher = set.matcher();
    Ok(!matcher.matches_json(event)?.is_empty())
}

/// The answer of testing one pattern against one event (EventBridge's `TestEventPattern`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    Match,
    NoMatch,
    InvalidPattern(PatternError),
    InvalidEvent(EventError),
}

/// Tests pattern text (numbers as written, default [`Limits`]) against event text. The one
/// pattern tester: the CLI, the API and the admin UI all answer with it.
pub fn test(pattern: &str, event: &[u8]) -> TestOutcome {
    let pattern = match parse(pattern) {
        Ok(pattern) => pattern,
        Err(error) => return TestOutcome::InvalidPattern(error),
    };
    match matches(&pattern, event) {
        Ok(true) => TestOutcome::Match,
        Ok(false) => TestOutcome::NoMatch,
        Err(error) => TestOutcome::InvalidEvent(error),
    }
}
