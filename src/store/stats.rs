//! Per-minute counts for the overview's charts (migration 0016): each process adds what it did
//! every few seconds ([`add`], one statement for everything gathered), and the charts read
//! the minutes of their window ([`series`], [`failing_targets`]), so a page costs rows per
//! minute and target, not per event. Kept two days ([`prune`]).

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::metrics::{MinuteCounts, MinuteKey};

/// How long minutes are kept.
pub const KEEP_HOURS: i64 = 48;

/// Adds a process's counts to the stored minutes.
pub async fn add(pool: &PgPool, minutes: &[(MinuteKey, MinuteCounts)]) -> Result<(), sqlx::Error> {
    if minutes.is_empty() {
        return Ok(());
    }
    let mut at = Vec::with_capacity(minutes.len());
    let (mut bus, mut rule, mut target) = (Vec::new(), Vec::new(), Vec::new());
    let (mut events, mut delivered, mut retried, mut dead) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Each row's latency counts as text (`{1,2,…}`): UNNEST cannot take a 2-D array apart by rows.
    let mut latency = Vec::with_capacity(minutes.len());
    for ((minute, b, r, t), counts) in minutes {
        at.push(OffsetDateTime::from_unix_timestamp(*minute).unwrap_or(OffsetDateTime::UNIX_EPOCH));
        bus.push(b.as_str());
        rule.push(r.as_str());
        target.push(t.as_str());
        events.push(counts.events);
        delivered.push(counts.delivered);
        retried.push(counts.retried);
        dead.push(counts.dead);
        let parts: Vec<String> = counts.latency.iter().map(i64::to_string).collect();
        latency.push(format!("{{{}}}", parts.join(",")));
    }
    sqlx::query(
        "INSERT INTO stats_minutes AS s (minute, bus, rule, target, events, delivered, retried, dead, latency)
         SELECT u.minute, u.bus, u.rule, u.target, u.events, u.delivered, u.retried, u.dead, u.latency::int8[]
         FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                     $7::int8[], $8::int8[], $9::text[])
              AS u(minute, bus, rule, target, events, delivered, retried, dead, latency)
         -- The order every writer locks rows in: processes adding at once never deadlock.
         ORDER BY u.minute, u.bus, u.rule, u.target
         ON CONFLICT (minute, bus, rule, target) DO UPDATE
             SET events = s.events + EXCLUDED.events,
                 delivered = s.delivered + EXCLUDED.delivered,
                 retried = s.retried + EXCLUDED.retried,
                 dead = s.dead + EXCLUDED.dead,
                 latency = ARRAY(SELECT a + b FROM UNNEST(s.latency, EXCLUDED.latency) AS l(a, b))",
    )
    .bind(&at)
    .bind(&bus)
    .bind(&rule)
    .bind(&target)
    .bind(&events)
    .bind(&delivered)
    .bind(&retried)
    .bind(&dead)
    .bind(&latency)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes minutes older than [`KEEP_HOURS`].
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut removed = 0;
    for table in ["stats_minutes", "schema_minutes"] {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE minute < now() - make_interval(hours => $1::int)"
        )))
        .bind(KEEP_HOURS as i32)
        .execute(pool)
        .await?;
        removed += done.rows_affected();
    }
    Ok(removed)
}

