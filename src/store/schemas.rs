//! The schema registry: event types (bus, source, detail-type) and their immutable numbered
//! versions. Every change bumps the bus's rules version in the same transaction, so every
//! process recompiles its validators with its rules (`ruleset`).

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::rules::touch_bus;
use crate::domain::EventId;

/// An event type of the registry.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TypeRow {
    pub source: String,
    pub detail_type: String,
    pub description: String,
    /// `None`: the bus's mode.
    pub compatibility: Option<String>,
    /// The mode that applies (its own or the bus's).
    pub effective_compatibility: String,
    /// 0 when no version is registered yet.
    pub latest_version: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One version of an event type's schema.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i32,
    /// JSON text.
    pub schema: String,
    /// The reasons the compatibility check gave when the version was forced (JSON text).
    pub forced: Option<String>,
    pub created_at: OffsetDateTime,
}

const TYPE_COLUMNS: &str = "t.source, t.detail_type, t.description, t.compatibility,
     COALESCE(t.compatibility, b.schema_compatibility) AS effective_compatibility,
     COALESCE((SELECT max(v.version) FROM schema_versions v
               WHERE v.bus = t.bus AND v.source = t.source AND v.detail_type = t.detail_type), 0) AS latest_version,
     t.created_at, t.updated_at
     FROM event_types t JOIN buses b ON b.name = t.bus";

pub async fn list_types(conn: &mut PgConnection, bus: &str) -> Result<Vec<TypeRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TYPE_COLUMNS} WHERE t.bus = $1 ORDER BY t.source, t.detail_type"
    )))
    .bind(bus)
    .fetch_all(conn)
    .await
}

pub async fn get_type(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
) -> Result<Option<TypeRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TYPE_COLUMNS} WHERE t.bus = $1 AND t.source = $2 AND t.detail_type = $3"
    )))
    .bind(bus)
    .bind(source)
    .bind(detail_type)
    .fetch_optional(conn)
    .await
}

/// Every version of a type, oldest first.
pub async fn versions(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, schema, forced::text AS forced, created_at FROM schema_versions
         WHERE bus = $1 AND source = $2 AND detail_type = $3 ORDER BY version",
    )
    .bind(bus)
    .bind(source)
    .bind(detail_type)
    .fetch_all(conn)
    .await
}

pub enum PutType {
    Created,
    Updated,
    BusNotFound,
}

/// Creates an event type or sets its description and compatibility mode (`None`: the bus's).
pub async fn put_type(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
    description: &str,
    compatibility: Option<&str>,
) -> Result<PutType, sqlx::Error> {
    if !touch_bus(conn, bus).await? {
        return Ok(PutType::BusNotFound);
    }
    let created: bool = sqlx::query_scalar(
        "INSERT INTO event_types (bus, source, detail_type, description, compatibility)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (bus, source, detail_type) DO UPDATE SET description = EXCLUDED.description,
             compatibility = EXCLUDED.compatibility, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(bus)
    .bind(source)
    .bind(detail_type)
    .bind(description)
    .bind(compatibility)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if created {
        PutType::Created
    } else {
        PutType::Updated
    })
}

/// Locks an event type for registering a version, creating it (with the bus's compatibility
/// mode) if it does not exist; `false` when the bus does not exist. Run it in a transaction:
/// two registrations of one type take turns.
pub async fn lock_type(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
) -> Result<bool, sqlx::Error> {
    if !touch_bus(conn, bus).await? {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO event_types (bus, source, detail_type) VALUES ($1, $2, $3)
         ON CONFLICT (bus, source, detail_type) DO NOTHING",
    )
    .bind(bus)
    .bind(source)
    .bind(detail_type)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "SELECT 1 FROM event_types WHERE bus = $1 AND source = $2 AND detail_type = $3 FOR UPDATE",
    )
    .bind(bus)
    .bind(source)
    .bind(detail_type)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Adds the next version of a locked type ([`lock_type`]); returns its number.
pub async fn add_version(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
    schema: &str,
    forced: Option<&serde_json::Value>,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "WITH next AS (
             SELECT COALESCE(max(version), 0) + 1 AS version FROM schema_versions
             WHERE bus = $1 AND source = $2 AND detail_type = $3)
         INSERT INTO schema_versions (bus, source, detail_type, version, schema, forced)
         SELECT $1, $2, $3, next.version, $4, $5 FROM next
         RETURNING version",
    )
    .bind(bus)
    .bind(source)
    .bind(detail_type)
    .bind(schema)
    .bind(forced.map(sqlx::types::Json))
    .fetch_one(&mut *conn)
    .await
}

/// Deletes an event type with its versions; `false` when there was none.
pub async fn delete_type(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
) -> Result<bool, sqlx::Error> {
    let deleted =
        sqlx::query("DELETE FROM event_types WHERE bus = $1 AND source = $2 AND detail_type = $3")
            .bind(bus)
            .bind(source)
            .bind(detail_type)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
    if deleted {
        touch_bus(conn, bus).await?;
    }
    Ok(deleted)
}

