//! The numbers that matter at a glance: the UI's header and the `/metrics` gauges.
//!
//! Events in the last hour are the sum of the per-minute counts every process adds to
//! `stats_minutes` (`crate::stats`): a read of at most sixty minutes of rows per bus, whatever the
//! traffic, where counting the events themselves read every event of the hour (72 M at 20,000
//! events/s). The price: the count lags by up to `SWITCHYARD_STATS_INTERVAL_MS`, and the hour is
//! counted in whole minutes (the current one and the 59 before it). Dead letters are counted by
//! triggers as deliveries become dead or stop being dead (migration 0020), exactly and at once.
//! Deliveries still owed are counted, each state from its partial index: the work is the
//! backlog's size, not the history's.

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
        "SELECT (SELECT COALESCE(sum(events), 0)::int8 FROM stats_minutes
                 WHERE minute >= date_trunc('minute', now()) - interval '59 minutes'
                   AND rule = '' AND target = '') AS events_last_hour,
                -- One count per state, so each reads its own partial index (an IN list over the
                -- four let the planner scan the whole table: 100 ms at a million deliveries).
                (SELECT count(*) FROM deliveries WHERE state = 'pending')
                  + (SELECT count(*) FROM deliveries WHERE state = 'in_flight')
                  + (SELECT count(*) FROM deliveries WHERE state = 'held')
                  + (SELECT count(*) FROM deliveries WHERE state = 'queued')
                  -- Handed over at ingest, still without rows (as of each lease's renewal).
                  + (SELECT COALESCE(sum(outstanding), 0) FROM handover_leases) AS deliveries_pending,
                (SELECT COALESCE(sum(n), 0)::int8 FROM dead_letter_counts) AS dead_letters,
                (SELECT count(*) FROM deliveries WHERE holds_group AND state = 'dead') AS groups_blocked,
                (SELECT count(*) FROM replays WHERE state IN ('starting', 'running')) AS replays_active",
    )
    .fetch_one(conn)
    .await
}
