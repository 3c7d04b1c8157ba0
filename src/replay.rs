//! The replay runner: one task per process takes a working replay that no live process holds
//! (a lease, as deliveries have), reads its archive's events of the window in their original
//! order, and re-ingests each: a copy with `"replay-name"`, matched against the destination's
//! current rules (all, or the replay's subset), stored with its deliveries through the same
//! statement as ingest, in one transaction with the replay's cursor. So a replay resumed after a
//! crash, by this process or another, goes on after the last copy stored and stores none twice.
//! It paces itself to the replay's `events_per_second`, and gives way to live traffic twice: its
//! deliveries are due [`DEFER`] after they are made (the claim takes the earliest due first), and
//! it pauses whenever the delivery workers fall behind (a due delivery waits longer than
//! [`BEHIND`]). So the replay goes as fast as its rate allows and the workers keep up with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::trace::{EventSpan, parse_traceparent};
use crate::domain::{EventId, ReplayName};
use crate::ruleset::Snapshots;
use crate::store::{self, StoreError, replays::ReplayRow};
use crate::telemetry::error_chain;

/// The most archived events one transaction replays.
const MAX_BATCH: i64 = 500;
/// How long after an event's time the replay reads it: ingest statements that were open then
/// have committed.
const SETTLE: Duration = Duration::from_secs(2);
/// A due delivery still waiting this long after its time means the workers are behind.
const BEHIND: Duration = Duration::from_millis(250);
/// A replayed delivery is due this long after it is made: live deliveries due meanwhile are
/// claimed first (the claim takes the earliest due).
const DEFER: Duration = Duration::from_secs(1);
/// How long a replay waits before it looks again whether the workers caught up.
const GIVE_WAY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// How long a process holds a replay without renewing; another takes it over after.
    pub lease: Duration,
    /// How often an idle process looks for replays to work.
    pub poll: Duration,
}

