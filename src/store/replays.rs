//! Replays (migration 0013): created by the API, worked by whichever process holds the lease
//! ([`crate::replay`]), cancelled by the API. The cursor moves in the transaction that stores
//! the copies it passed ([`advance`]).

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::EventId;

/// States a replay is still working in.
pub const ACTIVE: [&str; 2] = ["starting", "running"];

pub struct NewReplay<'a> {
    pub name: &'a str,
    pub archive_id: Uuid,
    pub bus: &'a str,
    pub archive: &'a str,
    pub destination_bus: &'a str,
    pub rules: Option<&'a [String]>,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub events_per_second: u32,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplayRow {
    pub id: Uuid,
    pub name: String,
    pub archive_id: Option<Uuid>,
    pub bus: String,
    pub archive: String,
    pub destination_bus: String,
    pub rules: Option<Vec<String>>,
    pub window_from: OffsetDateTime,
    pub window_to: OffsetDateTime,
    pub events_per_second: i32,
    pub state: String,
    pub total: Option<i64>,
    pub done: i64,
    pub cursor_received_at: Option<OffsetDateTime>,
    pub cursor_event_id: Option<EventId>,
    pub reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, name, archive_id, bus, archive, destination_bus, rules, window_from, \
     window_to, events_per_second, state, total, done, cursor_received_at, cursor_event_id, \
     reason, created_at, started_at, finished_at";

/// Creates a replay in state `starting`; `None` when the name is taken.
pub async fn create(
    conn: &mut PgConnection,
    new: &NewReplay<'_>,
) -> Result<Option<ReplayRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO replays (id, name, archive_id, bus, archive, destination_bus, rules,
             window_from, window_to, events_per_second, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'starting')
         ON CONFLICT (name) DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(new.name)
    .bind(new.archive_id)
    .bind(new.bus)
    .bind(new.archive)
    .bind(new.destination_bus)
    .bind(new.rules)
    .bind(new.from)
    .bind(new.to)
    .bind(new.events_per_second as i32)
    .fetch_optional(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<ReplayRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM replays WHERE name = $1"
    )))
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// Replays newest first, only those in `state` when given, after the cursor `before`.
pub async fn list(
    conn: &mut PgConnection,
    state: Option<&str>,
    before: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<ReplayRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM replays
         WHERE ($1::text IS NULL OR state = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(state)
    .bind(before.map(|(at, _)| at))
    .bind(before.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Cancels a replay that is still working; `None` when there is none of that name or it had
/// ended already (the row as it is then comes back in `Err`).
pub async fn cancel(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Result<ReplayRow, Option<ReplayRow>>, sqlx::Error> {
    let cancelled: Option<ReplayRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE replays SET state = 'cancelled', finished_at = now(), lease_owner = NULL,
             lease_expires_at = NULL
         WHERE name = $1 AND state IN ('starting', 'running')
         RETURNING {COLUMNS}"
    )))
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    match cancelled {
        Some(row) => Ok(Ok(row)),
        None => Ok(Err(get(conn, name).await?)),
    }
}

/// Takes the oldest working replay that no live process holds, leased to `owner`; it is
/// running from then on, and its total is counted the first time.
pub async fn claim(
    pool: &PgPool,
    owner: Uuid,
    lease: Duration,
) -> Result<Option<ReplayRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE replays r SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
             state = 'running', started_at = COALESCE(r.started_at, now()),
             total = COALESCE(r.total, (
                 SELECT count(*) FROM archive_events m
                 WHERE m.archive_id = r.archive_id
                   AND m.received_at >= r.window_from AND m.received_at < r.window_to))
         WHERE r.id = (
             SELECT id FROM replays
             WHERE state IN ('starting', 'running')
               AND (lease_expires_at IS NULL OR lease_expires_at < now())
             ORDER BY created_at LIMIT 1
             FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    )))
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// An archived event as a replay reads it.
#[derive(Debug, sqlx::FromRow)]
pub struct Archived {
    pub received_at: OffsetDateTime,
    pub event_id: EventId,
    pub body: String,
    pub source: String,
    pub detail_type: String,
    pub event_time: OffsetDateTime,
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// The replay's next archived events after its cursor, in their original order (received, then
/// id), up to `limit`: those received in its window and at least `settle` ago (an event stored
/// by a transaction still open when the cursor passes its time would be missed otherwise).
pub async fn next(
    pool: &PgPool,
    replay: &ReplayRow,
    after: Option<(OffsetDateTime, EventId)>,
    settle: Duration,
    limit: i64,
) -> Result<Vec<Archived>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.received_at, m.event_id, e.body, e.source, e.detail_type, e.event_time,
                e.traceparent, e.tracestate
         FROM archive_events m JOIN events e ON e.id = m.event_id
         WHERE m.archive_id = $1
           AND m.received_at >= $2
           AND m.received_at < LEAST($3, now() - make_interval(secs => $4))
           AND ($5::timestamptz IS NULL OR (m.received_at, m.event_id) > ($5, $6))
         ORDER BY m.received_at, m.event_id
         LIMIT $7",
    )
    .bind(replay.archive_id)
    .bind(replay.window_from)
    .bind(replay.window_to)
    .bind(settle.as_secs_f64())
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// In the transaction that stored the copies: moves the cursor past `last`, counts `n` more
/// done and renews the lease; `false` (roll back) when the replay is no longer this owner's
/// to work: cancelled, or its lease lost.
pub async fn advance(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Uuid,
    lease: Duration,
    last: (OffsetDateTime, EventId),
    n: i64,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE replays SET cursor_received_at = $3, cursor_event_id = $4, done = done + $5,
             lease_expires_at = now() + make_interval(secs => $6)
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(last.0)
    .bind(last.1)
    .bind(n)
    .bind(lease.as_secs_f64())
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Renews the lease while the replay waits; `false` when it is no longer this owner's.
pub async fn renew(
    pool: &PgPool,
    id: Uuid,
    owner: Uuid,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE replays SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Ends the replay as `completed` or `failed` (with the reason); `false` when it was no longer
/// this owner's.
pub async fn finish(
    pool: &PgPool,
    id: Uuid,
    owner: Uuid,
    failed: Option<&str>,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE replays SET state = CASE WHEN $3::text IS NULL THEN 'completed' ELSE 'failed' END,
             reason = $3, finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(owner)
    .bind(failed)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// At shutdown: lets another process take the replay at once.
pub async fn release(pool: &PgPool, id: Uuid, owner: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE replays SET lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether deliveries are waiting longer than `late` past their time: the workers are behind,
/// and a replay should give way to live traffic. One look down the due-deliveries index.
pub async fn workers_behind(pool: &PgPool, late: Duration) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM deliveries
                        WHERE state = 'pending'
                          AND next_attempt_at < now() - make_interval(secs => $1))",
    )
    .bind(late.as_secs_f64())
    .fetch_one(pool)
    .await
}
