//! One attempt, in three steps that each return a named value:
//!
//! 1. [`prepare`]: the budget allows a try, the payload is rendered and signed, the headers are
//!    built → [`Prepared::Send`] with the [`Request`], or [`Prepared::Skip`] with the
//!    [`Decision`] that no request is made (and why);
//! 2. [`Engine::send`]: under the target's concurrency limit, over HTTP → [`Sent`];
//! 3. [`decide`]: what the answer means under the retry policy → a [`Decision`].
//!
//! [`Engine::attempt`] runs them for one claim and hands the outcome to the recorder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use super::client::{Answer, Outgoing, SendError};
use super::format;
use super::outcome::{AttemptRecord, Claim, DeadReason, Outcome, TargetRuntime, Transition};
use super::policy::{self, Backoff, Budget};
use super::recorder::{Finished, Note};
use super::signing;
use super::{Engine, auth};
use crate::metrics::TargetLabels;
use crate::transform;

/// When a delivery whose target stayed at its concurrency limit is looked at again.
const LIMIT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A request ready to be sent, with what deciding its outcome needs.
pub(super) struct Request {
    /// Which try this is (1-based).
    attempt: u32,
    budget: Budget,
    /// How long the budget has been running.
    age: Duration,
    started_at: OffsetDateTime,
    payload: String,
    headers: Vec<(String, String)>,
}

/// What step 1 came to.
pub(super) enum Prepared {
    Send(Request),
    Skip(Decision),
}

/// What happened on the wire.
pub(super) struct Sent {
    duration_ms: i32,
    result: Result<Answer, SendError>,
}

/// Where the delivery goes, with what is recorded of the attempt.
#[derive(Debug)]
pub(super) struct Decision {
    pub transition: Transition,
    /// The payload as rendered, when it was.
    pub payload: Option<String>,
    /// The try, or the failure to prepare one; `None` when nothing was tried.
    pub attempt: Option<AttemptRecord>,
}

impl Decision {
    fn untried(transition: Transition) -> Decision {
        Decision {
            transition,
            payload: None,
            attempt: None,
        }
    }

    /// Whether the target asked to be disabled (410 Gone).
    pub fn disables_target(&self) -> bool {
        self.transition == Transition::Dead(DeadReason::TargetGone)
    }
}

