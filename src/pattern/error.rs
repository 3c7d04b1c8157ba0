//! Errors of the pattern language: an invalid pattern, or an event that cannot be matched.

use super::json::SyntaxError;

/// Why a pattern was refused, and where.
///
/// `reason` is worded like EventBridge's (`event-ruler`'s) message wherever `PATTERNS.md` gives
/// one, so [`PatternError::aws_message`] is what AWS would answer.
/// `pointer` is an RFC 6901 JSON pointer into the pattern (`""` is the whole pattern).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PatternError {
    pub pointer: String,
    pub reason: String,
}

/// What EventBridge writes before the reason of a refused pattern.
pub const INVALID_PATTERN: &str = "Event pattern is not valid. Reason: ";

impl PatternError {
    /// The message as EventBridge words it: [`INVALID_PATTERN`] and the reason.
    pub fn aws_message(&self) -> String {
        format!("{INVALID_PATTERN}{}", self.reason)
    }

    pub(crate) fn new(pointer: impl Into<String>, reason: impl Into<String>) -> Self {
        PatternError {
            pointer: pointer.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn syntax(err: &SyntaxError) -> Self {
        PatternError::new("", err.message.clone())
    }
}

/// Why an event could not be matched at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("Event must be a JSON object")]
    NotAnObject,
    #[error("Event is not valid UTF-8")]
    NotUtf8,
    #[error("Event is not valid JSON: {0}")]
    Syntax(#[from] SyntaxError),
}
