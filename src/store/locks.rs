//! Advisory locks, each held until the caller's transaction ends, so that work every process may
//! start is done by one at a time.

use sqlx::PgConnection;

/// What a lock serialises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Making the first admin token: two first starts make one.
    FirstToken,
    /// `rules apply`: two applies do not interleave their plans.
    RulesApply,
    /// Retention: one process prunes at a time.
    Prune,
    /// Schema discovery: one process looks at a time.
    Discovery,
    /// Recording or rotating the key that seals secrets.
    SecretKey,
}

impl Lock {
    fn name(self) -> &'static str {
        match self {
            Lock::FirstToken => "switchyard_first_token",
            Lock::RulesApply => "switchyard_rules_apply",
            Lock::Prune => "switchyard_prune",
            Lock::Discovery => "switchyard_schema_discovery",
            Lock::SecretKey => "switchyard_secret_key",
        }
    }
}

/// Waits for the lock; it is released when the transaction `conn` is in ends.
pub async fn hold(conn: &mut PgConnection, lock: Lock) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(lock.name())
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes the lock if it is free; whether it was.
pub async fn try_hold(conn: &mut PgConnection, lock: Lock) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
        .bind(lock.name())
        .fetch_one(conn)
        .await
}
