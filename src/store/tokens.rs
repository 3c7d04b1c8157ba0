//! API tokens: stored as SHA-256 digests only, with a name, a scope and optional bus limits.
//! Revoked tokens stay (listed, refused).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub scope: String,
    pub buses: Option<Vec<String>>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    scope: &str,
    buses: Option<&[&str]>,
    sha256: &[u8; 32],
) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO api_tokens (id, name, scope, buses, token_sha256) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id, name, scope, buses, created_at, revoked_at",
    )
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(scope)
    .bind(buses)
    .bind(&sha256[..])
    .fetch_one(conn)
    .await
}

/// The token with this digest, unless it is revoked.
pub async fn find_live(
    conn: &mut PgConnection,
    sha256: &[u8; 32],
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, scope, buses, created_at, revoked_at FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
    )
    .bind(&sha256[..])
    .fetch_optional(conn)
    .await
}

/// Every token, oldest first.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, scope, buses, created_at, revoked_at FROM api_tokens ORDER BY id",
    )
    .fetch_all(conn)
    .await
}

/// Revokes a token (once: revoking again keeps the first time) and ends the UI sessions it
/// opened, in one statement. `None`: no such token.
pub async fn revoke(conn: &mut PgConnection, id: Uuid) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH revoked AS ( \
             UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 \
             RETURNING id, name, scope, buses, created_at, revoked_at, token_sha256 \
         ), ended AS ( \
             DELETE FROM ui_sessions WHERE token_sha256 IN (SELECT token_sha256 FROM revoked) \
         ) \
         SELECT id, name, scope, buses, created_at, revoked_at FROM revoked",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(conn)
        .await
}
