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
