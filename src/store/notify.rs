//! NOTIFY channels. Payloads are tiny: the bus name.

/// A rule or bus changed; payload: the bus.
pub const RULES_CHANGED: &str = "switchyard_rules_changed";
/// New deliveries are due; payload: the bus.
pub const DELIVERIES_DUE: &str = "switchyard_deliveries_due";

/// Sends a notification inside the caller's transaction (delivered when it commits).
pub async fn notify(
    conn: &mut sqlx::PgConnection,
    channel: &str,
    payload: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// A listener on `channel`, on a connection of `pool` that it keeps (give it a pool of its own,
/// so listening never takes connections from work). `None`, logged, when it cannot listen: the
/// caller polls instead.
pub async fn listen(pool: &sqlx::PgPool, channel: &str) -> Option<sqlx::postgres::PgListener> {
    let listener = match sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(mut listener) => listener.listen(channel).await.map(|()| listener),
        Err(error) => Err(error),
    };
    match listener {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(channel, error = %crate::telemetry::error_chain(&error), "cannot LISTEN; polling only");
            None
        }
    }
}
