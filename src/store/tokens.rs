//! API tokens: stored as SHA-256 digests only, with a name, a scope and optional bus limits;
//! or AWS access key pairs, the secret sealed ([`crate::secrets`]). Revoked tokens stay (listed,
//! refused).

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
    /// For an AWS access key pair, its id.
    pub access_key_id: Option<String>,
}

const COLUMNS: &str = "id, name, scope, buses, created_at, revoked_at, access_key_id";

/// An AWS access key pair: its id and its sealed secret.
pub struct AccessKey<'a> {
    pub id: &'a str,
    pub secret_sealed: &'a [u8],
}

pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    scope: &str,
    buses: Option<&[&str]>,
    sha256: &[u8; 32],
    access_key: Option<AccessKey<'_>>,
) -> Result<TokenRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_tokens (id, name, scope, buses, token_sha256, access_key_id, secret_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(scope)
    .bind(buses)
    .bind(&sha256[..])
    .bind(access_key.as_ref().map(|k| k.id))
    .bind(access_key.as_ref().map(|k| k.secret_sealed))
    .fetch_one(conn)
    .await
}

/// The bearer token with this digest, unless it is revoked.
pub async fn find_live(
    conn: &mut PgConnection,
    sha256: &[u8; 32],
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens \
         WHERE token_sha256 = $1 AND revoked_at IS NULL AND access_key_id IS NULL"
    )))
    .bind(&sha256[..])
    .fetch_optional(conn)
    .await
}

/// The access key pair with this id, unless it is revoked, with its sealed secret.
pub async fn find_access_key(
    conn: &mut PgConnection,
    access_key_id: &str,
) -> Result<Option<(TokenRow, Vec<u8>)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Found {
        #[sqlx(flatten)]
        row: TokenRow,
        secret_sealed: Vec<u8>,
    }
    let found: Option<Found> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, secret_sealed FROM api_tokens \
         WHERE access_key_id = $1 AND revoked_at IS NULL"
    )))
    .bind(access_key_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.map(|f| (f.row, f.secret_sealed)))
}

/// Every access key's id with its sealed secret (the key rotation reseals them all).
pub async fn sealed_secrets(
    conn: &mut PgConnection,
) -> Result<Vec<(Uuid, String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, access_key_id, secret_sealed FROM api_tokens \
         WHERE access_key_id IS NOT NULL ORDER BY id FOR UPDATE",
    )
    .fetch_all(conn)
    .await
}

/// Replaces an access key's sealed secret.
pub async fn reseal(conn: &mut PgConnection, id: Uuid, sealed: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET secret_sealed = $2 WHERE id = $1")
        .bind(id)
        .bind(sealed)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every token, oldest first.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_tokens ORDER BY id"
    )))
    .fetch_all(conn)
    .await
}

/// Revokes a token (once: revoking again keeps the first time) and ends the UI sessions it
/// opened, in one statement. `None`: no such token.
pub async fn revoke(conn: &mut PgConnection, id: Uuid) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH revoked AS ( \
             UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 \
             RETURNING id, name, scope, buses, created_at, revoked_at, access_key_id, token_sha256 \
         ), ended AS ( \
             DELETE FROM ui_sessions WHERE token_sha256 IN (SELECT token_sha256 FROM revoked) \
         ) \
         SELECT id, name, scope, buses, created_at, revoked_at, access_key_id FROM revoked",
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

/// The id of the key that seals secrets, once a process has recorded it.
pub async fn secret_key_id(conn: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT key_id FROM secret_key")
        .fetch_optional(conn)
        .await
}

/// Records (or, after a rotation, replaces) the id of the key that seals secrets.
pub async fn set_secret_key_id(conn: &mut PgConnection, key_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO secret_key (key_id) VALUES ($1) \
         ON CONFLICT (only_row) DO UPDATE SET key_id = EXCLUDED.key_id, set_at = now()",
    )
    .bind(key_id)
    .execute(conn)
    .await?;
    Ok(())
}
