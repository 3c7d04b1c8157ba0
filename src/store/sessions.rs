//! Admin UI sessions, each tied to the token that opened it.

use std::time::Duration;

use sqlx::PgConnection;

/// Stores a session; expired ones are swept on the way.
pub async fn create(
    conn: &mut PgConnection,
    id_sha256: &[u8; 32],
    csrf: &str,
    token_sha256: &[u8; 32],
    ttl: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ui_sessions WHERE expires_at < now()")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO ui_sessions (id_sha256, csrf, token_sha256, expires_at) \
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(&id_sha256[..])
    .bind(csrf)
    .bind(&token_sha256[..])
    .bind(ttl.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// A live session: its CSRF token and the SHA-256 of the token that opened it.
pub async fn find(
    conn: &mut PgConnection,
    id_sha256: &[u8; 32],
) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT csrf, token_sha256 FROM ui_sessions WHERE id_sha256 = $1 AND expires_at > now()",
    )
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
