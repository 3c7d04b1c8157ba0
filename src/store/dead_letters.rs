//! Dead letters: deliveries in state `dead`. Listed newest first with a keyset cursor; redrive
//! puts them back in the queue with a fresh budget and keeps their attempts; discard ends them
//! as `discarded` (kept, not erased).

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::events::{ATTEMPT_COLUMNS, StoredAttempt};
use super::notify;
use crate::domain::{DeliveryId, EventId, TargetRef};

/// The longest reason an operator may give for a discard (kept with the delivery).
pub const MAX_DISCARD_REASON: usize = 1024;

/// Which dead letters: every field optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub bus: Option<String>,
    pub rule: Option<String>,
    pub target_id: Option<String>,
    pub dead_reason: Option<String>,
    /// Died at or after.
    pub since: Option<OffsetDateTime>,
    /// Died before.
    pub until: Option<OffsetDateTime>,
}

/// Where a page starts: after this (dead_at, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub dead_at: OffsetDateTime,
    pub id: DeliveryId,
}

impl Cursor {
    /// The cursor that continues after `row` (`None` if it is not dead).
    pub fn after(row: &DeadLetterSummary) -> Option<Cursor> {
        Some(Cursor {
            dead_at: row.dead_at?,
            id: row.id,
        })
    }

    /// Opaque text for URLs ([`super::encode_cursor`]).
    pub fn encode(&self) -> String {
        super::encode_cursor(self.dead_at, self.id.0)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (dead_at, id) = super::decode_cursor(text)?;
        Some(Cursor {
            dead_at,
            id: DeliveryId(id),
        })
    }
}

/// A dead letter as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetterSummary {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub bus: String,
    pub rule_name: String,
    pub target_id: String,
    pub dead_reason: Option<String>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub attempts: i32,
    pub redrive_count: i32,
    pub created_at: OffsetDateTime,
    pub dead_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, event_id, bus, rule_name, target_id, dead_reason, last_status, \
     last_error, attempts, redrive_count, created_at, dead_at";

/// `WHERE` conditions for a filter; binds $1..$6.
const FILTERED: &str = "state = 'dead'
     AND ($1::text IS NULL OR bus = $1)
     AND ($2::text IS NULL OR rule_name = $2)
     AND ($3::text IS NULL OR target_id = $3)
     AND ($4::text IS NULL OR dead_reason = $4)
     AND ($5::timestamptz IS NULL OR dead_at >= $5)
     AND ($6::timestamptz IS NULL OR dead_at < $6)";

/// Binds a filter's six values as $1..$6, on a `query` or a `query_as` alike.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {
        $query
            .bind($filter.bus.as_deref())
            .bind($filter.rule.as_deref())
            .bind($filter.target_id.as_deref())
            .bind($filter.dead_reason.as_deref())
            .bind($filter.since)
            .bind($filter.until)
    };
}

/// A page of dead letters, newest first.
pub async fn list(
    conn: &mut PgConnection,
    filter: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<DeadLetterSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deliveries WHERE {FILTERED}
           AND ($7::timestamptz IS NULL OR (dead_at, id) < ($7, $8))
         ORDER BY dead_at DESC, id DESC LIMIT $9"
    );
    bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), filter)
        .bind(after.map(|c| c.dead_at))
        .bind(after.map(|c| c.id))
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// How many dead letters match, per reason. Unfiltered (or by reason alone), the counts the
/// triggers keep are read (migrations 0020, 0023), not the rows.
pub async fn count_by_reason(
    conn: &mut PgConnection,
    filter: &Filter,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let Filter {
        bus: None,
        rule: None,
        target_id: None,
        since: None,
        until: None,
        dead_reason,
    } = filter
    else {
        return count_rows_by_reason(conn, filter).await;
    };
    // Each slot's counts per reason are in the order of `dead_reasons()`, then one for any
    // other reason (a row written by hand, say): with such rows, the rows are counted instead.
    let kept: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT r.reason, sum(c.by_reason[r.i])::int8
         FROM dead_letter_counts c,
              unnest(dead_reasons() || NULL::text) WITH ORDINALITY AS r(reason, i)
         WHERE $1::text IS NULL OR r.reason = $1 OR r.reason IS NULL
         GROUP BY r.reason HAVING sum(c.by_reason[r.i]) <> 0 ORDER BY r.reason",
    )
    .bind(dead_reason.as_deref())
    .fetch_all(&mut *conn)
    .await?;
    if kept.iter().any(|(reason, _)| reason.is_none()) {
        return count_rows_by_reason(conn, filter).await;
    }
    Ok(kept
        .into_iter()
        .filter_map(|(reason, n)| Some((reason?, n)))
        .collect())
}

/// [`count_by_reason`] row by row, for a filter the kept counts cannot answer.
async fn count_rows_by_reason(
    conn: &mut PgConnection,
    filter: &Filter,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT dead_reason, count(*) FROM deliveries WHERE {FILTERED} GROUP BY dead_reason ORDER BY dead_reason"
    );
    bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), filter)
        .fetch_all(conn)
        .await
}

/// One dead letter with its event, its last payload and every attempt.
#[derive(Debug)]
pub struct DeadLetter {
    pub summary: DeadLetterSummary,
    pub event: String,
    pub payload: Option<String>,
    pub attempts: Vec<StoredAttempt>,
}