/// Step 1: checks the budget, renders the payload, signs it and builds the headers.
pub(super) fn prepare(claim: &Claim, target: &TargetRuntime, now: OffsetDateTime) -> Prepared {
    let attempt = claim.attempts.max(1) as u32;
    let budget = Budget {
        maximum_retry_attempts: target.maximum_retry_attempts,
        maximum_event_age: target.maximum_event_age,
    };
    let age: Duration = (now - claim.budget_started_at)
        .try_into()
        .unwrap_or(Duration::ZERO);
    if let Err(reason) = policy::may_try(budget, attempt, age) {
        return Prepared::Skip(Decision::untried(Transition::Dead(reason)));
    }
    let ingestion_time = claim.received_at.format(&Rfc3339).unwrap_or_default();
    let context = transform::Context {
        rule_name: &claim.rule_name,
        ingestion_time: &ingestion_time,
    };
    // The event cannot be made into this target's request: a dead letter, with why.
    let untransformable = |why: String| {
        Prepared::Skip(Decision {
            transition: Transition::Dead(DeadReason::TransformFailed),
            payload: None,
            attempt: Some(AttemptRecord::failed(now, 0, why)),
        })
    };
    let payload = match transform::render(&target.input, &claim.body, context) {
        Ok(payload) => payload,
        Err(error) => return untransformable(format!("transforming the input failed: {error}")),
    };
    let transformed = target.input != transform::InputTransform::Event;
    let wire = match format::wire(target.format, &claim.body, payload, transformed) {
        Ok(wire) => wire,
        Err(error) => {
            return untransformable(format!(
                "making the {} request failed: {error}",
                target.format.as_str()
            ));
        }
    };
    let payload = wire.body;
    let id = claim.id.to_string();
    let id_text = id.clone();
    let timestamp = now.unix_timestamp();
    let secrets: Vec<&str> = target.secrets.iter().map(String::as_str).collect();
    let signature = match signing::signature_header(&secrets, &id, timestamp, payload.as_bytes()) {
        Ok(signature) => signature,
        Err(error) => {
            return Prepared::Skip(Decision {
                transition: Transition::Dead(DeadReason::InvalidRequest),
                attempt: Some(AttemptRecord::failed(now, 0, error.to_string())),
                payload: Some(payload),
            });
        }
    };
    // The trace context is ours to send: a target's own `traceparent`/`tracestate` give way.
    let mut headers: Vec<(String, String)> = target
        .headers
        .iter()
        .filter(|(k, _)| claim.span.is_none() || !is_trace_header(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    headers.extend(wire.headers);
    headers.extend([
        (signing::WEBHOOK_ID.into(), id),
        (signing::WEBHOOK_TIMESTAMP.into(), timestamp.to_string()),
        (signing::WEBHOOK_SIGNATURE.into(), signature),
    ]);
    if let Some(span) = &claim.span {
        headers.push((
            "traceparent".into(),
            span.attempt_traceparent(&id_text, attempt),
        ));
        if let Some(state) = &span.tracestate {
            headers.push(("tracestate".into(), state.clone()));
        }
    }
    Prepared::Send(Request {
        attempt,
        budget,
        age,
        started_at: now,
        payload,
        headers,
    })
}

fn is_trace_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("traceparent") || name.eq_ignore_ascii_case("tracestate")
}

/// Step 3: what the answer (or its absence) means for the delivery.
pub(super) fn decide(
    request: Request,
    sent: Sent,
    backoff: &Backoff,
    rng: &mut impl Rng,
) -> Decision {
    let (verdict, attempt) = match sent.result {
        Ok(answer) => {
            let retry_after = answer
                .retry_after
                .as_deref()
                .and_then(|v| policy::retry_after(v, std::time::SystemTime::now()));
            let attempt = AttemptRecord {
                started_at: request.started_at,
                duration_ms: sent.duration_ms,
                status: Some(i32::from(answer.status)),
                response_headers: Some(serde_json::Value::Object(
                    answer
                        .headers
                        .into_iter()
                        .map(|(k, v)| (k, serde_json::Value::from(v)))
                        .collect(),
                )),
                response_body: Some(answer.body),
                error: None,
            };
            (policy::judge_status(answer.status, retry_after), attempt)
        }
        Err(error) => (
            policy::judge_error(&error),
            AttemptRecord::failed(request.started_at, sent.duration_ms, error.to_string()),
        ),
    };
    let transition = policy::next(
        verdict,
        request.budget,
        request.attempt,
        request.age,
        backoff,
        rng,
    );
    Decision {
        transition,
        payload: Some(request.payload),
        attempt: Some(attempt),
    }
}

impl Engine {
    /// Makes the attempt for one claim and hands its outcome to the recorder.
    #[tracing::instrument(skip_all, fields(delivery = %claim.id, event = %claim.event_id, rule = claim.rule_name, target = claim.target_id, attempt = claim.attempts))]
    pub(super) async fn attempt(
        &self,
        claim: Claim,
        target: Option<Arc<TargetRuntime>>,
        recorder: mpsc::Sender<Finished>,
    ) {
        let mut sent = false;
        let decision = match &target {
            None => Decision::untried(Transition::Dead(DeadReason::TargetDeleted)),
            Some(target) if target.disabled => Decision::untried(Transition::Hold),
            Some(target) => match prepare(&claim, target, OffsetDateTime::now_utc()) {
                Prepared::Skip(decision) => decision,
                Prepared::Send(mut request) => match self.send(target, &mut request).await {
                    Step::Sent(answer) => {
                        sent = true;
                        decide(request, answer, &self.config.backoff, &mut rand::rng())
                    }
                    Step::Deferred(after) => Decision::untried(Transition::Defer { after }),
                },
            },
        };
        if sent
            && crate::otel::enabled()
            && let (Some(span), Some(target), Some(record)) =
                (&claim.span, &target, &decision.attempt)
        {
            crate::otel::attempt_sent(&crate::otel::AttemptRecord {
                span,
                delivery_id: claim.id.to_string(),
                attempt: claim.attempts.max(1) as u32,
                method: &target.method,
                url: &target.url,
                rule: &claim.rule_name,
                target: &claim.target_id,
                started: record.started_at.into(),
                duration: Duration::from_millis(record.duration_ms.max(0) as u64),
                status: record.status.and_then(|s| u16::try_from(s).ok()),
                error: record.error.as_deref(),
            });
        }
        let handed = claim.handed();
        let finished = Finished {
            note: Note {
                disable_target: decision.disables_target(),
                target_ref: claim.target_ref,
                labels: TargetLabels {
                    bus: claim.bus,
                    rule: claim.rule_name,
                    target: claim.target_id,
                },
                attempt: claim.attempts,
                sent,
                received_at: claim.received_at,
            },
            outcome: Outcome {
                id: claim.id,
                transition: decision.transition,
                payload: decision.payload,
                attempt: decision.attempt,
                held_group: claim.holds_group,
                handed,
            },
        };
        if recorder.send(finished).await.is_err() {
            tracing::warn!(
                "the recorder has stopped; the lease will expire and the delivery will be retried"
            );
        }
    }

    /// Step 2: sends the request once the target's concurrency limit and rate limit let it,
    /// with its connection's authentication (the headers go with it; the payload stays for
    /// the record). An OAuth token the target refuses with 401 is fetched again, once.
    async fn send(&self, target: &TargetRuntime, request: &mut Request) -> Step {
        let limit = self.limit_for(target.id, target.max_concurrency);
        // The wait holds a worker slot and the lease: the send after it must still end within
        // the lease (else the delivery is claimed again meanwhile and sent twice). Past half of
        // what the lease leaves, the delivery goes back to the queue, untried, and the slot to
        // other targets.
        let most = self.config.lease.saturating_sub(target.timeout) / 2;
        let Ok(_permit) = tokio::time::timeout(most, limit.acquire_owned()).await else {
            return Step::Deferred(LIMIT_RETRY_AFTER);
        };
        if let Some((key, per_second)) = &target.rate_limit
            && let Err(after) = self.admit(key, *per_second).await
        {
            return Step::Deferred(after);
        }
        let clock = Instant::now();
        let mut headers = std::mem::take(&mut request.headers);
        let credentials = match target.connection.as_ref().map(|c| c.open(&self.sealer)) {
            None => None,
            Some(Ok(credentials)) => Some(credentials),
            Some(Err(error)) => {
                let why = format!("the connection's secret cannot be opened: {error}");
                return Step::Sent(Sent::failed(clock, SendError::Auth(why)));
            }
        };
        if let Some(header) = credentials.as_ref().and_then(|c| c.static_header()) {
            headers.push(header);
        }
        let oauth = credentials.as_ref().and_then(|c| match &c.parameters {
            crate::connections::Parameters::Oauth(oauth) => Some((c, oauth)),
            _ => None,
        });
        let mut token = None;
        if let Some((credentials, oauth)) = oauth {
            match self.token(credentials, oauth, None).await {
                Ok(fresh) => {
                    auth::set_authorization(&mut headers, format!("Bearer {fresh}"));
                    token = Some(fresh);
                }
                Err(why) => return Step::Sent(Sent::failed(clock, SendError::Auth(why))),
            }
        }
        let outgoing = |headers| Outgoing {
            method: &target.method,
            url: &target.url,
            headers,
            body: request.payload.clone(),
            timeout: target.timeout,
        };
        let again = token.is_some().then(|| headers.clone());
        let mut result = self.sender.send(outgoing(headers)).await;
        if let (Some((credentials, oauth)), Some(mut headers), Ok(answer)) = (oauth, again, &result)
            && answer.status == 401
        {
            result = match self.token(credentials, oauth, token.as_deref()).await {
                Ok(fresh) => {
                    auth::set_authorization(&mut headers, format!("Bearer {fresh}"));
                    self.sender.send(outgoing(headers)).await
                }
                Err(why) => Err(SendError::Auth(why)),
            };
        }
        Step::Sent(Sent {
            duration_ms: elapsed_ms(clock),
            result,
        })
    }
}

/// What step 2 came to: sent (or failed trying), or put back for the rate limit.
pub(super) enum Step {
    Sent(Sent),
    Deferred(Duration),
}

impl Sent {
    fn failed(clock: Instant, error: SendError) -> Sent {
        Sent {
            duration_ms: elapsed_ms(clock),
            result: Err(error),
        }
    }
}

fn elapsed_ms(clock: Instant) -> i32 {
    clock.elapsed().as_millis().min(i32::MAX as u128) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeliveryId, EventId, InputTransform, TargetRef};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn claim(attempts: i32, age: Duration) -> Claim {
        let now = OffsetDateTime::now_utc();
        Claim {
            id: DeliveryId::new(),
            event_id: EventId::new(),
            bus: "default".into(),
            rule_name: "r".into(),
            target_id: "t".into(),
            target_ref: TargetRef::new(),
            attempts,
            budget_started_at: now - age,
            body: r#"{"detail":{"n":1}}"#.into(),
            received_at: now,
            span: None,
            holds_group: false,
            handed_at: None,
        }
    }

    fn target(input: InputTransform) -> TargetRuntime {
        TargetRuntime {
            id: TargetRef::new(),
            url: "http://example.com/hook".into(),
            method: "POST".into(),
            headers: [("x-team".to_owned(), "billing".to_owned())].into(),
            input,
            maximum_retry_attempts: 2,
            maximum_event_age: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            max_concurrency: 10,
            secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
            disabled: false,
            format: crate::domain::Format::EventBridge,
            connection: None,
            rate_limit: None,
        }
    }

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(10),
        max: Duration::from_millis(100),
    };

    fn sent(prepared: Prepared) -> Request {
        match prepared {
            Prepared::Send(request) => request,
            Prepared::Skip(decision) => panic!("nothing to send: {decision:?}"),
        }
    }

    fn skipped(prepared: Prepared) -> Decision {
        match prepared {
            Prepared::Send(_) => panic!("a request was prepared"),
            Prepared::Skip(decision) => decision,
        }
    }

    fn answer(status: u16) -> Sent {
        Sent {
            duration_ms: 3,
            result: Ok(Answer {
                status,
                headers: vec![("retry-after".into(), "1".into())],
                body: "no".into(),
                retry_after: Some("1".into()),
            }),
        }
    }

    #[test]
    fn a_prepared_request_carries_the_payload_signed_with_the_delivery_id() {
        let claim = claim(1, Duration::ZERO);
        let request = sent(prepare(
            &claim,
            &target(InputTransform::Event),
            OffsetDateTime::now_utc(),
        ));
        assert_eq!(request.payload, claim.body);
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-team"), Some("billing"));
        assert_eq!(
            header(signing::WEBHOOK_ID),
            Some(claim.id.to_string().as_str())
        );
        assert!(header(signing::WEBHOOK_SIGNATURE).is_some_and(|s| s.starts_with("v1,")));
    }

    #[test]
    fn nothing_is_sent_past_the_budget_or_when_the_input_cannot_be_rendered() {
        let now = OffsetDateTime::now_utc();
        let spent = skipped(prepare(
            &claim(4, Duration::ZERO),
            &target(InputTransform::Event),
            now,
        ));
        assert_eq!(
            spent.transition,
            Transition::Dead(DeadReason::RetriesExhausted)
        );
        assert!(spent.attempt.is_none(), "no try was made");
        let old = skipped(prepare(
            &claim(1, Duration::from_secs(61)),
            &target(InputTransform::Event),
            now,
        ));
        assert_eq!(old.transition, Transition::Dead(DeadReason::MaxAgeExceeded));
        let path = InputTransform::Path("$.detail.missing".into());
        let failed = skipped(prepare(&claim(1, Duration::ZERO), &target(path), now));
        assert_eq!(
            failed.transition,
            Transition::Dead(DeadReason::TransformFailed)
        );
        assert!(
            failed
                .attempt
                .unwrap()
                .error
                .unwrap()
                .contains("transforming")
        );
    }

    #[test]
    fn the_answer_decides_the_next_state_and_is_recorded() {
        let mut rng = StdRng::seed_from_u64(9);
        let request = || {
            sent(prepare(
                &claim(1, Duration::ZERO),
                &target(InputTransform::Event),
                OffsetDateTime::now_utc(),
            ))
        };
        let ok = decide(request(), answer(204), &BACKOFF, &mut rng);
        assert_eq!(ok.transition, Transition::Delivered);
        assert_eq!(ok.attempt.as_ref().unwrap().status, Some(204));
        // Retry-After asks for 1 s; the backoff caps every wait at 100 ms.
        let retry = decide(request(), answer(503), &BACKOFF, &mut rng);
        assert_eq!(
            retry.transition,
            Transition::Retry {
                after: Duration::from_millis(100)
            }
        );
        let gone = decide(request(), answer(410), &BACKOFF, &mut rng);
        assert!(gone.disables_target());
        let refused = Sent {
            duration_ms: 1,
            result: Err(SendError::Connect("refused".into())),
        };
        let retried = decide(request(), refused, &BACKOFF, &mut rng);
        assert!(matches!(retried.transition, Transition::Retry { .. }));
        assert_eq!(retried.attempt.unwrap().status, None);
    }
}
