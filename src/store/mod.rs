//! All SQL lives here, one file per table family; each function is one statement (or one
//! transaction that must not be split) and takes a connection or transaction from the caller,
//! so callers compose them. Queries are runtime-checked (`query_as` + `FromRow`): a clean clone
//! builds without a database.

pub mod buses;
pub mod dead_letters;
pub mod deliveries;
pub mod embedded;
pub mod events;
pub mod locks;
pub mod notify;
pub mod overview;
pub mod retention;
pub mod rules;
pub mod sessions;
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

/// Whether Postgres refused a text it was given (a NUL character, SQLSTATE 22021 in `text`,
/// 22P05 in `jsonb`) anywhere in the error's chain: the request's fault, not the server's. Inputs
/// are checked before they reach the database; this is the net under those checks.
pub fn refused_text(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(sqlx::Error::Database(db)) = error.downcast_ref::<sqlx::Error>()
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            return true;
        }
        cause = error.source();
    }
    false
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

/// A connection pool on `options`.
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
