//! Idempotency keys: per bus, the event each producer key created, for the bus's window.

use sqlx::PgConnection;

use crate::domain::EventId;

/// Takes each key for its event, unless another event holds it within the bus's
/// de-duplication window (0: no window, every key is taken over). Returns the keys taken. In
/// the caller's transaction, with the events' insert: a key never names an event that was not
/// stored. A concurrent request holding the same key makes this wait for its outcome, so exactly
/// one of them takes the key. Keys are taken in sorted order (no deadlock between requests that
/// share several).
pub async fn claim(
    conn: &mut PgConnection,
    bus: &str,
    keys: &[&str],
    events: &[EventId],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO idempotency_keys AS k (bus, key, event_id)
         SELECT $1, u.key, u.event_id FROM UNNEST($2::text[], $3::uuid[]) AS u(key, event_id)
         ORDER BY u.key
         ON CONFLICT (bus, key) DO UPDATE SET event_id = EXCLUDED.event_id, created_at = now()
         WHERE (SELECT b.dedup_window_seconds = 0
                       OR k.created_at < now() - make_interval(secs => b.dedup_window_seconds)
                FROM buses b WHERE b.name = $1)
         RETURNING k.key",
    )
    .bind(bus)
    .bind(keys)
    .bind(events)
    .fetch_all(conn)
    .await
}

/// The events that hold these keys now.
pub async fn holders(
    conn: &mut PgConnection,
    bus: &str,
    keys: &[&str],
) -> Result<Vec<(String, EventId)>, sqlx::Error> {
    sqlx::query_as("SELECT key, event_id FROM idempotency_keys WHERE bus = $1 AND key = ANY($2)")
        .bind(bus)
        .bind(keys)
        .fetch_all(conn)
        .await
}
