//! This process's hand-over lease (migration 0028, SCALING.md "Fewer rows per delivery").
//!
//! A delivery ingest hands to this process's own workers gets no row until its outcome: its
//! event lists it, under this process's lease. This keeps what the lease promises:
//!
//! - **The checkpoint**: no event received before it has a handed delivery still without its
//!   row. It is the earliest `received_at` among the deliveries handed over and not yet
//!   recorded, and no later than the database's clock at the last renewal before any ingest
//!   statement still under way was sent (that statement's `now()` comes after it). A rescue
//!   reads the events from the checkpoint on.
//! - **Renewal** every [`Handover::tick`]; a lease found gone (it expired and another process
//!   rescued it) is replaced by a new one, and what was handed over under it is forgotten (it
//!   has rows now: the outcomes of its attempts find them and are not applied, as when a claim's
//!   lease is lost).
//! - **Each delivery's own lease**: a handed delivery without its outcome a lease after its
//!   event was received gets a pending row, as an expired claim would be returned to the queue
//!   (its attempt's end is bounded by the lease; a record that failed to be written ends here).
//! - **At shutdown**, after the drain: the deliveries still without rows get pending rows,
//!   uncounted, and the lease ends. A crash leaves the lease to expire and be rescued.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::DeliveryId;
use crate::store::handover::{self, Handed};
use crate::telemetry::error_chain;

pub(super) struct Handover {
    /// The lease's life ([`super::DeliveryConfig::lease`]), and each handed delivery's.
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The lease, once registered (and until found gone).
    lease: Option<Uuid>,
    /// The database's clock at the lease's last registration or renewal.
    clock: Option<OffsetDateTime>,
    /// Ingest statements under way under the lease: `clock` when each was sent.
    under_way: BTreeMap<u64, OffsetDateTime>,
    next_ticket: u64,
    /// Handed deliveries without their row: their event's `received_at`, and what makes the row.
    outstanding: HashMap<DeliveryId, (OffsetDateTime, Handed)>,
    /// Shutting down: no more tickets.
    closing: bool,
}

/// An ingest statement's right to hand deliveries over under the lease; dropped when the
/// statement has ended.
pub struct Ticket {
    handover: Arc<Handover>,
    number: u64,
    pub lease: Uuid,
    /// The database's clock at the last renewal before the statement was sent.
    pub sent_at: OffsetDateTime,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.handover.lock().under_way.remove(&self.number);
    }
}

