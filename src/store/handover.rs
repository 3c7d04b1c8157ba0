//! Hand-over leases (migration 0028): a delivery that ingest hands to its own process's workers
//! has no row until its outcome; the event lists it under its process's lease. Here: a lease's
//! registration, renewal and end, and the rows made for handed deliveries that will not get
//! their outcome from their process (it died, or gave up on them).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::events::NewDelivery;
use super::notify;
use crate::domain::{DeliveryId, EventId, TargetRef};

/// What makes a handed delivery's row.
#[derive(Debug, Clone)]
pub struct Handed {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub bus: String,
    pub rule_name: String,
    pub target_id: String,
    pub target_ref: TargetRef,
    /// When its event was received (the database's clock): its retry budget's start.
    pub received_at: OffsetDateTime,
}

/// An event's `handed` column: `[[delivery id, rule, target id, target ref], …]`.
pub fn handed_column<'a>(handed: impl Iterator<Item = &'a NewDelivery>) -> String {
    let rows: Vec<(DeliveryId, &str, &str, TargetRef)> = handed
        .map(|d| {
            (
                d.id,
                d.rule_name.as_str(),
                d.target_id.as_str(),
                d.target_ref,
            )
        })
        .collect();
    // Serializing ids and strings cannot fail.
    serde_json::to_string(&rows).unwrap_or_default()
}

/// Registers a new lease for `ttl`; returns the database's clock.
pub async fn register(
    pool: &PgPool,
    id: Uuid,
    ttl: std::time::Duration,
) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO handover_leases (id, expires_at, checkpoint)
         VALUES ($1, now() + make_interval(secs => $2), now())
         RETURNING now()",
    )
    .bind(id)
    .bind(ttl.as_secs_f64())
    .fetch_one(pool)
    .await
}

/// Renews a lease for `ttl` with its checkpoint and count; returns the database's clock, or
/// `None` when the lease is gone (it expired and was rescued).
pub async fn renew(
    pool: &PgPool,
    id: Uuid,
    ttl: std::time::Duration,
    checkpoint: OffsetDateTime,
    outstanding: usize,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE handover_leases
         SET expires_at = now() + make_interval(secs => $2), checkpoint = $3, outstanding = $4
         WHERE id = $1
         RETURNING now()",
    )
    .bind(id)
    .bind(ttl.as_secs_f64())
    .bind(checkpoint)
    .bind(i32::try_from(outstanding).unwrap_or(i32::MAX))
    .fetch_optional(pool)
    .await
}

/// Ends a lease whose handed deliveries all have their rows.
pub async fn end(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM handover_leases WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Makes a pending row for each of these handed deliveries that has none: its process gave up
/// on it (`tried`: whether the try it was handed over for counts). A delivery that got its row
/// meanwhile keeps it. Returns how many were made.
pub async fn make_pending(
    pool: &PgPool,
    handed: &[&Handed],
    tried: bool,
    error: Option<&str>,
) -> Result<u64, sqlx::Error> {
    if handed.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let made = sqlx::query(
        "INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state,
                                 attempts, next_attempt_at, last_error, budget_started_at)
         SELECT u.id, u.event_id, u.bus, u.rule_name, u.target_id, u.target_ref, 'pending', $7,
                now(), $8, e.received_at
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[])
              AS u(id, event_id, bus, rule_name, target_id, target_ref)
         JOIN events e ON e.id = u.event_id
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(handed.iter().map(|h| h.id).collect::<Vec<_>>())
    .bind(handed.iter().map(|h| h.event_id).collect::<Vec<_>>())
    .bind(handed.iter().map(|h| h.bus.as_str()).collect::<Vec<_>>())
    .bind(
        handed
            .iter()
            .map(|h| h.rule_name.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        handed
            .iter()
            .map(|h| h.target_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(handed.iter().map(|h| h.target_ref).collect::<Vec<_>>())
    .bind(i32::from(tried))
    .bind(error)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    notify::deliveries_made_due(&mut tx, made).await?;
    tx.commit().await?;
    Ok(made)
}

/// Rescues the handed deliveries of one expired lease, if there is one: deletes it (waiting for
/// its ingest statements under way, which hold its row) and makes a pending row for each
/// delivery its events received since its checkpoint handed over that has none. The try under
/// way stays counted, as when a claim's lease expires. Returns how many rows it made, or `None`
/// when no lease had expired.
pub async fn rescue_one(pool: &PgPool) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let dead: Option<(Uuid, OffsetDateTime)> = sqlx::query_as(
        "DELETE FROM handover_leases WHERE id = (
             SELECT id FROM handover_leases WHERE expires_at < now()
             ORDER BY expires_at LIMIT 1
             FOR UPDATE SKIP LOCKED)
         RETURNING id, checkpoint",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((lease, checkpoint)) = dead else {
        return Ok(None);
    };
    // A statement of its own: its snapshot sees the ingest statements the deletion waited for.
    let made = sqlx::query(
        "INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state,
                                 attempts, next_attempt_at, last_error, budget_started_at)
         SELECT (h.value->>0)::uuid, e.id, e.bus, h.value->>1, h.value->>2,
                (h.value->>3)::uuid, 'pending', 1, now(), $3, e.received_at
         FROM events e, jsonb_array_elements(e.handed::jsonb) AS h
         WHERE e.received_at >= $2 AND e.handed_to = $1
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(lease)
    .bind(checkpoint)
    .bind(super::deliveries::LEASE_EXPIRED)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    notify::deliveries_made_due(&mut tx, made).await?;
    tx.commit().await?;
    Ok(Some(made))
}
