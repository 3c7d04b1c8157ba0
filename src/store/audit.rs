//! The audit log's table: appended in the transaction of each change, read newest first.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: OffsetDateTime,
    pub actor: String,
    pub token_id: Option<Uuid>,
    pub action: String,
    pub resource: String,
    /// JSON text.
    pub detail: Option<String>,
}

/// Appends an entry; `detail` is JSON text.
pub async fn insert(
    conn: &mut PgConnection,
    actor: &str,
    token_id: Option<Uuid>,
    action: &str,
    resource: &str,
    detail: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (actor, token_id, action, resource, detail) \
         VALUES ($1, $2, $3, $4, $5::jsonb)",
    )
    .bind(actor)
    .bind(token_id)
    .bind(action)
    .bind(resource)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Which entries to read.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub token_id: Option<Uuid>,
    pub action: Option<String>,
    /// Entries whose resource starts with this (`buses/orders` finds its rules too).
    pub resource: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// Up to `limit` entries, newest first, older than entry `before` when given.
pub async fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, actor, token_id, action, resource, detail::text AS detail FROM audit_log \
         WHERE ($1::text IS NULL OR actor = $1) \
           AND ($2::uuid IS NULL OR token_id = $2) \
           AND ($3::text IS NULL OR action = $3) \
           AND ($4::text IS NULL OR starts_with(resource, $4)) \
           AND ($5::timestamptz IS NULL OR at >= $5) \
           AND ($6::timestamptz IS NULL OR at < $6) \
           AND ($7::bigint IS NULL OR id < $7) \
         ORDER BY id DESC LIMIT $8",
    )
    .bind(&filter.actor)
    .bind(filter.token_id)
    .bind(&filter.action)
    .bind(&filter.resource)
    .bind(filter.since)
    .bind(filter.until)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}
