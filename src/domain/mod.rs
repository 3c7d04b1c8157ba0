//! Validated values of the model (bus and rule names, rules with their targets, event
//! envelopes). Each is built from wire JSON by one fallible constructor that reports every
//! failing field with its JSON pointer, so the REST API and `rules apply` refuse the same input
//! with the same words.

mod envelope;
mod ids;
mod names;
mod rule;

pub use envelope::{EntryError, Envelope, EnvelopeLimits};
pub use ids::{DeliveryId, EventId, TargetRef};
pub use names::{BusName, NameError, RuleName, TargetId};
pub use rule::{
    DEFAULT_TIMEOUT_MS, InputTransform, RetryPolicy, Rule, RuleState, TIMEOUT_MS_RANGE, Target,
    parse_rule, parse_rule_document, placeholder_name,
};

/// One refused field: where (an RFC 6901 JSON pointer into the request body) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// Every field that was refused, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid field(s), first: {}: {}", .0.len(), .0[0].pointer, .0[0].detail)]
pub struct ValidationErrors(pub Vec<FieldError>);

/// `base` + `/` + `key`, escaped as RFC 6901 requires.
pub fn pointer(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}
