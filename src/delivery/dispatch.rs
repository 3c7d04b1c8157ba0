//! One attempt: check the budget, render the payload, sign, send, classify, record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Engine;

/// At most this many outcomes per write.
const RECORD_BATCH: usize = 256;
use super::client::{Outgoing, SendError};
use super::policy::{self, Budget, DeadReason, StatusClass};
use super::signing;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::store::deliveries::{self, Claimed, NewAttempt, Outcome, TargetRuntime, Transition};
use crate::telemetry::error_chain;
use crate::transform;

/// A finished attempt on its way to the recorder.
pub(super) struct Finished {
    pub outcome: Outcome,
    pub note: Note,
}

/// What the recorder needs besides the outcome: for the log line, and for a 410.
pub(super) struct Note {
    pub target_ref: Uuid,
    pub gone: bool,
    pub rule: String,
    pub target: String,
}

impl Engine {
    /// Makes the attempt and hands its outcome to the recorder (which writes outcomes in batches).
    #[tracing::instrument(skip_all, fields(delivery = %delivery.id, event = %delivery.event_id, rule = delivery.rule_name, target = delivery.target_id, attempt = delivery.attempts))]
    pub(super) async fn attempt(
        &self,
        delivery: Claimed,
        target: Option<Arc<TargetRuntime>>,
        recorder: mpsc::Sender<Finished>,
    ) {
        let (transition, payload, attempt, gone) = match target {
            None => (dead(DeadReason::TargetDeleted), None, None, false),
            Some(target) if target.disabled => (Transition::Hold, None, None, false),
            Some(target) => self.try_target(&delivery, &target).await,
        };
        let finished = Finished {
            outcome: Outcome {
                id: delivery.id,
                transition,
                payload,
                attempt,
            },
            note: Note {
                target_ref: delivery.target_ref,
                gone,
                rule: delivery.rule_name,
                target: delivery.target_id,
            },
        };
        if recorder.send(finished).await.is_err() {
            tracing::warn!(
                "the recorder has stopped; the lease will expire and the delivery will be retried"
            );
        }
    }

