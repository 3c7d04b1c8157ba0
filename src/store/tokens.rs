//! API tokens: stored as SHA-256 digests only.

use sqlx::PgConnection;
use uuid::Uuid;

pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    sha256: &[u8; 32],
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO api_tokens (id, name, token_sha256) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(&sha256[..])
        .execute(conn)
        .await?;
    Ok(id)
}

pub async fn exists(conn: &mut PgConnection, sha256: &[u8; 32]) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE token_sha256 = $1)")
        .bind(&sha256[..])
        .fetch_one(conn)
        .await
}

pub async fn count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(conn)
        .await
}
