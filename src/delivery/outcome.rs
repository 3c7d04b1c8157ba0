//! The delivery state machine's values: what a worker holds ([`Claim`], [`TargetRuntime`]), and
//! what it hands back ([`Outcome`]: a [`Transition`] and the [`AttemptRecord`] of the try).
//! `store::deliveries` takes and returns these; it decides nothing.
//!
//! ```text
//! pending ──claim──▶ in_flight ──Delivered──▶ delivered
//!    ▲                  │ ├──Retry{after}──▶ pending (due after the wait)
//!    │                  │ ├──Dead(reason)──▶ dead ──redrive──▶ pending │ discard ──▶ discarded
//!    ├──lease expired───┘ └──Hold─────────▶ held (target disabled) ──enable──▶ pending
//!    └──Defer{after} (rate limit spent; the try does not count)──┘
//! ```
//!
//! An ordered target's deliveries add one state before `pending`: `queued`, behind their
//! group's head. The store moves the next one to `pending` when the head ends (delivered, dead
//! unless the target blocks on dead letters, discarded); the worker never sees groups.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use crate::domain::{DeliveryId, EventId, InputTransform, TargetRef};

/// A delivery this process holds the lease of, with what its attempt needs.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub bus: String,
    pub rule_name: String,
    /// The target's id within its rule (for people and logs).
    pub target_id: String,
    pub target_ref: TargetRef,
    /// Tries so far, this one included.
    pub attempts: i32,
    /// Since when the retry budget's age counts (the event, or the last redrive).
    pub budget_started_at: OffsetDateTime,
    /// The event as stored.
    pub body: String,
    pub received_at: OffsetDateTime,
    /// The event's span: each attempt sends a `traceparent` that is its child (`None` for events
    /// stored before trace context).
    pub span: Option<crate::domain::trace::EventSpan>,
    /// Whether it is its ordered group's head (it holds the group): its outcome may release the
    /// group. Only the lease's holder changes that, so it stays as claimed until the outcome.
    pub holds_group: bool,
    /// Handed over at ingest without a row (migration 0028): when its event was received, by
    /// the database's clock. Its outcome makes its row ([`Claim::handed`]).
    pub handed_at: Option<OffsetDateTime>,
}

impl Claim {
    /// What makes its row, if it was handed over without one.
    pub fn handed(&self) -> Option<crate::store::handover::Handed> {
        Some(crate::store::handover::Handed {
            id: self.id,
            event_id: self.event_id,
            bus: self.bus.clone(),
            rule_name: self.rule_name.clone(),
            target_id: self.target_id.clone(),
            target_ref: self.target_ref,
            received_at: self.handed_at?,
        })
    }
}

/// A target as the worker needs it.
#[derive(Debug, Clone)]
pub struct TargetRuntime {
    pub id: TargetRef,
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub input: InputTransform,
    pub maximum_retry_attempts: u32,
    pub maximum_event_age: Duration,
    pub timeout: Duration,
    pub max_concurrency: u32,
    /// The secrets that sign: the current one, and the previous one while its overlap lasts.
    pub secrets: Vec<String>,
    pub disabled: bool,
    pub format: crate::domain::Format,
    /// The connection that authenticates its requests, its secret sealed.
    pub connection: Option<crate::connections::SealedConnection>,
    /// Its rate limit, across every process: the key it counts under (its API destination's,
    /// else its own) and the sends per second.
    pub rate_limit: Option<(String, u32)>,
}

/// Why a delivery became a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    RetriesExhausted,
    MaxAgeExceeded,
    FinalStatus,
    TargetGone,
    SsrfBlocked,
    TransformFailed,
    TargetDeleted,
    InvalidRequest,
}

impl DeadReason {
    pub const ALL: [DeadReason; 8] = [
        DeadReason::RetriesExhausted,
        DeadReason::MaxAgeExceeded,
        DeadReason::FinalStatus,
        DeadReason::TargetGone,
        DeadReason::SsrfBlocked,
        DeadReason::TransformFailed,
        DeadReason::TargetDeleted,
        DeadReason::InvalidRequest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::RetriesExhausted => "retries_exhausted",
            DeadReason::MaxAgeExceeded => "max_age_exceeded",
            DeadReason::FinalStatus => "final_status",
            DeadReason::TargetGone => "target_gone",
            DeadReason::SsrfBlocked => "ssrf_blocked",
            DeadReason::TransformFailed => "transform_failed",
            DeadReason::TargetDeleted => "target_deleted",
            DeadReason::InvalidRequest => "invalid_request",
        }
    }

    pub fn parse(text: &str) -> Option<DeadReason> {
        DeadReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Where a claimed delivery goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Delivered,
    /// Back to pending, due after the wait.
    Retry {
        after: Duration,
    },
    Dead(DeadReason),
    /// The target is disabled: wait in `held` until it is enabled (the try did not happen).
    Hold,
    /// The target's rate limit is spent: back to pending, due after the wait; the try did not
    /// happen and does not count.
    Defer {
        after: Duration,
    },
}

/// One HTTP try (or the failure to make one), as recorded.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: OffsetDateTime,
    pub duration_ms: i32,
    pub status: Option<i32>,
    pub response_headers: Option<serde_json::Value>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl AttemptRecord {
    /// A try that got no response: only the error.
    pub fn failed(started_at: OffsetDateTime, duration_ms: i32, error: String) -> AttemptRecord {
        AttemptRecord {
            started_at,
            duration_ms,
            status: None,
            response_headers: None,
            response_body: None,
            error: Some(error),
        }
    }
}

/// The outcome of one claimed delivery, to be recorded.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub id: DeliveryId,
    pub transition: Transition,
    /// The payload as rendered for this attempt.
    pub payload: Option<String>,
    /// The try, if one was made.
    pub attempt: Option<AttemptRecord>,
    /// The delivery held its group when it was claimed ([`Claim::holds_group`]).
    pub held_group: bool,
    /// The delivery has no row yet ([`Claim::handed_at`]): the outcome makes it.
    pub handed: Option<crate::store::handover::Handed>,
}