    /// Writes batches of outcomes until every sender is gone.
    pub(super) async fn record(self: Arc<Self>, mut finished: mpsc::Receiver<Finished>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    async fn write(&self, batch: Vec<Finished>) {
        let (outcomes, notes): (Vec<Outcome>, Vec<Note>) =
            batch.into_iter().map(|f| (f.outcome, f.note)).unzip();
        // The tries happened: recording them is worth a few retries before the leases decide.
        let mut applied = None;
        for wait_ms in [0, 100, 400, 1600] {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            match deliveries::finish_many(&self.pool, self.owner, &outcomes).await {
                Ok(ids) => {
                    applied = Some(ids);
                    break;
                }
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), outcomes = outcomes.len(), "recording outcomes failed; trying again")
                }
            }
        }
        let Some(applied) = applied else {
            tracing::error!(
                outcomes = outcomes.len(),
                "recording outcomes failed; their leases will expire and they will be retried"
            );
            return;
        };
        for (outcome, note) in outcomes.iter().zip(notes) {
            let Note {
                target_ref,
                gone,
                rule,
                target,
            } = note;
            if !applied.contains(&outcome.id) {
                Metrics::add(&self.metrics.leases_lost, 1);
                tracing::warn!(delivery = %outcome.id, rule, target, "the lease was lost before the outcome was recorded; another worker owns the delivery now");
                continue;
            }
            if gone
                && let Err(error) = deliveries::disable_target(
                    &self.pool,
                    target_ref,
                    "the target answered 410 Gone",
                )
                .await
            {
                tracing::error!(error = %error_chain(&error), rule, target, "disabling the target failed");
            }
            let status = outcome.attempt.as_ref().and_then(|a| a.status);
            Metrics::add(
                match &outcome.transition {
                    Transition::Delivered => &self.metrics.delivered,
                    Transition::Retry { .. } => &self.metrics.retried,
                    Transition::Dead { .. } => &self.metrics.dead_lettered,
                    Transition::Hold => &self.metrics.held,
                },
                1,
            );
            match &outcome.transition {
                Transition::Delivered => {
                    tracing::debug!(delivery = %outcome.id, rule, target, status, "delivered")
                }
                Transition::Retry { after } => {
                    tracing::info!(delivery = %outcome.id, rule, target, status, after_ms = after.as_millis() as u64, "attempt failed; retry scheduled")
                }
                Transition::Dead { reason } => {
                    tracing::warn!(delivery = %outcome.id, rule, target, status, reason, "dead letter")
                }
                Transition::Hold => {
                    tracing::info!(delivery = %outcome.id, rule, target, "target disabled; delivery held")
                }
            }
        }
    }

    async fn try_target(
        &self,
        delivery: &Claimed,
        target: &TargetRuntime,
    ) -> (Transition, Option<String>, Option<NewAttempt>, bool) {
        let attempt_no = delivery.attempts.max(1) as u32;
        let budget = Budget {
            maximum_retry_attempts: target.maximum_retry_attempts,
            maximum_event_age: target.maximum_event_age,
        };
        let age: Duration = (OffsetDateTime::now_utc() - delivery.budget_started_at)
            .try_into()
            .unwrap_or(Duration::ZERO);
        // A try past the budget (after a rescue) or past the age is not made.
        if attempt_no > budget.maximum_retry_attempts + 1 {
            return (dead(DeadReason::RetriesExhausted), None, None, false);
        }
        if age > budget.maximum_event_age {
            return (dead(DeadReason::MaxAgeExceeded), None, None, false);
        }
        let started_at = OffsetDateTime::now_utc();
        let ingestion_time = delivery.received_at.format(&Rfc3339).unwrap_or_default();
        let context = transform::Context {
            rule_name: &delivery.rule_name,
            ingestion_time: &ingestion_time,
        };
        let payload = match transform::render(&target.input, &delivery.body, context) {
            Ok(payload) => payload,
            Err(error) => {
                let attempt = failed_attempt(
                    started_at,
                    0,
                    format!("transforming the input failed: {error}"),
                );
                return (
                    dead(DeadReason::TransformFailed),
                    None,
                    Some(attempt),
                    false,
                );
            }
        };
        let id = delivery.id.to_string();
        let timestamp = started_at.unix_timestamp();
        let secrets: Vec<&str> = target.secrets.iter().map(String::as_str).collect();
        let signature =
            match signing::signature_header(&secrets, &id, timestamp, payload.as_bytes()) {
                Ok(signature) => signature,
                Err(error) => {
                    let attempt = failed_attempt(started_at, 0, error.to_string());
                    return (
                        dead(DeadReason::InvalidRequest),
                        Some(payload),
                        Some(attempt),
                        false,
                    );
                }
            };
        let mut headers: Vec<(String, String)> = target
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        headers.push(("content-type".into(), "application/json".into()));
        headers.push((signing::WEBHOOK_ID.into(), id));
        headers.push((signing::WEBHOOK_TIMESTAMP.into(), timestamp.to_string()));
        headers.push((signing::WEBHOOK_SIGNATURE.into(), signature));

        let limit = self.limit_for(target.id, target.max_concurrency);
        let _permit = limit.acquire_owned().await;
        let clock = Instant::now();
        let sent = self
            .sender
            .send(Outgoing {
                method: &target.method,
                url: &target.url,
                headers,
                body: payload.clone(),
                timeout: target.timeout,
            })
            .await;
        let duration_ms = clock.elapsed().as_millis().min(i32::MAX as u128) as i32;
        let retry = |retry_after: Option<Duration>| {
            let delay = self
                .config
                .backoff
                .delay(attempt_no, retry_after, &mut rand::rng());
            match policy::after_failure(budget, attempt_no, age, delay) {
                Ok(after) => Transition::Retry { after },
                Err(reason) => dead(reason),
            }
        };
        match sent {
            Ok(answer) => {
                let attempt = NewAttempt {
                    started_at,
                    duration_ms,
                    status: Some(i32::from(answer.status)),
                    response_headers: Some(serde_json::Value::Object(
                        answer
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                            .collect(),
                    )),
                    response_body: Some(answer.body.clone()),
                    error: None,
                };
                let (transition, gone) = match policy::classify_status(answer.status) {
                    StatusClass::Delivered => (Transition::Delivered, false),
                    StatusClass::Retry => (retry(answer.retry_after), false),
                    StatusClass::Gone => (dead(DeadReason::TargetGone), true),
                    StatusClass::Final => (dead(DeadReason::FinalStatus), false),
                };
                (transition, Some(payload), Some(attempt), gone)
            }
            Err(error) => {
                let transition = match &error {
                    SendError::Blocked(_) => dead(DeadReason::SsrfBlocked),
                    SendError::Request(_) => dead(DeadReason::InvalidRequest),
                    SendError::Timeout(_) | SendError::Connect(_) | SendError::Transport(_) => {
                        retry(None)
                    }
                };
                let attempt = failed_attempt(started_at, duration_ms, error.to_string());
                (transition, Some(payload), Some(attempt), false)
            }
        }
    }
}

fn dead(reason: DeadReason) -> Transition {
    Transition::Dead {
        reason: reason.as_str(),
    }
}

fn failed_attempt(started_at: OffsetDateTime, duration_ms: i32, error: String) -> NewAttempt {
    NewAttempt {
        started_at,
        duration_ms,
        status: None,
        response_headers: None,
        response_body: None,
        error: Some(error),
    }
}
