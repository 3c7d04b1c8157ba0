//! Archives and the events they hold (migration 0012). Ingest adds members in the statement that
//! stores the events ([`super::events::insert`]); retention removes members past their archive's
//! retention ([`super::retention::prune`]).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub use super::rules::Put;
use super::rules::touch_bus;
use crate::domain::archive::Archive;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchiveRow {
    pub id: Uuid,
    pub bus: String,
    pub name: String,
    pub description: String,
    pub event_pattern: Option<String>,
    pub retention_days: i32,
    /// Events it holds now.
    pub event_count: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const SELECT: &str = "SELECT a.id, a.bus, a.name, a.description, a.event_pattern, a.retention_days, \
     (SELECT count(*) FROM archive_events m WHERE m.archive_id = a.id) AS event_count, \
     a.created_at, a.updated_at FROM archives a";

/// Creates or replaces an archive; every process's snapshot follows (the bus's rules version
/// moves on). Run it in a transaction. A new pattern applies to events stored from then on.
pub async fn put(
    conn: &mut PgConnection,
    bus: &str,
    name: &str,
    archive: &Archive,
) -> Result<Put, sqlx::Error> {
    if !touch_bus(conn, bus).await? {
        return Ok(Put::BusNotFound);
    }
    let created: bool = sqlx::query_scalar(
        "INSERT INTO archives (id, bus, name, description, event_pattern, retention_days)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (bus, name) DO UPDATE SET description = EXCLUDED.description,
             event_pattern = EXCLUDED.event_pattern, retention_days = EXCLUDED.retention_days,
             updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(Uuid::now_v7())
    .bind(bus)
    .bind(name)
    .bind(&archive.description)
    .bind(archive.event_pattern.as_deref())
    .bind(archive.retention_days as i32)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if created { Put::Created } else { Put::Replaced })
}

pub async fn get(
    conn: &mut PgConnection,
    bus: &str,
    name: &str,
) -> Result<Option<ArchiveRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE a.bus = $1 AND a.name = $2"
    )))
    .bind(bus)
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// The archives named `name` on any bus (EventBridge's API names archives per account), or
/// with `prefix` every archive whose name starts with it, in name order.
pub async fn by_name(
    conn: &mut PgConnection,
    name: &str,
    prefix: bool,
) -> Result<Vec<ArchiveRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE CASE WHEN $2 THEN starts_with(a.name, $1) ELSE a.name = $1 END
         ORDER BY a.name COLLATE \"C\", a.bus"
    )))
    .bind(name)
    .bind(prefix)
    .fetch_all(conn)
    .await
}

/// The archives of a bus in name order.
pub async fn list(conn: &mut PgConnection, bus: &str) -> Result<Vec<ArchiveRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE a.bus = $1 ORDER BY a.name COLLATE \"C\""
    )))
    .bind(bus)
    .fetch_all(conn)
    .await
}

/// Deletes an archive and its members (general retention may then take their events), failing
/// its replays that are still working; `false` if there was no such archive. Run it in a
/// transaction.
pub async fn delete(conn: &mut PgConnection, bus: &str, name: &str) -> Result<bool, sqlx::Error> {
    let id: Option<Uuid> =
        sqlx::query_scalar("DELETE FROM archives WHERE bus = $1 AND name = $2 RETURNING id")
            .bind(bus)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(id) = id else {
        return Ok(false);
    };
    sqlx::query("DELETE FROM archive_events WHERE archive_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    // Replays of it that are still working cannot go on.
    sqlx::query(
        "UPDATE replays SET archive_id = NULL,
             state = CASE WHEN state IN ('starting', 'running') THEN 'failed' ELSE state END,
             reason = CASE WHEN state IN ('starting', 'running') THEN 'its archive was deleted' ELSE reason END,
             finished_at = COALESCE(finished_at, now()), lease_owner = NULL, lease_expires_at = NULL
         WHERE archive_id = $1",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    touch_bus(conn, bus).await?;
    Ok(true)
}

/// What the matcher needs of an archive.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MatchableArchive {
    pub id: Uuid,
    pub name: String,
    pub event_pattern: Option<String>,
}
