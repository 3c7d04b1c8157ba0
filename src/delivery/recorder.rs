//! The recorder: attempts hand their outcomes to one task per process, which writes whatever is
//! waiting at once (up to [`RECORD_BATCH`]; a small batch gathers for [`GATHER`]; one statement,
//! or one transaction, `store::deliveries::finish_many`), each transition guarded by the lease,
//! then disables targets that answered 410, counts and logs. A write that keeps failing is left
//! to the leases (a claim's, or a handed-over delivery's own, `super::handover`): the deliveries
//! are sent again (at-least-once, same `webhook-id`).

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::Engine;
use super::outcome::{Outcome, Transition};
use crate::domain::TargetRef;
use crate::metrics::{Delivered, DeliveryRecord, SentTry, TargetLabels};
use crate::store::deliveries;
use crate::telemetry::error_chain;

/// At most this many outcomes per write.
const RECORD_BATCH: usize = 256;

/// A batch smaller than this waits up to [`GATHER`] for more outcomes before it is written.
const SMALL_BATCH: usize = RECORD_BATCH / 4;

/// How long a small batch gathers. Each write is a statement and its commit, which cost
/// Postgres about as much as a few dozen outcomes (BENCHMARKS.md, "Fifth session"): at a few
/// thousand deliveries a second the batches were a handful each. The delivery has happened
/// already; only its record waits, under its lease (a crash meanwhile sends it again, as any
/// crash before the record does). At full load the batches are large and never wait.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// A finished attempt on its way to the recorder.
pub(super) struct Finished {
    pub outcome: Outcome,
    pub note: Note,
}

/// What the recorder does besides writing the outcome.
pub(super) struct Note {
    /// The target answered 410 Gone: disable it.
    pub disable_target: bool,
    pub target_ref: TargetRef,
    /// For the metrics and the log line.
    pub labels: TargetLabels,
    /// Which try this was (1-based).
    pub attempt: i32,
    /// Whether a request went out (else the budget, the input or the target stopped it).
    pub sent: bool,
    /// When the event was acknowledged.
    pub received_at: OffsetDateTime,
}

impl Engine {
    /// Writes batches of outcomes until every sender is gone.
    pub(super) async fn record(self: Arc<Self>, mut finished: mpsc::Receiver<Finished>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            if batch.len() < SMALL_BATCH {
                let until = tokio::time::Instant::now() + GATHER;
                while batch.len() < RECORD_BATCH {
                    // `recv_many` is cancel safe: a timeout loses nothing.
                    let more = RECORD_BATCH - batch.len();
                    match tokio::time::timeout_at(until, finished.recv_many(&mut batch, more)).await
                    {
                        Ok(n) if n > 0 => {}
                        // Closed (shutdown: write what there is), or the time is up.
                        _ => break,
                    }
                }
            }
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    async fn write(&self, batch: Vec<Finished>) {
        let (outcomes, notes): (Vec<Outcome>, Vec<Note>) =
            batch.into_iter().map(|f| (f.outcome, f.note)).unzip();
        // The tries happened: recording them is worth a few retries before the leases decide.
        let recorded = super::with_tries("recording outcomes", || {
            deliveries::finish_many(&self.pool, self.owner, &outcomes)
        })
        .await;
        let Ok(applied) = recorded else {
            tracing::error!(
                outcomes = outcomes.len(),
                "recording outcomes failed; their leases will expire and they will be retried"
            );
            return;
        };
        // Handed over without rows: each has its row now, this one or a rescue's.
        self.handover
            .recorded(outcomes.iter().filter(|o| o.handed.is_some()).map(|o| o.id));
        for (outcome, note) in outcomes.iter().zip(notes) {
            let Note {
                disable_target,
                target_ref,
                labels,
                attempt,
                sent,
                received_at,
            } = note;
            let (rule, target) = (&labels.rule, &labels.target);
            if !applied.contains(&outcome.id) {
                self.metrics.leases_lost.inc();
                tracing::warn!(delivery = %outcome.id, rule, target, "the lease was lost before the outcome was recorded; another worker owns the delivery now");
                continue;
            }
            if disable_target
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
            self.metrics.delivery(DeliveryRecord {
                labels: &labels,
                delivered: match &outcome.transition {
                    Transition::Delivered => Delivered::Accepted,
                    Transition::Retry { .. } => Delivered::Retrying,
                    // Tried now or on an earlier claim: the target was invoked.
                    Transition::Dead(_) if sent || attempt > 1 => Delivered::FailedFinally,
                    Transition::Dead(_) => Delivered::NeverInvoked,
                    Transition::Hold => Delivered::Held,
                    Transition::Defer { .. } => Delivered::RateLimited,
                },
                sent: outcome.attempt.as_ref().filter(|_| sent).map(|a| SentTry {
                    attempt,
                    started_at: a.started_at,
                    duration_ms: a.duration_ms,
                }),
                received_at,
            });
            match &outcome.transition {
                Transition::Delivered => {
                    tracing::debug!(delivery = %outcome.id, rule, target, status, "delivered")
                }
                Transition::Retry { after } => {
                    tracing::info!(delivery = %outcome.id, rule, target, status, after_ms = after.as_millis() as u64, "attempt failed; retry scheduled")
                }
                Transition::Dead(reason) => {
                    tracing::warn!(delivery = %outcome.id, rule, target, status, reason = reason.as_str(), "dead letter")
                }
                Transition::Hold => {
                    tracing::info!(delivery = %outcome.id, rule, target, "target disabled; delivery held")
                }
                Transition::Defer { after } => {
                    tracing::debug!(delivery = %outcome.id, rule, target, after_ms = after.as_millis() as u64, "rate limit spent; delivery put back")
                }
            }
        }
    }
}
