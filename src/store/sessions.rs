//! Admin UI sessions.

use std::time::Duration;

use sqlx::PgConnection;

/// Stores a session; expired ones are swept on the way.
pub async fn create(
    conn: &mut PgConnection,
    id_sha256: &[u8; 32],
    csrf: &str,
    ttl: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at < now()")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO ui_sessions (id_sha256, csrf, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(&id_sha256[..])
    .bind(csrf)
    .bind(ttl.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// The CSRF token of a live session.
pub async fn csrf(
    conn: &mut PgConnection,
    id_sha256: &[u8; 32],
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT csrf FROM ui_sessions WHERE id_sha256 = $1 AND expires_at > now()")
        .bind(&id_sha256[..])
        .fetch_optional(conn)
        .await
}

pub async fn delete(conn: &mut PgConnection, id_sha256: &[u8; 32]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ui_sessions WHERE id_sha256 = $1")
        .bind(&id_sha256[..])
        .execute(conn)
        .await?;
    Ok(())
}

/// The counts every UI page shows at a glance.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct Overview {
    pub events_last_hour: i64,
    pub deliveries_pending: i64,
    pub dead_letters: i64,
}

pub async fn overview(conn: &mut PgConnection) -> Result<Overview, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE received_at > now() - interval '1 hour') AS events_last_hour,
                (SELECT count(*) FROM deliveries WHERE state IN ('pending', 'in_flight', 'held')) AS deliveries_pending,
                (SELECT count(*) FROM deliveries WHERE state = 'dead') AS dead_letters",
    )
    .fetch_one(conn)
    .await
}
