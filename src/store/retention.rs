//! Removing old history: events past retention, with their deliveries and attempts, when nothing
//! of them is owed or waits for an operator; idempotency keys past their bus's window.

use std::time::Duration;

use sqlx::PgPool;

/// What one batch removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Pruned {
    pub events: i64,
    pub deliveries: i64,
    pub attempts: i64,
    /// Idempotency keys past their bus's window (or of a bus that is gone).
    pub keys: i64,
    /// Archive members past their archive's retention.
    pub archived: i64,
}

/// Removes up to `limit` of the oldest events received more than `retention` ago whose
/// deliveries are all delivered or discarded (or that had none), with those deliveries and their
/// attempts, in one statement. An event with a delivery still pending, in flight, held or dead is
/// kept whole: a dead letter shows its event and every attempt until an operator ends it. An
/// event an archive holds is kept too; archive members past their archive's retention go first,
/// so their events can go in a later batch.
///
/// One process prunes at a time (a transaction-scoped advisory lock); `None` when another held it.
pub async fn prune(
    pool: &PgPool,
    retention: Duration,
    limit: i64,
) -> Result<Option<Pruned>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !super::locks::try_hold(&mut tx, super::locks::Lock::Prune).await? {
        return Ok(None);
    }
    let pruned: Pruned = sqlx::query_as(
        "WITH doomed AS (
             SELECT e.id, e.delivery_ids FROM events e
             WHERE e.received_at < now() - make_interval(secs => $1)
               AND NOT EXISTS (
                   -- Through the event's list of ids: a primary-key lookup each. A delivery
                   -- without a row was handed over and has no outcome yet (migration 0028).
                   SELECT 1 FROM unnest(e.delivery_ids) AS mine (id)
                   LEFT JOIN deliveries d USING (id)
                   WHERE d.id IS NULL OR d.state NOT IN ('delivered', 'discarded'))
               AND NOT EXISTS (SELECT 1 FROM archive_events a WHERE a.event_id = e.id)
             ORDER BY e.received_at
             LIMIT $2
         ), doomed_deliveries AS (
             SELECT unnest(delivery_ids) AS id FROM doomed
         ), gone_attempts AS (
             DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM doomed_deliveries)
             RETURNING 1
         ), gone_deliveries AS (
             DELETE FROM deliveries WHERE id IN (SELECT id FROM doomed_deliveries)
             RETURNING 1
         ), gone_events AS (
             DELETE FROM events WHERE id IN (SELECT id FROM doomed)
             RETURNING 1
         ), gone_keys AS (
             DELETE FROM idempotency_keys WHERE (bus, key) IN (
                 SELECT k.bus, k.key FROM idempotency_keys k LEFT JOIN buses b ON b.name = k.bus
                 WHERE b.name IS NULL
                    OR k.created_at < now() - make_interval(secs => b.dedup_window_seconds)
                 ORDER BY k.created_at
                 LIMIT $2)
             RETURNING 1
         ), gone_members AS (
             DELETE FROM archive_events m USING (
                 SELECT m.archive_id, m.received_at, m.event_id
                 FROM archives a
                 CROSS JOIN LATERAL (
                     SELECT x.archive_id, x.received_at, x.event_id FROM archive_events x
                     WHERE x.archive_id = a.id
                       AND x.received_at < now() - make_interval(days => a.retention_days)
                     ORDER BY x.received_at
                     LIMIT $2) AS m
                 WHERE a.retention_days > 0
                 LIMIT $2) AS old
             WHERE (m.archive_id, m.received_at, m.event_id) = (old.archive_id, old.received_at, old.event_id)
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM gone_events) AS events,
                (SELECT count(*) FROM gone_deliveries) AS deliveries,
                (SELECT count(*) FROM gone_attempts) AS attempts,
                (SELECT count(*) FROM gone_keys) AS keys,
                (SELECT count(*) FROM gone_members) AS archived",
    )
    .bind(retention.as_secs_f64())
    .bind(limit)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(pruned))
}
