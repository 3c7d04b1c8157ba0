//! The retry policy as pure functions: which outcomes are retried, how long to wait, when to give
//! up. The worker only applies the decisions.
//!
//! Retried: connection errors, timeouts, 401, 407, 408, 409, 429 and 5xx (408 Request Timeout on
//! purpose: the target says it gave up waiting, so a later try may succeed). 410 Gone is final and
//! disables the target. Every other non-2xx status is final. Waits are exponential with full
//! jitter: uniform in (0, min(max, base·2^(n−1))], at least `Retry-After` when the target sends
//! one (capped at `max`).

use std::time::{Duration, SystemTime};

use rand::Rng;

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

/// What a response status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Delivered,
    Retry,
    Gone,
    Final,
}

pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Delivered,
        401 | 407 | 408 | 409 | 429 | 500..=599 => StatusClass::Retry,
        410 => StatusClass::Gone,
        _ => StatusClass::Final,
    }
}

/// The wait after a failed try, before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `attempt`-th try (1-based) failed; `retry_after` is the target's ask.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let exponent = attempt.saturating_sub(1).min(63);
        let ceiling = self
            .base
            .checked_mul(1u32.checked_shl(exponent.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max);
        let ceiling_ms = ceiling.as_millis().max(1) as u64;
        let jittered = Duration::from_millis(rng.random_range(1..=ceiling_ms));
        match retry_after {
            Some(asked) => jittered.max(asked.min(self.max)),
            None => jittered,
        }
    }
}

/// Reads `Retry-After`: delta-seconds or an HTTP date. `None` when absent or unreadable.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The retry budget of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub maximum_retry_attempts: u32,
    pub maximum_event_age: Duration,
}

/// After a retryable failure of try number `attempt`: when to try again, or why not.
/// `age` is how long the budget has been running (since the event, or since a redrive).
pub fn after_failure(
    budget: Budget,
    attempt: u32,
    age: Duration,
    delay: Duration,
) -> Result<Duration, DeadReason> {
    if attempt > budget.maximum_retry_attempts {
        return Err(DeadReason::RetriesExhausted);
    }
    if age.saturating_add(delay) > budget.maximum_event_age {
        return Err(DeadReason::MaxAgeExceeded);
    }
    Ok(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(1000),
        max: Duration::from_millis(300_000),
    };

    #[test]
    fn statuses_are_classified_as_designed() {
        for status in [200, 201, 204, 299] {
            assert_eq!(classify_status(status), StatusClass::Delivered, "{status}");
        }
        for status in [401, 407, 408, 409, 429, 500, 502, 503, 504, 599] {
            assert_eq!(classify_status(status), StatusClass::Retry, "{status}");
        }
        assert_eq!(classify_status(410), StatusClass::Gone);
        for status in [100, 301, 302, 304, 400, 403, 404, 405, 413, 422] {
            assert_eq!(classify_status(status), StatusClass::Final, "{status}");
        }
    }

    #[test]
    fn backoff_grows_exponentially_under_full_jitter_and_is_capped() {
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..=40u32 {
            let ceiling = Duration::from_millis(1000u64.saturating_mul(1 << (attempt - 1).min(30)))
                .min(BACKOFF.max);
            for _ in 0..200 {
                let d = BACKOFF.delay(attempt, None, &mut rng);
                assert!(
                    d > Duration::ZERO && d <= ceiling,
                    "attempt {attempt}: {d:?} > {ceiling:?}"
                );
            }
        }
        // The jitter spreads: over many draws at attempt 5 (ceiling 16 s) both halves occur.
        let draws: Vec<Duration> = (0..1000)
            .map(|_| BACKOFF.delay(5, None, &mut rng))
            .collect();
        assert!(draws.iter().any(|d| *d < Duration::from_secs(4)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(12)));
        // u32::MAX attempts neither overflow nor exceed the cap.
        assert!(BACKOFF.delay(u32::MAX, None, &mut rng) <= BACKOFF.max);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let mut rng = StdRng::seed_from_u64(1);
        let asked = Duration::from_secs(30);
        assert!(BACKOFF.delay(1, Some(asked), &mut rng) >= asked);
        assert_eq!(
            BACKOFF.delay(1, Some(Duration::from_secs(86_400)), &mut rng),
            BACKOFF.max
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn the_budget_ends_on_attempts_or_age() {
        let budget = Budget {
            maximum_retry_attempts: 2,
            maximum_event_age: Duration::from_secs(60),
        };
        let d = Duration::from_secs(1);
        assert_eq!(after_failure(budget, 1, Duration::ZERO, d), Ok(d));
        assert_eq!(after_failure(budget, 2, Duration::ZERO, d), Ok(d));
        assert_eq!(
            after_failure(budget, 3, Duration::ZERO, d),
            Err(DeadReason::RetriesExhausted)
        );
        assert_eq!(after_failure(budget, 1, Duration::from_secs(59), d), Ok(d));
        assert_eq!(
            after_failure(budget, 1, Duration::from_secs(59), Duration::from_secs(2)),
            Err(DeadReason::MaxAgeExceeded)
        );
        let none = Budget {
            maximum_retry_attempts: 0,
            ..budget
        };
        assert_eq!(
            after_failure(none, 1, Duration::ZERO, d),
            Err(DeadReason::RetriesExhausted)
        );
        for reason in DeadReason::ALL {
            assert_eq!(DeadReason::parse(reason.as_str()), Some(reason));
        }
    }
}
