//! The groups of ordered targets (migration 0011 says how the order is kept). Ingest adds to a
//! group ([`super::events::insert`]); every transition that ends a group's head (delivered,
//! dead without blocking, discarded) calls [`release`] in the transaction that ended it; operators
//! list the groups that owe deliveries.

use sqlx::PgConnection;
use time::OffsetDateTime;

use super::notify;
use crate::domain::{DeliveryId, EventId, TargetRef};

/// After the heads of these groups ended in the caller's transaction: each group owes one
/// delivery less, and its next queued delivery (lowest number) becomes its head, due now; a
/// group that owes nothing more is removed. Returns how many were promoted.
///
/// Two statements on purpose. The first locks the groups' rows (in key order: no deadlock with
/// ingest or another release), waiting for any ingest that is adding to them to commit. The
/// second starts after that, so its snapshot sees every delivery those ingests queued.
pub async fn release(
    conn: &mut PgConnection,
    heads: &[(TargetRef, String)],
) -> Result<u64, sqlx::Error> {
    if heads.is_empty() {
        return Ok(0);
    }
    let targets: Vec<TargetRef> = heads.iter().map(|(t, _)| *t).collect();
    let keys: Vec<&str> = heads.iter().map(|(_, k)| k.as_str()).collect();
    sqlx::query(
        "SELECT 1 FROM delivery_groups
         WHERE (target_ref, group_key) IN (SELECT * FROM UNNEST($1::uuid[], $2::text[]))
         ORDER BY target_ref, group_key
         FOR UPDATE",
    )
    .bind(&targets)
    .bind(&keys)
    .execute(&mut *conn)
    .await?;
    let promoted: Vec<String> = sqlx::query_scalar(
        "WITH r AS (
             SELECT * FROM UNNEST($1::uuid[], $2::text[]) AS r(target_ref, group_key)
         ), idle AS (
             -- A group that owes nothing more has no row: the table holds the live groups.
             DELETE FROM delivery_groups g USING r
             WHERE g.target_ref = r.target_ref AND g.group_key = r.group_key AND g.owed <= 1
         ), released AS (
             UPDATE delivery_groups g SET owed = g.owed - 1
             FROM r
             WHERE g.target_ref = r.target_ref AND g.group_key = r.group_key AND g.owed > 1
             RETURNING g.target_ref, g.group_key
         ), next AS (
             SELECT (SELECT q.id FROM deliveries q
                     WHERE q.target_ref = r.target_ref AND q.group_key = r.group_key
                       AND q.state = 'queued'
                     ORDER BY q.group_seq LIMIT 1) AS id
             FROM released r
         )
         UPDATE deliveries d SET state = 'pending', holds_group = true, next_attempt_at = now()
         FROM next WHERE d.id = next.id AND d.state = 'queued'
         RETURNING d.bus",
    )
    .bind(&targets)
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    if !promoted.is_empty() {
        notify::notify(conn, notify::DELIVERIES_DUE, "").await?;
    }
    Ok(promoted.len() as u64)
}

/// How a group stands, from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// The head is due or being sent.
    Flowing,
    /// The head failed and waits for its next try.
    Retrying,
    /// The head is held: the target is disabled.
    Held,
    /// The head is a dead letter and the target blocks on dead letters: nothing moves until it
    /// is redriven or discarded.
    Blocked,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Flowing => "flowing",
            GroupState::Retrying => "retrying",
            GroupState::Held => "held",
            GroupState::Blocked => "blocked",
        }
    }

    pub fn parse(text: &str) -> Option<GroupState> {
        [
            GroupState::Flowing,
            GroupState::Retrying,
            GroupState::Held,
            GroupState::Blocked,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A group that owes deliveries (every row of `delivery_groups`), with its head.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Group {
    pub group_key: String,
    /// Deliveries not yet ended, the head included.
    pub owed: i64,
    pub head_id: DeliveryId,
    pub head_event_id: EventId,
    pub head_state: String,
    pub head_attempts: i32,
    pub head_next_attempt_at: OffsetDateTime,
    pub head_last_status: Option<i32>,
    pub head_last_error: Option<String>,
    pub head_dead_reason: Option<String>,
}

impl Group {
    pub fn state(&self) -> GroupState {
        match self.head_state.as_str() {
            "dead" => GroupState::Blocked,
            "held" => GroupState::Held,
            "pending" if self.head_attempts > 0 => GroupState::Retrying,
            _ => GroupState::Flowing,
        }
    }
}

/// The groups of a target that owe deliveries, in key order after `after`, at most `limit`;
/// only those in `state` when given.
pub async fn list(
    conn: &mut PgConnection,
    target: TargetRef,
    state: Option<GroupState>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Group>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.group_key, g.owed, d.id AS head_id, d.event_id AS head_event_id,
                d.state AS head_state, d.attempts AS head_attempts,
                d.next_attempt_at AS head_next_attempt_at, d.last_status AS head_last_status,
                d.last_error AS head_last_error, d.dead_reason AS head_dead_reason
         FROM delivery_groups g
         JOIN deliveries d
              ON d.target_ref = g.target_ref AND d.group_key = g.group_key AND d.holds_group
         WHERE g.target_ref = $1
           AND ($2::text IS NULL OR g.group_key > $2)
           AND CASE $3::text
                   WHEN 'blocked' THEN d.state = 'dead'
                   WHEN 'held' THEN d.state = 'held'
                   WHEN 'retrying' THEN d.state = 'pending' AND d.attempts > 0
                   WHEN 'flowing' THEN d.state = 'in_flight' OR (d.state = 'pending' AND d.attempts = 0)
                   ELSE true
               END
         ORDER BY g.group_key
         LIMIT $4",
    )
    .bind(target)
    .bind(after)
    .bind(state.map(GroupState::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// How many groups of a target owe deliveries, and how many of them are blocked.
pub async fn count(conn: &mut PgConnection, target: TargetRef) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE d.state = 'dead')
         FROM delivery_groups g
         JOIN deliveries d
              ON d.target_ref = g.target_ref AND d.group_key = g.group_key AND d.holds_group
         WHERE g.target_ref = $1",
    )
    .bind(target)
    .fetch_one(conn)
    .await
}
