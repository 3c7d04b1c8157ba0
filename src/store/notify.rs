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