/// The most recent stored events of a type (at most `limit`), newest first, each as its id and
/// its envelope's text: what a new version is checked against and discovery reads. (The detail
/// is taken out in Rust: `body::jsonb` would refuse a body holding an escaped NUL.)
pub async fn recent_events(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
    limit: i64,
) -> Result<Vec<(EventId, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, body FROM events
         WHERE bus = $1 AND detail_type = $2 AND source = $3
         ORDER BY received_at DESC LIMIT $4",
    )
    .bind(bus)
    .bind(detail_type)
    .bind(source)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The schema settings of a bus and the latest version of each of its event types: what ingest
/// validates with.
#[derive(Debug, Clone, Default)]
pub struct Validating {
    pub validation: String,
    pub unregistered: String,
    pub latest: Vec<LatestSchema>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LatestSchema {
    pub source: String,
    pub detail_type: String,
    pub version: i32,
    pub schema: String,
}

/// Reads what ingest validates a bus's events with (inside the snapshot's transaction).
pub async fn load_for_validating(
    conn: &mut PgConnection,
    bus: &str,
) -> Result<Validating, sqlx::Error> {
    let (validation, unregistered): (String, String) =
        sqlx::query_as("SELECT schema_validation, unregistered_types FROM buses WHERE name = $1")
            .bind(bus)
            .fetch_one(&mut *conn)
            .await?;
    let latest = if validation == "off" {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT DISTINCT ON (source, detail_type) source, detail_type, version, schema
             FROM schema_versions WHERE bus = $1
             ORDER BY source, detail_type, version DESC",
        )
        .bind(bus)
        .fetch_all(&mut *conn)
        .await?
    };
    Ok(Validating {
        validation,
        unregistered,
        latest,
    })
}

/// The latest schema of each event type of `bus` whose detail-type is one of `detail_types`
/// (and, when given, whose source is one of `sources`): what a rule selecting them is checked
/// against.
pub async fn latest_of_types(
    conn: &mut PgConnection,
    bus: &str,
    detail_types: &[String],
    sources: Option<&[String]>,
) -> Result<Vec<LatestSchema>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (source, detail_type) source, detail_type, version, schema
         FROM schema_versions
         WHERE bus = $1 AND detail_type = ANY($2) AND ($3::text[] IS NULL OR source = ANY($3))
         ORDER BY source, detail_type, version DESC",
    )
    .bind(bus)
    .bind(detail_types)
    .bind(sources)
    .fetch_all(conn)
    .await
}

/// A schema discovery proposes for an event type.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DraftRow {
    pub source: String,
    pub detail_type: String,
    /// JSON text.
    pub schema: String,
    pub samples: i32,
    pub refused: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub async fn drafts(conn: &mut PgConnection, bus: &str) -> Result<Vec<DraftRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT source, detail_type, schema, samples, refused, created_at, updated_at
         FROM schema_drafts WHERE bus = $1 ORDER BY source, detail_type",
    )
    .bind(bus)
    .fetch_all(conn)
    .await
}

pub async fn get_draft(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
) -> Result<Option<DraftRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT source, detail_type, schema, samples, refused, created_at, updated_at
         FROM schema_drafts WHERE bus = $1 AND source = $2 AND detail_type = $3",
    )
    .bind(bus)
    .bind(source)
    .bind(detail_type)
    .fetch_optional(conn)
    .await
}

/// Removes a type's draft; whether there was one.
pub async fn delete_draft(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query(
            "DELETE FROM schema_drafts WHERE bus = $1 AND source = $2 AND detail_type = $3",
        )
        .bind(bus)
        .bind(source)
        .bind(detail_type)
        .execute(conn)
        .await?
        .rows_affected()
            == 1,
    )
}

/// Keeps `schema` as the type's draft (replacing another one; the same one again only has its
/// counts and time renewed).
#[allow(clippy::too_many_arguments)]
pub async fn put_draft(
    conn: &mut PgConnection,
    bus: &str,
    source: &str,
    detail_type: &str,
    schema: &str,
    samples: i32,
    refused: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO schema_drafts AS d (bus, source, detail_type, schema, samples, refused)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (bus, source, detail_type) DO UPDATE
             SET schema = EXCLUDED.schema, samples = EXCLUDED.samples, refused = EXCLUDED.refused,
                 updated_at = now(),
                 created_at = CASE WHEN d.schema = EXCLUDED.schema THEN d.created_at ELSE now() END",
    )
    .bind(bus)
    .bind(source)
    .bind(detail_type)
    .bind(schema)
    .bind(samples)
    .bind(refused)
    .execute(conn)
    .await?;
    Ok(())
}

/// The buses with discovery on.
pub async fn discovering(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM buses WHERE schema_discovery ORDER BY name")
        .fetch_all(conn)
        .await
}

/// The event types of `bus` with events received since `since`.
pub async fn types_seen_since(
    conn: &mut PgConnection,
    bus: &str,
    since: OffsetDateTime,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT source, detail_type FROM events WHERE bus = $1 AND received_at >= $2",
    )
    .bind(bus)
    .bind(since)
    .fetch_all(conn)
    .await
}
