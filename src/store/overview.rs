//! The numbers that matter at a glance: the UI's header and the `/metrics` gauges.

use sqlx::PgConnection;

/// Counts over all processes.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct Overview {
    pub events_last_hour: i64,
    pub deliveries_pending: i64,
    pub dead_letters: i64,
    /// Ordered groups held by a dead letter (their target blocks on dead letters).
    pub groups_blocked: i64,
    /// Replays starting or running.
    pub replays_active: i64,
}

pub async fn overview(conn: &mut PgConnection) -> Result<Overview, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE received_at > now() - interval '1 hour') AS events_last_hour,
                (SELECT count(*) FROM deliveries WHERE state IN ('queued', 'pending', 'in_flight', 'held')) AS deliveries_pending,
                (SELECT count(*) FROM deliveries WHERE state = 'dead') AS dead_letters,
                (SELECT count(*) FROM deliveries WHERE holds_group AND state = 'dead') AS groups_blocked,
                (SELECT count(*) FROM replays WHERE state IN ('starting', 'running')) AS replays_active",
    )
    .fetch_one(conn)
    .await
}