pub async fn get(
    conn: &mut PgConnection,
    id: DeliveryId,
) -> Result<Option<DeadLetter>, sqlx::Error> {
    let summary: Option<DeadLetterSummary> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deliveries WHERE id = $1 AND state = 'dead'"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(summary) = summary else {
        return Ok(None);
    };
    let (event, payload): (String, Option<String>) = sqlx::query_as(
        "SELECT e.body, d.payload FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let attempts = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt"
    )))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(DeadLetter {
        summary,
        event,
        payload,
        attempts,
    }))
}

const REDRIVE: &str =
    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(),
         dead_reason = NULL, dead_at = NULL, finalized_at = NULL, budget_started_at = now(),
         redrive_count = redrive_count + 1";

/// Puts these dead letters back in the queue; how many were dead.
pub async fn redrive_ids(conn: &mut PgConnection, ids: &[DeliveryId]) -> Result<u64, sqlx::Error> {
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{REDRIVE} WHERE state = 'dead' AND id = ANY($1)"
    )))
    .bind(ids)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    notify::deliveries_made_due(conn, n).await?;
    Ok(n)
}

/// Puts every dead letter matching the filter back in the queue; how many.
pub async fn redrive_matching(
    conn: &mut PgConnection,
    filter: &Filter,
) -> Result<u64, sqlx::Error> {
    let n = bind_filter!(
        sqlx::query(sqlx::AssertSqlSafe(format!("{REDRIVE} WHERE {FILTERED}"))),
        filter
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    notify::deliveries_made_due(conn, n).await?;
    Ok(n)
}

/// Ends these dead letters as discarded, keeping them; how many were dead. Run it in a
/// transaction: a discarded head of a blocked group lets the group go on.
pub async fn discard_ids(
    conn: &mut PgConnection,
    ids: &[DeliveryId],
    reason: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let ended = sqlx::query_as(sqlx::AssertSqlSafe(discard_where(
        "id = ANY($1) AND state = 'dead'",
        "$2",
    )))
    .bind(ids)
    .bind(reason)
    .fetch_all(&mut *conn)
    .await?;
    release_groups(conn, ended).await
}

/// Discards every dead letter matching the filter; how many. Run it in a transaction.
pub async fn discard_matching(
    conn: &mut PgConnection,
    filter: &Filter,
    reason: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let ended = bind_filter!(
        sqlx::query_as(sqlx::AssertSqlSafe(discard_where(FILTERED, "$7"))),
        filter
    )
    .bind(reason)
    .fetch_all(&mut *conn)
    .await?;
    release_groups(conn, ended).await
}

/// The discard of the dead letters `condition` selects, with the reason in parameter `reason`;
/// each row returns its target, group key and whether it held its group.
fn discard_where(condition: &str, reason: &str) -> String {
    format!(
        "WITH ended AS (SELECT id, holds_group FROM deliveries WHERE {condition} FOR UPDATE)
         UPDATE deliveries d SET state = 'discarded', finalized_at = now(),
             discard_reason = {reason}, holds_group = false
         FROM ended WHERE d.id = ended.id
         RETURNING d.target_ref, d.group_key, ended.holds_group"
    )
}

/// Lets the groups whose blocking heads were discarded go on; how many were discarded.
async fn release_groups(
    conn: &mut PgConnection,
    ended: Vec<(TargetRef, Option<String>, bool)>,
) -> Result<u64, sqlx::Error> {
    let discarded = ended.len() as u64;
    let heads: Vec<(TargetRef, String)> = ended
        .into_iter()
        .filter_map(|(target, key, held)| Some((target, key.filter(|_| held)?)))
        .collect();
    super::groups::release(conn, &heads).await?;
    Ok(discarded)
}

/// Which dead letters a bulk operation takes: these, or every one the filter matches.
#[derive(Debug, Clone)]
pub enum Selection {
    Ids(Vec<DeliveryId>),
    Matching(Filter),
}

/// Redrives the selection; how many were dead.
pub async fn redrive(conn: &mut PgConnection, selection: &Selection) -> Result<u64, sqlx::Error> {
    match selection {
        Selection::Ids(ids) => redrive_ids(conn, ids).await,
        Selection::Matching(filter) => redrive_matching(conn, filter).await,
    }
}

/// Discards the selection; how many were dead.
pub async fn discard(
    conn: &mut PgConnection,
    selection: &Selection,
    reason: Option<&str>,
) -> Result<u64, sqlx::Error> {
    match selection {
        Selection::Ids(ids) => discard_ids(conn, ids, reason).await,
        Selection::Matching(filter) => discard_matching(conn, filter, reason).await,
    }
}

/// The most dead letters [`recent_by_target`] counts per target: more is reported as one more.
pub const RECENT_COUNTED_UP_TO: i64 = 1000;

/// How many dead letters of the last 24 hours each of these targets of a rule has, counted up to
/// [`RECENT_COUNTED_UP_TO`] (a target with more gets one more than that). Each count reads the
/// target's own entries of `deliveries_dead_by_target` (migration 0025), at most that many.
pub async fn recent_by_target(
    conn: &mut PgConnection,
    bus: &str,
    rule: &str,
    targets: &[&str],
) -> Result<std::collections::BTreeMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.id, (SELECT count(*) FROM (
                    SELECT FROM deliveries d
                    WHERE d.bus = $1 AND d.rule_name = $2 AND d.target_id = t.id
                      AND d.state = 'dead' AND d.dead_at > now() - interval '1 day'
                    LIMIT $4) AS recent)
         FROM unnest($3::text[]) AS t(id)",
    )
    .bind(bus)
    .bind(rule)
    .bind(targets)
    .bind(RECENT_COUNTED_UP_TO + 1)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}
