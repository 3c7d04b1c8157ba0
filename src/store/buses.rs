//! Buses.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::notify;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BusRow {
    pub name: String,
    pub description: String,
    /// How long an idempotency key names its event (0: no de-duplication).
    pub dedup_window_seconds: i32,
    pub rules_version: i64,
    pub rule_count: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const SELECT: &str = "SELECT b.name, b.description, b.dedup_window_seconds, b.rules_version, b.created_at, b.updated_at, \
     (SELECT count(*) FROM rules r WHERE r.bus = b.name) AS rule_count FROM buses b";

/// Creates or updates a bus; `true` when it was created.
pub async fn upsert(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
    dedup_window_seconds: i32,
) -> Result<bool, sqlx::Error> {
    let created: bool = sqlx::query_scalar(
        "INSERT INTO buses (name, description, dedup_window_seconds) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,
             dedup_window_seconds = EXCLUDED.dedup_window_seconds, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(name)
    .bind(description)
    .bind(dedup_window_seconds)
    .fetch_one(&mut *conn)
    .await?;
    if created {
        notify::notify(conn, notify::RULES_CHANGED, name).await?;
    }
    Ok(created)
}

/// Creates the bus if it does not exist (for `rules apply`).
pub async fn ensure(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let created = sqlx::query("INSERT INTO buses (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(name)
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
