//! Connections and API destinations. A connection's secret is stored sealed; this module never
//! sees it in clear.

use sqlx::PgConnection;
use sqlx::types::Json;
use time::OffsetDateTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectionRow {
    pub name: String,
    pub description: String,
    pub authorization_type: String,
    /// The non-secret parameters ([`crate::connections::Parameters`]).
    pub parameters: Json<serde_json::Value>,
    pub secret_sealed: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const CONNECTION: &str = "SELECT name, description, authorization_type, parameters, secret_sealed, \
     created_at, updated_at FROM connections";

/// Creates or replaces a connection; `true` when it was created.
pub async fn put_connection(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
    authorization_type: &str,
    parameters: &serde_json::Value,
    secret_sealed: &[u8],
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO connections (name, description, authorization_type, parameters, secret_sealed)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,
             authorization_type = EXCLUDED.authorization_type, parameters = EXCLUDED.parameters,
             secret_sealed = EXCLUDED.secret_sealed, updated_at = clock_timestamp()
         RETURNING (xmax = 0)",
    )
    .bind(name)
    .bind(description)
    .bind(authorization_type)
    .bind(Json(parameters))
    .bind(secret_sealed)
    .fetch_one(conn)
    .await
}

/// The connection, locked until the transaction ends when `for_update`.
pub async fn get_connection(
    conn: &mut PgConnection,
    name: &str,
    for_update: bool,
) -> Result<Option<ConnectionRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CONNECTION} WHERE name = $1{lock}"
    )))
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// Connections in name order, after `after`, at most `limit`, whose name starts with `prefix`.
pub async fn list_connections(
    conn: &mut PgConnection,
    prefix: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ConnectionRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CONNECTION} WHERE starts_with(name, $1) AND ($2::text IS NULL OR name > $2)
         ORDER BY name COLLATE \"C\" LIMIT $3"
    )))
    .bind(prefix)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// What deleting a connection or a destination did.
#[derive(Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    NotFound,
    /// Still used by this many API destinations and targets.
    InUse {
        destinations: i64,
        targets: i64,
    },
}

pub async fn delete_connection(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Deleted, sqlx::Error> {
    if get_connection(conn, name, true).await?.is_none() {
        return Ok(Deleted::NotFound);
    }
    let (destinations, targets): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM api_destinations WHERE connection = $1),
                (SELECT count(*) FROM targets WHERE connection = $1 AND api_destination IS NULL)",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    if destinations + targets > 0 {
        return Ok(Deleted::InUse {
            destinations,
            targets,
        });
    }
    sqlx::query("DELETE FROM connections WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(Deleted::Deleted)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DestinationRow {
    pub name: String,
    pub description: String,
    pub connection: String,
    pub endpoint: String,
    pub http_method: String,
    pub invocation_rate_limit_per_second: Option<i32>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const DESTINATION: &str = "SELECT name, description, connection, endpoint, http_method, \
     invocation_rate_limit_per_second, created_at, updated_at FROM api_destinations";

/// Creates or replaces an API destination; `true` when it was created. The connection must
/// exist (the caller checked it in the same transaction).
pub async fn put_destination(
    conn: &mut PgConnection,
    name: &str,
    destination: &crate::connections::Destination,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO api_destinations (name, description, connection, endpoint, http_method,
                                       invocation_rate_limit_per_second)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description,
             connection = EXCLUDED.connection, endpoint = EXCLUDED.endpoint,
             http_method = EXCLUDED.http_method,
             invocation_rate_limit_per_second = EXCLUDED.invocation_rate_limit_per_second,
             updated_at = clock_timestamp()
         RETURNING (xmax = 0)",
    )
    .bind(name)
    .bind(&destination.description)
    .bind(&destination.connection)
    .bind(&destination.endpoint)
    .bind(&destination.method)
    .bind(destination.rate_limit_per_second.map(|r| r as i32))
    .fetch_one(conn)
    .await
}

pub async fn get_destination(
    conn: &mut PgConnection,
    name: &str,
    for_update: bool,
) -> Result<Option<DestinationRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{DESTINATION} WHERE name = $1{lock}"
    )))
    .bind(name)
    .fetch_optional(conn)
    .await
}

pub async fn list_destinations(
    conn: &mut PgConnection,
    prefix: &str,
    connection: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<DestinationRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{DESTINATION} WHERE starts_with(name, $1) AND ($2::text IS NULL OR connection = $2)
             AND ($3::text IS NULL OR name > $3)
         ORDER BY name COLLATE \"C\" LIMIT $4"
    )))
    .bind(prefix)
    .bind(connection)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn delete_destination(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Deleted, sqlx::Error> {
    if get_destination(conn, name, true).await?.is_none() {
        return Ok(Deleted::NotFound);
    }
    let targets: i64 =
        sqlx::query_scalar("SELECT count(*) FROM targets WHERE api_destination = $1")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    if targets > 0 {
        return Ok(Deleted::InUse {
            destinations: 0,
            targets,
        });
    }
    sqlx::query("DELETE FROM api_destinations WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(Deleted::Deleted)
}

/// A target of a destination: what recomputing its URL needs, and whose it is.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DestinationTarget {
    pub id: uuid::Uuid,
    pub bus: String,
    pub rule: String,
    pub target_id: String,
    pub path_parameters: Option<Vec<String>>,
    pub query_parameters: Option<Json<std::collections::BTreeMap<String, String>>>,
}

/// The targets that take their endpoint from the destination, locked.
pub async fn destination_targets(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Vec<DestinationTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, r.bus, r.name AS rule, t.target_id, t.path_parameters, t.query_parameters
         FROM targets t JOIN rules r ON r.id = t.rule_id
         WHERE t.api_destination = $1 ORDER BY t.id FOR UPDATE OF t",
    )
    .bind(name)
    .fetch_all(conn)
    .await
}

/// Points a destination's target at the destination as it is now.
pub async fn retarget(
    conn: &mut PgConnection,
    target: uuid::Uuid,
    url: &str,
    destination: &crate::connections::Destination,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE targets SET url = $2, method = $3, connection = $4, rate_limit_per_second = $5
         WHERE id = $1",
    )
    .bind(target)
    .bind(url)
    .bind(&destination.method)
    .bind(&destination.connection)
    .bind(destination.rate_limit_per_second.map(|r| r as i32))
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes one send of `key`'s rate limit (`limit` per second, across every process): `true` when
/// this second still had room. One statement; the row is the key's current window.
pub async fn take_rate(pool: &sqlx::PgPool, key: &str, limit: u32) -> Result<bool, sqlx::Error> {
    let taken: Option<i32> = sqlx::query_scalar(
        "INSERT INTO rate_windows AS w (key, second, used)
         VALUES ($1, date_trunc('second', clock_timestamp()), 1)
         ON CONFLICT (key) DO UPDATE SET
             used = CASE WHEN w.second = EXCLUDED.second THEN w.used + 1 ELSE 1 END,
             second = EXCLUDED.second
         WHERE w.second <> EXCLUDED.second OR w.used < $2
         RETURNING used",
    )
    .bind(key)
    .bind(limit as i32)
    .fetch_optional(pool)
    .await?;
    Ok(taken.is_some())
}
