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

use super::client::SendError;
use super::outcome::{DeadReason, Transition};

/// What one try's result asks for, before the retry budget has its say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another try; `retry_after` is the target's ask.
    Retry {
        retry_after: Option<Duration>,
    },
    /// 410 Gone: a dead letter, and the target is disabled.
    Gone,
    Final(DeadReason),
}

/// What a response status means; `retry_after` is the target's `Retry-After` header, read.
pub fn judge_status(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        401 | 407 | 408 | 409 | 429 | 500..=599 => Verdict::Retry { retry_after },
        410 => Verdict::Gone,
        _ => Verdict::Final(DeadReason::FinalStatus),
    }
}

/// What a failure to get any response means: the address guard and a request that cannot be
/// made are final; timeouts and connection or transport failures are worth another try.
pub fn judge_error(error: &SendError) -> Verdict {
    match error {
        SendError::Blocked(_) => Verdict::Final(DeadReason::SsrfBlocked),
        SendError::Request(_) => Verdict::Final(DeadReason::InvalidRequest),
        SendError::Timeout(_)
        | SendError::Connect(_)
        | SendError::Transport(_)
        | SendError::Auth(_) => Verdict::Retry { retry_after: None },
    }
}

/// Where a delivery goes after try number `attempt` (1-based) got `verdict`; `age` is how long
/// its budget has been running.
pub fn next(
    verdict: Verdict,
    budget: Budget,
    attempt: u32,
    age: Duration,
    backoff: &Backoff,
    rng: &mut impl Rng,
) -> Transition {
    match verdict {
        Verdict::Delivered => Transition::Delivered,
        Verdict::Gone => Transition::Dead(DeadReason::TargetGone),
        Verdict::Final(reason) => Transition::Dead(reason),
        Verdict::Retry { retry_after } => {
            let delay = backoff.delay(attempt, retry_after, rng);
            match after_failure(budget, attempt, age, delay) {
                Ok(after) => Transition::Retry { after },
                Err(reason) => Transition::Dead(reason),
            }
        }
    }
}

/// Whether try number `attempt` may be made at all: not past the attempts (a claim after a
/// rescue can be) nor past the age.
pub fn may_try(budget: Budget, attempt: u32, age: Duration) -> Result<(), DeadReason> {
    if attempt > budget.maximum_retry_attempts + 1 {
        return Err(DeadReason::RetriesExhausted);
    }
    if age > budget.maximum_event_age {
        return Err(DeadReason::MaxAgeExceeded);
    }
    Ok(())
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
    fn statuses_are_judged_as_designed() {
        let asked = Some(Duration::from_secs(3));
        for status in [200, 201, 204, 299] {
            assert_eq!(judge_status(status, None), Verdict::Delivered, "{status}");
        }
        for status in [401, 407, 408, 409, 429, 500, 502, 503, 504, 599] {
            assert_eq!(
                judge_status(status, asked),
                Verdict::Retry { retry_after: asked },
                "{status}"
            );
        }
        assert_eq!(judge_status(410, None), Verdict::Gone);
        for status in [100, 301, 302, 304, 400, 403, 404, 405, 413, 422] {
            assert_eq!(
                judge_status(status, None),
                Verdict::Final(DeadReason::FinalStatus),
                "{status}"
            );
        }
    }

    #[test]
    fn send_errors_are_judged_as_designed() {
        let blocked = SendError::Blocked(super::super::client::Blocked {
            host: "localhost".into(),
            address: "127.0.0.1".parse().unwrap(),
        });
        assert_eq!(
            judge_error(&blocked),
            Verdict::Final(DeadReason::SsrfBlocked)
        );
        assert_eq!(
            judge_error(&SendError::Request("bad method".into())),
            Verdict::Final(DeadReason::InvalidRequest)
        );
        for retried in [
            SendError::Timeout(5000),
            SendError::Connect("refused".into()),
            SendError::Transport("reset".into()),
        ] {
            assert_eq!(
                judge_error(&retried),
                Verdict::Retry { retry_after: None },
                "{retried}"
            );
        }
    }

    #[test]
    fn the_next_state_follows_the_verdict_within_the_budget() {
        let budget = Budget {
            maximum_retry_attempts: 1,
            maximum_event_age: Duration::from_secs(60),
        };
        let mut rng = StdRng::seed_from_u64(3);
        let next = |verdict, attempt, rng: &mut StdRng| {
            next(verdict, budget, attempt, Duration::ZERO, &BACKOFF, rng)
        };
        assert_eq!(next(Verdict::Delivered, 1, &mut rng), Transition::Delivered);
        assert_eq!(
            next(Verdict::Gone, 1, &mut rng),
            Transition::Dead(DeadReason::TargetGone)
        );
        let retry = Verdict::Retry { retry_after: None };
        assert!(matches!(next(retry, 1, &mut rng), Transition::Retry { .. }));
        assert_eq!(
            next(retry, 2, &mut rng),
            Transition::Dead(DeadReason::RetriesExhausted)
        );
        // Asked to wait past the maximum age: a dead letter now rather than a try never made.
        let later = Verdict::Retry {
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(
            next(later, 1, &mut rng),
            Transition::Dead(DeadReason::MaxAgeExceeded)
        );
        assert_eq!(may_try(budget, 2, Duration::ZERO), Ok(()));
        assert_eq!(
            may_try(budget, 3, Duration::ZERO),
            Err(DeadReason::RetriesExhausted)
        );
        assert_eq!(
            may_try(budget, 1, Duration::from_secs(61)),
            Err(DeadReason::MaxAgeExceeded)
        );
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