/// Works replays until `shutdown` turns true.
pub async fn run(
    pool: PgPool,
    snapshots: Arc<Snapshots>,
    config: ReplayConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let owner = Uuid::now_v7();
    while !*shutdown.borrow() {
        match store::replays::claim(&pool, owner, config.lease).await {
            Ok(Some(replay)) => {
                let runner = Runner {
                    pool: &pool,
                    snapshots: &snapshots,
                    config: &config,
                    owner,
                };
                tracing::info!(replay = replay.name, "replay taken");
                if let Err(error) = runner.work(&replay, &mut shutdown).await {
                    // Its lease runs out and a process takes it up again from its cursor.
                    tracing::warn!(replay = replay.name, error = %error_chain(&error), "replay interrupted");
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "looking for replays failed")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

struct Runner<'a> {
    pool: &'a PgPool,
    snapshots: &'a Snapshots,
    config: &'a ReplayConfig,
    owner: Uuid,
}

impl Runner<'_> {
    async fn work(
        &self,
        replay: &ReplayRow,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let rate = f64::from(replay.events_per_second.max(1));
        let batch = (i64::from(replay.events_per_second) / 10).clamp(1, MAX_BATCH);
        let mut cursor = replay.cursor_received_at.zip(replay.cursor_event_id);
        let (mut started, mut sent) = (Instant::now(), 0u64);
        loop {
            if *shutdown.borrow() {
                store::replays::release(self.pool, replay.id, self.owner).await?;
                return Ok(());
            }
            if store::replays::workers_behind(self.pool, BEHIND).await? {
                if !self.hold(replay, GIVE_WAY, shutdown).await? {
                    return Ok(());
                }
                // The pace counts from when the workers caught up: no burst to make up.
                (started, sent) = (Instant::now(), 0);
                continue;
            }
            if replay.archive_id.is_none() {
                return self.fail(replay, "its archive was deleted").await;
            }
            let Some(destination) = self.snapshots.get(&replay.destination_bus).await? else {
                return self.fail(replay, "its destination bus was deleted").await;
            };
            let archived = store::replays::next(self.pool, replay, cursor, SETTLE, batch).await?;
            let Some(last) = archived.last().map(|a| (a.received_at, a.event_id)) else {
                if OffsetDateTime::now_utc() >= replay.window_to + SETTLE {
                    store::replays::finish(self.pool, replay.id, self.owner, None).await?;
                    tracing::info!(replay = replay.name, "replay completed");
                    return Ok(());
                }
                // The window's end is still to come: wait for it, holding the replay.
                if !self
                    .hold(replay, Duration::from_millis(500), shutdown)
                    .await?
                {
                    return Ok(());
                }
                continue;
            };
            let n = archived.len();
            let (events, deliveries) = copies(replay, &destination, archived);
            let mut tx = self.pool.begin().await?;
            if store::events::insert(&mut tx, &events, &deliveries, None, DEFER)
                .await?
                .due
            {
                // Inside the transaction: a replay's batch commits with its cursor, a few a
                // second at most.
                store::notify::notify(&mut tx, store::notify::DELIVERIES_DUE, "").await?;
            }
            if !store::replays::advance(
                &mut tx,
                replay.id,
                self.owner,
                self.config.lease,
                last,
                n as i64,
            )
            .await?
            {
                // Cancelled, or taken over: nothing of this batch is stored.
                tx.rollback().await?;
                tracing::info!(
                    replay = replay.name,
                    "replay stopped: cancelled or taken over"
                );
                return Ok(());
            }
            tx.commit().await?;
            cursor = Some(last);
            sent += n as u64;
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Waits `wait` (or until shutdown) keeping the lease; `false` when the replay is no longer
    /// this process's to work (cancelled, or taken over).
    async fn hold(
        &self,
        replay: &ReplayRow,
        wait: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, StoreError> {
        if !store::replays::renew(self.pool, replay.id, self.owner, self.config.lease).await? {
            return Ok(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
        Ok(true)
    }

    async fn fail(&self, replay: &ReplayRow, reason: &str) -> Result<(), StoreError> {
        store::replays::finish(self.pool, replay.id, self.owner, Some(reason)).await?;
        tracing::warn!(replay = replay.name, reason, "replay failed");
        Ok(())
    }
}

/// Cancels a replay that is still working and records who did (one transaction); the API and
/// the UI cancel through here. `Err` holds the replay as it is when it had ended already, or
/// nothing when there is none of that name.
pub async fn cancel(
    pool: &PgPool,
    actor: &crate::audit::Actor,
    name: &str,
) -> Result<Result<ReplayRow, Option<ReplayRow>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let cancelled = store::replays::cancel(&mut tx, name).await?;
    if let Ok(row) = &cancelled {
        crate::audit::record(
            &mut tx,
            actor,
            crate::audit::Action::ReplayCancel,
            &crate::audit::replay_resource(name),
            serde_json::json!({ "done": row.done }),
        )
        .await?;
    }
    tx.commit().await?;
    if cancelled.is_ok() {
        tracing::info!(replay = name, "replay cancelled");
    }
    Ok(cancelled)
}

/// The copies of archived events for the destination, with their deliveries.
fn copies(
    replay: &ReplayRow,
    destination: &crate::ruleset::BusRules,
    archived: Vec<store::replays::Archived>,
) -> (
    Vec<store::events::NewEvent>,
    Vec<store::events::NewDelivery>,
) {
    let mut matcher = destination.rules.matcher();
    let admit = |rule: &str| {
        replay
            .rules
            .as_ref()
            .is_none_or(|rules| rules.iter().any(|r| r == rule))
    };
    let mut events = Vec::with_capacity(archived.len());
    let mut deliveries = Vec::new();
    for original in archived {
        let body = with_replay_name(&original.body, &replay.name);
        let id = EventId::new();
        // Stored bodies were read as JSON when they came in (a replay name is a plain name).
        let routed = match matcher.matches_validated(&body) {
            Ok(matched) => crate::ingest::route(
                destination,
                matched,
                &replay.destination_bus,
                id,
                &body,
                admit,
                &mut deliveries,
            ),
            // It was matched when it was first stored; a body that no longer reads is copied
            // without deliveries, and the trace shows that nothing matched.
            Err(error) => {
                tracing::warn!(replay = replay.name, event = %original.event_id, %error, "archived event does not read; copied without deliveries");
                crate::ingest::route(
                    destination,
                    &[],
                    &replay.destination_bus,
                    id,
                    &body,
                    admit,
                    &mut deliveries,
                )
            }
        };
        // The copy's span is a child of the original's: the trace shows the replay.
        let parent = original.traceparent.as_deref().and_then(parse_traceparent);
        events.push(store::events::NewEvent {
            id,
            bus: replay.destination_bus.clone(),
            matched_rules: routed.matched_rules,
            delivery_ids: routed.delivery_ids,
            span: EventSpan::child_of(id, parent.as_ref(), original.tracestate.as_deref()),
            archives: Vec::new(),
            // A replay is not validated again: the original was, when it was acknowledged.
            schema_violations: None,
            body,
            source: original.source,
            detail_type: original.detail_type,
            time: original.event_time,
        });
    }
    (events, deliveries)
}

/// The envelope with `"replay-name"` as its last member, as EventBridge marks replayed events.
/// Stored envelopes are compact JSON objects (`Envelope::to_event_json`), and replay names are
/// letters, digits, `.`, `-` and `_`: nothing to escape.
pub fn with_replay_name(body: &str, name: &str) -> String {
    let name = ReplayName::parse(name).map_or_else(|_| "replay".to_owned(), |n| n.to_string());
    let trimmed = body.trim_end();
    match trimmed.strip_suffix('}') {
        Some(open) if open.trim_end().ends_with('{') => {
            format!("{open}\"replay-name\":\"{name}\"}}")
        }
        Some(open) => format!("{open},\"replay-name\":\"{name}\"}}"),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_name_is_the_last_member_and_the_rest_is_kept_byte_for_byte() {
        assert_eq!(
            with_replay_name(r#"{"id":"1","detail":{"n":1.50}}"#, "r-1"),
            r#"{"id":"1","detail":{"n":1.50},"replay-name":"r-1"}"#
        );
        assert_eq!(with_replay_name("{}", "r"), r#"{"replay-name":"r"}"#);
        let copy = with_replay_name(r#"{"a":[1,{"b":"}"}]}"#, "x.y_z");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&copy).unwrap()["replay-name"],
            "x.y_z"
        );
    }
}