impl Handover {
    pub(super) fn new(ttl: Duration) -> Handover {
        Handover {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How often the lease is renewed: a quarter of its life, at most a second.
    fn tick(&self) -> Duration {
        (self.ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// A ticket for an ingest statement about to be sent, if the lease is held.
    pub(super) fn ticket(self: &Arc<Self>) -> Option<Ticket> {
        let mut state = self.lock();
        if state.closing {
            return None;
        }
        let (lease, clock) = (state.lease?, state.clock?);
        let number = state.next_ticket;
        state.next_ticket += 1;
        state.under_way.insert(number, clock);
        Some(Ticket {
            handover: self.clone(),
            number,
            lease,
            sent_at: clock,
        })
    }

    /// Deliveries handed over under `lease` by a statement whose events were received at
    /// `received_at`.
    pub(super) fn handed(
        &self,
        lease: Uuid,
        received_at: OffsetDateTime,
        handed: impl Iterator<Item = Handed>,
    ) {
        let mut state = self.lock();
        // A lease lost meanwhile was rescued with them: they have rows.
        if state.lease == Some(lease) {
            state
                .outstanding
                .extend(handed.map(|h| (h.id, (received_at, h))));
        }
    }

    /// These deliveries' outcomes were written (or found their rows made by a rescue).
    pub(super) fn recorded(&self, ids: impl Iterator<Item = DeliveryId>) {
        let mut state = self.lock();
        for id in ids {
            state.outstanding.remove(&id);
        }
    }

    /// The checkpoint and how many are outstanding.
    fn checkpoint(state: &State, clock: OffsetDateTime) -> (OffsetDateTime, usize) {
        let earliest = state
            .outstanding
            .values()
            .map(|(received_at, _)| *received_at)
            .chain(state.under_way.values().copied())
            .min()
            .map_or(clock, |earliest| earliest.min(clock));
        (earliest, state.outstanding.len())
    }

    /// Keeps the lease until `shutdown`: registers it, renews it, and makes rows for its own
    /// deliveries whose lease ran out.
    pub(super) async fn keep(self: Arc<Self>, pool: PgPool, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            self.step(&pool).await;
            tokio::select! {
                _ = tokio::time::sleep(self.tick()) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn step(&self, pool: &PgPool) {
        let (lease, clock) = {
            let state = self.lock();
            (state.lease, state.clock)
        };
        if let (Some(lease), Some(clock)) = (lease, clock) {
            self.expire(pool, clock).await;
            let (checkpoint, outstanding) = Handover::checkpoint(&self.lock(), clock);
            match handover::renew(pool, lease, self.ttl, checkpoint, outstanding).await {
                Ok(Some(clock)) => {
                    self.lock().clock = Some(clock);
                    return;
                }
                Ok(None) => {
                    tracing::warn!(
                        lease = %lease,
                        "the hand-over lease expired and was rescued; taking another"
                    );
                    let mut state = self.lock();
                    state.lease = None;
                    state.clock = None;
                    state.outstanding.clear();
                }
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "renewing the hand-over lease failed");
                    return;
                }
            }
        }
        let lease = Uuid::now_v7();
        match handover::register(pool, lease, self.ttl).await {
            Ok(clock) => {
                let mut state = self.lock();
                state.lease = Some(lease);
                state.clock = Some(clock);
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "registering the hand-over lease failed")
            }
        }
    }

    /// Rows for the handed deliveries whose own lease ran out by the database's `clock`.
    async fn expire(&self, pool: &PgPool, clock: OffsetDateTime) {
        let expired: Vec<Handed> = self
            .lock()
            .outstanding
            .values()
            .filter(|(received_at, _)| *received_at + self.ttl < clock)
            .map(|(_, handed)| handed.clone())
            .collect();
        if expired.is_empty() {
            return;
        }
        let rows: Vec<&Handed> = expired.iter().collect();
        match handover::make_pending(
            pool,
            &rows,
            true,
            Some(crate::store::deliveries::LEASE_EXPIRED),
        )
        .await
        {
            Ok(n) => {
                tracing::warn!(
                    deliveries = n,
                    "returned handed-over deliveries with expired leases to the queue"
                );
                self.recorded(expired.iter().map(|h| h.id));
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "returning expired handed-over deliveries failed")
            }
        }
    }

    /// At shutdown, after the drain: the deliveries still without rows go back to the queue,
    /// uncounted, and the lease ends. Ingest may still be finishing requests: no statement gets
    /// the lease any more, and those under way are waited for (their deliveries are released
    /// too). If that takes too long, or the writes fail, the lease expires and is rescued.
    pub(super) async fn release(&self, pool: &PgPool) -> Result<u64, sqlx::Error> {
        self.lock().closing = true;
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while !self.lock().under_way.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!("ingest statements still under way; the hand-over lease will expire");
            return Ok(0);
        }
        let (lease, left): (Option<Uuid>, Vec<Handed>) = {
            let state = self.lock();
            (
                state.lease,
                state.outstanding.values().map(|(_, h)| h.clone()).collect(),
            )
        };
        let Some(lease) = lease else { return Ok(0) };
        let rows: Vec<&Handed> = left.iter().collect();
        let released = handover::make_pending(pool, &rows, false, None).await?;
        handover::end(pool, lease).await?;
        let mut state = self.lock();
        state.lease = None;
        state.outstanding.clear();
        Ok(released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, TargetRef};

    fn handed(id: DeliveryId) -> Handed {
        Handed {
            id,
            event_id: EventId::new(),
            bus: "default".into(),
            rule_name: "r".into(),
            target_id: "t".into(),
            target_ref: TargetRef::new(),
            received_at: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn the_checkpoint_is_the_earliest_outstanding_or_statement_under_way() {
        let handover = Arc::new(Handover::new(Duration::from_secs(10)));
        let lease = Uuid::now_v7();
        let t0 = OffsetDateTime::now_utc();
        let t = |s: i64| t0 + time::Duration::seconds(s);
        {
            let mut state = handover.lock();
            state.lease = Some(lease);
            state.clock = Some(t(0));
        }
        // Nothing outstanding: the clock of the last renewal.
        assert_eq!(Handover::checkpoint(&handover.lock(), t(5)), (t(5), 0));
        // A statement under way since the renewal at t(0) holds it there.
        let ticket = handover.ticket().expect("the lease is held");
        handover.lock().clock = Some(t(5));
        assert_eq!(Handover::checkpoint(&handover.lock(), t(5)).0, t(0));
        // Its deliveries, received at t(1), hold it once the statement has ended.
        let (a, b) = (DeliveryId::new(), DeliveryId::new());
        handover.handed(lease, t(1), [handed(a)].into_iter());
        handover.handed(lease, t(3), [handed(b)].into_iter());
        drop(ticket);
        assert_eq!(Handover::checkpoint(&handover.lock(), t(5)), (t(1), 2));
        handover.recorded([a].into_iter());
        assert_eq!(Handover::checkpoint(&handover.lock(), t(5)), (t(3), 1));
        handover.recorded([b].into_iter());
        assert_eq!(Handover::checkpoint(&handover.lock(), t(5)), (t(5), 0));
        // What a lost lease handed over is not kept.
        handover.handed(
            Uuid::now_v7(),
            t(4),
            [handed(DeliveryId::new())].into_iter(),
        );
        assert_eq!(Handover::checkpoint(&handover.lock(), t(5)), (t(5), 0));
    }

    #[test]
    fn no_ticket_without_a_lease_or_once_closing() {
        let handover = Arc::new(Handover::new(Duration::from_secs(10)));
        assert!(handover.ticket().is_none());
        {
            let mut state = handover.lock();
            state.lease = Some(Uuid::now_v7());
            state.clock = Some(OffsetDateTime::now_utc());
        }
        assert!(handover.ticket().is_some());
        handover.lock().closing = true;
        assert!(handover.ticket().is_none());
    }
}