/// Adds a process's schema violation counts (per minute, bus, source and detail-type).
pub async fn add_schema(
    pool: &PgPool,
    minutes: &[(crate::metrics::SchemaMinute, i64)],
) -> Result<(), sqlx::Error> {
    if minutes.is_empty() {
        return Ok(());
    }
    let at: Vec<OffsetDateTime> = minutes
        .iter()
        .map(|((m, ..), _)| {
            OffsetDateTime::from_unix_timestamp(*m).unwrap_or(OffsetDateTime::UNIX_EPOCH)
        })
        .collect();
    sqlx::query(
        "INSERT INTO schema_minutes AS s (minute, bus, source, detail_type, violations)
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::int8[])
         ORDER BY 1, 2, 3, 4
         ON CONFLICT (minute, bus, source, detail_type) DO UPDATE
             SET violations = s.violations + EXCLUDED.violations",
    )
    .bind(&at)
    .bind(
        minutes
            .iter()
            .map(|((_, b, _, _), _)| b.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        minutes
            .iter()
            .map(|((_, _, s, _), _)| s.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        minutes
            .iter()
            .map(|((_, _, _, d), _)| d.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(minutes.iter().map(|(_, n)| *n).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// Schema violations per event type of a bus in the last hour.
pub async fn violations_last_hour(
    conn: &mut sqlx::PgConnection,
    bus: &str,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT source, detail_type, sum(violations)::int8 FROM schema_minutes
         WHERE bus = $1 AND minute >= date_trunc('minute', now()) - interval '59 minutes'
         GROUP BY source, detail_type",
    )
    .bind(bus)
    .fetch_all(conn)
    .await
}

/// One bucket of a chart: all buses, rules and targets together.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Bucket {
    pub start: OffsetDateTime,
    pub events: i64,
    pub delivered: i64,
    pub retried: i64,
    pub dead: i64,
    pub latency: Vec<i64>,
}

/// The window's buckets of `bucket_seconds` each, oldest first, every bucket present (zeros
/// where nothing happened).
pub async fn series(
    conn: &mut PgConnection,
    since: OffsetDateTime,
    bucket_seconds: i64,
    buckets: i64,
) -> Result<Vec<Bucket>, sqlx::Error> {
    sqlx::query_as(
        "WITH slots AS (
             SELECT to_timestamp($1::float8 + n * $2::float8) AS start
             FROM generate_series(0, $3::int8 - 1) AS n
         ), rows AS (
             SELECT to_timestamp(floor((extract(epoch FROM minute) - $1::float8) / $2::float8) * $2::float8 + $1::float8) AS start,
                    events, delivered, retried, dead, latency
             FROM stats_minutes WHERE minute >= to_timestamp($1::float8)
         )
         SELECT s.start,
                COALESCE(sum(r.events), 0)::int8 AS events,
                COALESCE(sum(r.delivered), 0)::int8 AS delivered,
                COALESCE(sum(r.retried), 0)::int8 AS retried,
                COALESCE(sum(r.dead), 0)::int8 AS dead,
                COALESCE((SELECT array_agg(t.total ORDER BY t.i)
                          FROM (SELECT l.i, sum(l.n)::int8 AS total
                                FROM rows r2, unnest(r2.latency) WITH ORDINALITY AS l(n, i)
                                WHERE r2.start = s.start GROUP BY l.i) AS t),
                         '{}') AS latency
         FROM slots s LEFT JOIN rows r ON r.start = s.start
         GROUP BY s.start ORDER BY s.start",
    )
    .bind(since.unix_timestamp() as f64)
    .bind(bucket_seconds as f64)
    .bind(buckets)
    .fetch_all(conn)
    .await
}

/// A target that failed in the window: tries answered with a retry, and dead letters.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailingTarget {
    pub bus: String,
    pub rule: String,
    pub target: String,
    pub delivered: i64,
    pub retried: i64,
    pub dead: i64,
}

/// The targets with the most failures since `since`, worst first.
pub async fn failing_targets(
    conn: &mut PgConnection,
    since: OffsetDateTime,
    limit: i64,
) -> Result<Vec<FailingTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT bus, rule, target, sum(delivered)::int8 AS delivered, sum(retried)::int8 AS retried,
                sum(dead)::int8 AS dead
         FROM stats_minutes
         WHERE minute >= $1 AND target <> ''
         GROUP BY bus, rule, target
         HAVING sum(retried) + sum(dead) > 0
         ORDER BY sum(dead) DESC, sum(retried) DESC, bus, rule, target
         LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(conn)
    .await
}
