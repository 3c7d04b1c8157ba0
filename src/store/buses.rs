//! Buses.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::notify;
use crate::schema::{Compatibility, Unregistered, Validation};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BusRow {
    pub name: String,
    pub description: String,
    /// How long an idempotency key names its event (0: no de-duplication).
    pub dedup_window_seconds: i32,
    pub rules_version: i64,
    /// What ingest does with schemas: `off`, `warn` or `enforce`.
    pub schema_validation: String,
    /// What ingest does with an event type without a schema: `accept` or `refuse`.
    pub unregistered_types: String,
    /// The compatibility mode of event types that do not set their own.
    pub schema_compatibility: String,
    /// Whether new shapes of its event types become drafts.
    pub schema_discovery: bool,
    pub rule_count: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const SELECT: &str = "SELECT b.name, b.description, b.dedup_window_seconds, b.rules_version, \
     b.schema_validation, b.unregistered_types, b.schema_compatibility, b.schema_discovery, \
     b.created_at, b.updated_at, \
     (SELECT count(*) FROM rules r WHERE r.bus = b.name) AS rule_count FROM buses b";

/// What a bus is set to.
#[derive(Debug, Clone)]
pub struct BusSettings {
    pub description: String,
    pub dedup_window_seconds: i32,
    pub schema_validation: Validation,
    pub unregistered_types: Unregistered,
    pub schema_compatibility: Compatibility,
    pub schema_discovery: bool,
}

/// Creates or updates a bus; `true` when it was created. Either way its snapshot is rebuilt in
/// every process (its schema settings are part of it).
pub async fn upsert(
    conn: &mut PgConnection,
    name: &str,
    settings: &BusSettings,
) -> Result<bool, sqlx::Error> {
    let created: bool = sqlx::query_scalar(
        "INSERT INTO buses (name, description, dedup_window_seconds, schema_validation,
                            unregistered_types, schema_compatibility, schema_discovery)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,
             dedup_window_seconds = EXCLUDED.dedup_window_seconds,
             schema_validation = EXCLUDED.schema_validation,
             unregistered_types = EXCLUDED.unregistered_types,
             schema_compatibility = EXCLUDED.schema_compatibility,
             schema_discovery = EXCLUDED.schema_discovery,
             rules_version = buses.rules_version + 1, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(name)
    .bind(&settings.description)
    .bind(settings.dedup_window_seconds)
    .bind(settings.schema_validation.as_str())
    .bind(settings.unregistered_types.as_str())
    .bind(settings.schema_compatibility.as_str())
    .bind(settings.schema_discovery)
    .fetch_one(&mut *conn)
    .await?;
    notify::notify(conn, notify::RULES_CHANGED, name).await?;
    Ok(created)
}

/// Creates the bus if it does not exist (for `rules apply`).
pub async fn ensure(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    create(conn, name, "").await
}

/// Creates the bus with default settings and `description` unless it exists; whether it did.
pub async fn create(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
) -> Result<bool, sqlx::Error> {
    let created = sqlx::query(
        "INSERT INTO buses (name, description) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(description)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if created {
        notify::notify(conn, notify::RULES_CHANGED, name).await?;
    }
    Ok(created)
}

pub async fn get(conn: &mut PgConnection, name: &str) -> Result<Option<BusRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE b.name = $1")))
        .bind(name)
        .fetch_optional(conn)
        .await
}

pub async fn list(conn: &mut PgConnection) -> Result<Vec<BusRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY b.name")))
        .fetch_all(conn)
        .await
}

/// Every bus with the version of its rules: what a process compares with its snapshot.
pub async fn versions(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT name, rules_version FROM buses")
        .fetch_all(conn)
        .await
}

pub enum Deleted {
    Deleted,
    NotFound,
    /// The bus still has this many rules and `force` was not given.
    HasRules(i64),
}

/// Deletes a bus (and with `force`, its rules). Run it in a transaction.
pub async fn delete(
    conn: &mut PgConnection,
    name: &str,
    force: bool,
) -> Result<Deleted, sqlx::Error> {
    let locked: Option<String> =
        sqlx::query_scalar("SELECT name FROM buses WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    if locked.is_none() {
        return Ok(Deleted::NotFound);
    }
    let rules: i64 = sqlx::query_scalar("SELECT count(*) FROM rules WHERE bus = $1")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    if rules > 0 && !force {
        return Ok(Deleted::HasRules(rules));
    }
    // Its archives go with it (a cascade), and what they held.
    sqlx::query(
        "DELETE FROM archive_events
         WHERE archive_id IN (SELECT id FROM archives WHERE bus = $1)",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM buses WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    notify::notify(conn, notify::RULES_CHANGED, name).await?;
    Ok(Deleted::Deleted)
}
