//! Validated values of the model (bus and rule names, rules with their targets, event
//! envelopes). Each is built from wire JSON by one fallible constructor that reports every
//! failing field with its JSON pointer, so the REST API and `rules apply` refuse the same input
//! with the same words.

pub mod archive;
pub mod cloudevent;
mod envelope;
pub mod fields;
mod ids;
mod names;
mod rule;
pub mod trace;

pub use envelope::{EntryError, Envelope, EnvelopeLimits, MAX_DETAIL_TYPE, MAX_SOURCE, event_time};
pub use fields::{FieldError, ValidationErrors};
pub use ids::{DeliveryId, EventId, TargetRef};
pub use names::{ArchiveName, BusName, NameError, ReplayName, RuleName, TargetId};
pub(crate) use rule::integer_in;
pub use rule::{
    DEFAULT_TIMEOUT_MS, DestinationRef, Format, MAX_TARGETS, OnDead, Ordering, RESERVED_HEADERS,
    RetryPolicy, Rule, RuleState, TIMEOUT_MS_RANGE, Target, check_url, parse_rule,
    parse_rule_document,
};

/// What a target receives; the transformation's own type (validated and rendered in
/// [`crate::transform`]).
pub use crate::transform::InputTransform;
