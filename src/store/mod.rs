//! All SQL lives here, one file per table family; each function is one statement (or one
//! transaction that must not be split) and takes a connection or transaction from the caller,
//! so callers compose them. Queries are runtime-checked (`query_as` + `FromRow`): a clean clone
//! builds without a database.

pub mod archives;
pub mod audit;
pub mod buses;
pub mod connections;
pub mod dead_letters;
pub mod deliveries;
pub mod embedded;
pub mod event_search;
pub mod events;
pub mod groups;
pub mod handover;
pub mod idempotency;
pub mod locks;
pub mod notify;
pub mod overview;
pub mod replays;
pub mod retention;
pub mod rules;
pub mod schemas;
pub mod sessions;
pub mod stats;
pub mod tokens;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use sqlx::{PgConnection, Postgres, Transaction};

/// The migrations under `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!();

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("applying database migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

/// What a database failure means for the one who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Postgres refused a text it was given (a NUL character: SQLSTATE 22021 in `text`, 22P05
    /// in `jsonb`): the request's fault. Inputs are checked before they reach the database;
    /// this is the net under those checks.
    RefusedText,
    /// The database cannot be reached or did not answer in time (no connection within the
    /// acquire timeout, a broken connection, a statement cancelled by its timeout, a server
    /// shutting down or refusing connections): worth trying again later.
    Unavailable,
}

/// The [`Fault`] behind an error, looking through its whole chain; `None` for anything else.
pub fn fault(error: &(dyn std::error::Error + 'static)) -> Option<Fault> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        let sqlx_error = error.downcast_ref::<sqlx::Error>().or_else(|| {
            error
                .downcast_ref::<std::sync::Arc<sqlx::Error>>()
                .map(|a| &**a)
        });
        match sqlx_error {
            Some(sqlx::Error::Database(db)) => match db.code().as_deref() {
                Some("22021" | "22P05") => return Some(Fault::RefusedText),
                Some(code)
                    if code.starts_with("08")
                        || matches!(code, "57014" | "57P01" | "57P02" | "57P03" | "53300") =>
                {
                    return Some(Fault::Unavailable);
                }
                _ => {}
            },
            Some(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed,
            ) => return Some(Fault::Unavailable),
            _ => {}
        }
        cause = error.source();
    }
    None
}

/// A keyset cursor over (time, id) as opaque text for URLs: `<unix nanos>_<id, simple>`.
pub fn encode_cursor(at: time::OffsetDateTime, id: uuid::Uuid) -> String {
    format!("{}_{}", at.unix_timestamp_nanos(), id.simple())
}

/// Reads back what [`encode_cursor`] wrote; `None` for any other text.
pub fn decode_cursor(text: &str) -> Option<(time::OffsetDateTime, uuid::Uuid)> {
    let (nanos, id) = text.split_once('_')?;
    Some((
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?,
        uuid::Uuid::parse_str(id).ok()?,
    ))
}

/// For keyset pages read with one row more than `limit`: cuts the rows back to `limit` and gives
/// the last row kept when there is a further page (the row the next page starts after).
pub fn page_end<T>(rows: &mut Vec<T>, limit: usize) -> Option<&T> {
    if rows.len() > limit {
        rows.truncate(limit);
        rows.last()
    } else {
        None
    }
}

/// How the router's own pool waits: for a connection (`acquire`), and for one statement
/// (Postgres's `statement_timeout`, set on every connection).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub acquire: Duration,
    pub statement: Duration,
}

/// The router's pool on `options`: `max_connections`, with `timeouts`.
pub async fn connect_serving(
    options: PgConnectOptions,
    max_connections: u32,
    timeouts: Timeouts,
) -> Result<PgPool, StoreError> {
    let statement = format!("{}ms", timeouts.statement.as_millis());
    let options = options.options([("statement_timeout", statement.as_str())]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeouts.acquire)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// A connection pool on `options` for tools and background connections (no statement timeout;
/// a connection is waited for up to 10 s).
pub async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Applies every migration not applied yet.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Whether the database answers and every embedded migration is applied.
pub async fn is_ready(pool: &PgPool) -> Result<bool, StoreError> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .all(|m| applied.contains(&m.version)))
}
