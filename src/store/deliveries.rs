//! The delivery queue: claim with a lease, then guarded transitions. A claim commits before any
//! HTTP call; every later transition names the lease owner and touches nothing if the lease was
//! lost (the caller logs that and applies nothing).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, notify};
use crate::delivery::{AttemptRecord, Claim, Outcome, TargetRuntime, Transition};
use crate::domain::trace::EventSpan;
use crate::domain::{DeliveryId, EventId, Format, TargetRef};

/// A claimed delivery as read.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: DeliveryId,
    event_id: EventId,
    bus: String,
    rule_name: String,
    target_id: String,
    target_ref: TargetRef,
    attempts: i32,
    budget_started_at: OffsetDateTime,
    body: String,
    received_at: OffsetDateTime,
    traceparent: Option<String>,
    trace_parent_id: Option<String>,
    tracestate: Option<String>,
    holds_group: bool,
    targets_version: i64,
}

impl From<ClaimRow> for Claim {
    fn from(row: ClaimRow) -> Claim {
        Claim {
            id: row.id,
            event_id: row.event_id,
            bus: row.bus,
            rule_name: row.rule_name,
            target_id: row.target_id,
            target_ref: row.target_ref,
            attempts: row.attempts,
            budget_started_at: row.budget_started_at,
            body: row.body,
            received_at: row.received_at,
            span: row.traceparent.as_deref().and_then(|traceparent| {
                EventSpan::stored(traceparent, row.trace_parent_id, row.tracestate)
            }),
            holds_group: row.holds_group,
            handed_at: None,
        }
    }
}

/// Claims up to `limit` due deliveries for `owner`, leased for `lease`. One statement. Returns
/// them with the count of target changes it saw (migration 0027; none when it claimed none).
pub async fn claim_due(
    pool: &PgPool,
    owner: Uuid,
    limit: i64,
    lease: Duration,
) -> Result<(Option<i64>, Vec<Claim>), sqlx::Error> {
    let rows: Vec<ClaimRow> = sqlx::query_as(
        "WITH due AS (
             SELECT id FROM deliveries
             WHERE state = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED
         )
         UPDATE deliveries d
         SET state = 'in_flight', lease_owner = $2,
             lease_expires_at = now() + make_interval(secs => $3), attempts = d.attempts + 1
         FROM due, events e
         WHERE d.id = due.id AND e.id = d.event_id
         RETURNING d.id, d.event_id, d.bus, d.rule_name, d.target_id, d.target_ref, d.attempts,
                   d.budget_started_at, e.body, e.received_at, e.traceparent, e.trace_parent_id,
                   e.tracestate, d.holds_group,
                   (SELECT version FROM target_changes) AS targets_version",
    )
    .bind(limit)
    .bind(owner)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    let version = rows.iter().map(|row| row.targets_version).max();
    Ok((version, rows.into_iter().map(Claim::from).collect()))
}

#[derive(sqlx::FromRow)]
struct TargetRuntimeRow {
    id: TargetRef,
    url: String,
    method: String,
    headers: sqlx::types::Json<BTreeMap<String, String>>,
    #[sqlx(flatten)]
    input: super::rules::InputColumns,
    maximum_retry_attempts: i32,
    maximum_event_age_seconds: i32,
    timeout_ms: i32,
    max_concurrency: i32,
    secret: String,
    previous_secret: Option<String>,
    disabled: bool,
    format: String,
    rate_limit_per_second: Option<i32>,
    api_destination: Option<String>,
    connection_name: Option<String>,
    connection_parameters: Option<sqlx::types::Json<serde_json::Value>>,
    connection_secret: Option<Vec<u8>>,
    connection_version: Option<OffsetDateTime>,
    previous_secret_expires_at: Option<OffsetDateTime>,
}

/// The targets with these ids (a deleted one is simply absent), each with its connection and,
/// while it still has a previous secret, when that expires (the target then reads otherwise).
pub async fn targets(
    pool: &PgPool,
    ids: &[TargetRef],
) -> Result<Vec<(TargetRuntime, Option<OffsetDateTime>)>, StoreError> {
    let rows: Vec<TargetRuntimeRow> = sqlx::query_as(
        "SELECT t.id, t.url, t.method, t.headers, t.input_kind, t.input, t.input_path,
                t.input_paths_map, t.input_template, t.maximum_retry_attempts,
                t.maximum_event_age_seconds, t.timeout_ms, t.max_concurrency, t.secret,
                CASE WHEN t.previous_secret_expires_at > now() THEN t.previous_secret END AS previous_secret,
                t.disabled_at IS NOT NULL AS disabled, t.format, t.rate_limit_per_second,
                t.api_destination, c.name AS connection_name,
                c.parameters AS connection_parameters, c.secret_sealed AS connection_secret,
                c.updated_at AS connection_version,
                CASE WHEN t.previous_secret_expires_at > now()
                     THEN t.previous_secret_expires_at END AS previous_secret_expires_at
         FROM targets t LEFT JOIN connections c ON c.name = t.connection
         WHERE t.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let corrupt = || StoreError::Corrupt(format!("target {}", row.id));
            let input = row.input.into_transform().ok_or_else(corrupt)?;
            let positive = |n: i32| u32::try_from(n).map_err(|_| corrupt());
            let mut secrets = vec![row.secret.clone()];
            secrets.extend(row.previous_secret.clone());
            let connection = match (
                row.connection_name,
                row.connection_parameters,
                row.connection_secret,
                row.connection_version,
            ) {
                (Some(name), Some(parameters), Some(secret_sealed), Some(version)) => {
                    Some(crate::connections::SealedConnection {
                        parameters: serde_json::from_value(parameters.0)
                            .map_err(|e| StoreError::Corrupt(format!("connection {name}: {e}")))?,
                        name,
                        secret_sealed,
                        version,
                    })
                }
                _ => None,
            };
            let rate_limit = match row.rate_limit_per_second {
                Some(rate) => Some((
                    match &row.api_destination {
                        Some(destination) => format!("api-destination/{destination}"),
                        None => format!("target/{}", row.id),
                    },
                    positive(rate)?,
                )),
                None => None,
            };
            let target = TargetRuntime {
                id: row.id,
                url: row.url,
                method: row.method,
                headers: row.headers.0,
                input,
                maximum_retry_attempts: positive(row.maximum_retry_attempts)?,
                maximum_event_age: Duration::from_secs(u64::from(positive(
                    row.maximum_event_age_seconds,
                )?)),
                timeout: Duration::from_millis(u64::from(positive(row.timeout_ms)?)),
                max_concurrency: positive(row.max_concurrency)?,
                secrets,
                disabled: row.disabled,
                format: Format::parse(&row.format).ok_or_else(corrupt)?,
                connection,
                rate_limit,
            };
            Ok((target, row.previous_secret_expires_at))
        })
        .collect()
}

/// Records many outcomes: each delivery's transition is applied only if `owner` still holds its
/// lease, and its attempt is recorded only then. Returns the ids that were applied; the others
/// had lost their lease (nothing of theirs is written).
///
/// A delivery handed over at ingest without a row (migration 0028, [`Outcome::handed`]) gets
/// its row now, inserted as the transition leaves it: a row already there was made by a rescue
/// (its lease was lost) and is left alone.
///
/// The try that delivered is written into its delivery's row (migration 0024); every other try
/// gets its row in `delivery_attempts`. Either way it is numbered after the delivery's recorded
/// tries.
///
/// Most batches are one statement on its own (no transaction to begin and commit: two round
/// trips fewer) per kind of delivery, claimed or handed over: when no delivery held its group
/// and every try delivered. Otherwise the writes, the groups' release and the failed tries'
/// rows are one transaction.
pub async fn finish_many(
    pool: &PgPool,
    owner: Uuid,
    outcomes: &[Outcome],
) -> Result<Vec<DeliveryId>, sqlx::Error> {
    let (handed, claimed): (Vec<&Outcome>, Vec<&Outcome>) =
        outcomes.iter().partition(|o| o.handed.is_some());
    let tried: Vec<(&Outcome, &AttemptRecord)> = outcomes
        .iter()
        .filter(|o| o.transition != Transition::Delivered)
        .filter_map(|o| Some((o, o.attempt.as_ref()?)))
        .collect();
    let alone = tried.is_empty() && !outcomes.iter().any(|o| o.held_group);
    let (update, insert) = (OutcomeColumns::of(&claimed), OutcomeColumns::of(&handed));
    if alone {
        let mut applied = Vec::with_capacity(outcomes.len());
        if !claimed.is_empty() {
            let rows = update.update(owner).fetch_all(pool).await?;
            applied.extend(rows.into_iter().map(|(id, ..)| id));
        }
        if !handed.is_empty() {
            let rows = insert.insert().fetch_all(pool).await?;
            applied.extend(rows.into_iter().map(|(id,)| id));
        }
        return Ok(applied);
    }
    let mut tx = pool.begin().await?;
    let rows = if claimed.is_empty() {
        Vec::new()
    } else {
        update.update(owner).fetch_all(&mut *tx).await?
    };
    // A head that held its group when claimed (the lease kept it so) and holds it no more has
    // ended: its group moves on. A head keeps holding while it will be tried again, and when it
    // died on a target that blocks. (A handed-over delivery is never ordered.)
    let held: HashSet<DeliveryId> = outcomes
        .iter()
        .filter(|o| o.held_group)
        .map(|o| o.id)
        .collect();
    let released: Vec<(TargetRef, String)> = rows
        .iter()
        .filter(|(id, _, _, holds)| held.contains(id) && !holds)
        .filter_map(|(_, target, key, _)| Some((*target, key.clone()?)))
        .collect();
    super::groups::release(&mut tx, &released).await?;
    let mut applied: Vec<DeliveryId> = rows.into_iter().map(|(id, ..)| id).collect();
    if !handed.is_empty() {
        let rows = insert.insert().fetch_all(&mut *tx).await?;
        applied.extend(rows.into_iter().map(|(id,)| id));
    }
    let tried: Vec<&(&Outcome, &AttemptRecord)> = tried
        .iter()
        .filter(|(o, _)| applied.contains(&o.id))
        .collect();
    if !tried.is_empty() {
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status,
                 response_headers, response_body, error)
             SELECT a.delivery_id,
                    COALESCE((SELECT max(x.attempt) FROM delivery_attempts x WHERE x.delivery_id = a.delivery_id), 0) + 1,
                    a.started_at, a.duration_ms, a.status, a.headers::jsonb, a.body, a.error
             FROM UNNEST($1::uuid[], $2::timestamptz[], $3::int4[], $4::int4[], $5::text[], $6::text[], $7::text[])
                  AS a(delivery_id, started_at, duration_ms, status, headers, body, error)",
        )
        .bind(tried.iter().map(|(o, _)| o.id).collect::<Vec<_>>())
        .bind(tried.iter().map(|(_, a)| a.started_at).collect::<Vec<_>>())
        .bind(tried.iter().map(|(_, a)| a.duration_ms).collect::<Vec<_>>())
        .bind(tried.iter().map(|(_, a)| a.status).collect::<Vec<_>>())
        .bind(
            tried
                .iter()
                .map(|(_, a)| a.response_headers.as_ref().map(|h| h.to_string()))
                .collect::<Vec<_>>(),
        )
        .bind(tried.iter().map(|(_, a)| a.response_body.as_deref()).collect::<Vec<_>>())
        .bind(tried.iter().map(|(_, a)| a.error.as_deref()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(applied)
}

/// Outcomes as the columns their rows take, one array each.
struct OutcomeColumns<'a> {
    ids: Vec<DeliveryId>,
    states: Vec<&'static str>,
    after_ms: Vec<f64>,
    reasons: Vec<Option<&'static str>>,
    /// Not tried (held, or put back for the rate limit): the attempt does not count and the
    /// last try's status stays.
    untried: Vec<bool>,
    payloads: Vec<Option<&'a str>>,
    statuses: Vec<Option<i32>>,
    errors: Vec<Option<&'a str>>,
    // The try that delivered, for the delivery's own row.
    started: Vec<Option<OffsetDateTime>>,
    durations: Vec<Option<i32>>,
    headers: Vec<Option<String>>,
    bodies: Vec<Option<&'a str>>,
    /// What makes the rows of handed-over deliveries ([`Outcome::handed`]).
    handed: Vec<&'a crate::store::handover::Handed>,
}

/// Each applied outcome of an update: its delivery, target, group key, and whether it holds
/// its group now.
type Updated = (DeliveryId, TargetRef, Option<String>, bool);

/// A statement on outcomes, its rows read as `O`.
type Query<'q, O> = sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

impl<'a> OutcomeColumns<'a> {
    /// Binds the columns as `$1` to `$12`, in the order the statements unnest them.
    fn bind<'q, O>(&'q self, query: Query<'q, O>) -> Query<'q, O> {
        query
            .bind(&self.ids)
            .bind(&self.states)
            .bind(&self.after_ms)
            .bind(&self.reasons)
            .bind(&self.untried)
            .bind(&self.payloads)
            .bind(&self.statuses)
            .bind(&self.errors)
            .bind(&self.started)
            .bind(&self.durations)
            .bind(&self.headers)
            .bind(&self.bodies)
    }

    fn of(outcomes: &[&'a Outcome]) -> OutcomeColumns<'a> {
        let n = outcomes.len();
        let mut columns = OutcomeColumns {
            ids: Vec::with_capacity(n),
            states: Vec::with_capacity(n),
            after_ms: Vec::with_capacity(n),
            reasons: Vec::with_capacity(n),
            untried: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
            started: Vec::with_capacity(n),
            durations: Vec::with_capacity(n),
            headers: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            handed: outcomes.iter().filter_map(|o| o.handed.as_ref()).collect(),
        };
        for o in outcomes {
            let (state, after, reason) = match &o.transition {
                Transition::Delivered => ("delivered", 0.0, None),
                Transition::Retry { after } => ("pending", after.as_secs_f64() * 1000.0, None),
                Transition::Dead(reason) => ("dead", 0.0, Some(reason.as_str())),
                Transition::Hold => ("held", 0.0, None),
                Transition::Defer { after } => ("pending", after.as_secs_f64() * 1000.0, None),
            };
            columns.ids.push(o.id);
            columns.states.push(state);
            columns.after_ms.push(after);
            columns.reasons.push(reason);
            columns.untried.push(matches!(
                o.transition,
                Transition::Hold | Transition::Defer { .. }
            ));
            // The payload is kept for what may still be looked at as a dead letter; a
            // delivered one's is not written (it would double the row: the event's body is
            // kept anyway).
            columns.payloads.push(match o.transition {
                Transition::Delivered => None,
                _ => o.payload.as_deref(),
            });
            columns
                .statuses
                .push(o.attempt.as_ref().and_then(|a| a.status));
            columns
                .errors
                .push(o.attempt.as_ref().and_then(|a| a.error.as_deref()));
            let delivered = o
                .attempt
                .as_ref()
                .filter(|_| o.transition == Transition::Delivered);
            columns.started.push(delivered.map(|a| a.started_at));
            columns.durations.push(delivered.map(|a| a.duration_ms));
            columns
                .headers
                .push(delivered.and_then(|a| a.response_headers.as_ref().map(|h| h.to_string())));
            columns
                .bodies
                .push(delivered.and_then(|a| a.response_body.as_deref()));
        }
        columns
    }

    /// The update of claimed deliveries, each guarded by `owner`'s lease.
    fn update(&self, owner: Uuid) -> Query<'_, Updated> {
        self.bind(sqlx::query_as(
            "UPDATE deliveries d SET
                 state = u.state,
                 lease_owner = NULL, lease_expires_at = NULL,
                 attempts = CASE WHEN u.untried THEN d.attempts - 1 ELSE d.attempts END,
                 next_attempt_at = now() + make_interval(secs => u.after_ms / 1000.0),
                 dead_reason = u.reason,
                 dead_at = CASE WHEN u.state = 'dead' THEN now() END,
                 finalized_at = CASE WHEN u.state IN ('delivered', 'dead') THEN now() END,
                 last_status = CASE WHEN u.untried THEN d.last_status ELSE u.status END,
                 last_error = CASE WHEN u.untried THEN d.last_error ELSE u.error END,
                 payload = COALESCE(u.payload, d.payload),
                 holds_group = CASE
                     WHEN NOT d.holds_group OR u.state = 'delivered' THEN false
                     WHEN u.state = 'dead' THEN COALESCE(
                         (SELECT t.ordering_on_dead = 'block' FROM targets t WHERE t.id = d.target_ref),
                         false)
                     ELSE true
                 END,
                 delivered_attempt = CASE
                     WHEN u.started_at IS NULL THEN NULL
                     -- Its first try ever (`attempts` counts the tries since the last redrive,
                     -- this one included): no earlier try has a row to be numbered after.
                     WHEN d.attempts = 1 AND d.redrive_count = 0 THEN 1
                     ELSE COALESCE(
                         (SELECT max(x.attempt) FROM delivery_attempts x WHERE x.delivery_id = d.id),
                         0) + 1
                 END,
                 delivered_started_at = u.started_at,
                 delivered_duration_ms = u.duration_ms,
                 delivered_response_headers = u.headers::jsonb,
                 delivered_response_body = u.body
             FROM UNNEST($1::uuid[], $2::text[], $3::float8[], $4::text[], $5::bool[], $6::text[],
                         $7::int4[], $8::text[], $9::timestamptz[], $10::int4[], $11::text[], $12::text[])
                  AS u(id, state, after_ms, reason, untried, payload, status, error, started_at,
                       duration_ms, headers, body)
             -- Held by `owner` (so in flight: the table's check ties a lease owner to that state).
             -- Naming the state here would let the planner read the in-flight index — every
             -- delivery in flight and every dead entry since the last vacuum — and join that with
             -- the outcomes, where a primary-key lookup per outcome is what it takes (93 µs an
             -- outcome against 27 at 5,000 events/s, BENCHMARKS.md).
             WHERE d.id = u.id AND d.lease_owner = $13
             RETURNING d.id, d.target_ref, d.group_key, d.holds_group",
        ))
        .bind(owner)
    }

    /// The rows of handed-over deliveries (every outcome here is one), as their transitions
    /// leave them; none where a rescue made one first. Their try counts unless untried, and it
    /// was their first.
    fn insert(&self) -> Query<'_, (DeliveryId,)> {
        let made = || self.handed.iter();
        self.bind(sqlx::query_as(
            "INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state,
                                     attempts, next_attempt_at, dead_reason, dead_at, finalized_at,
                                     last_status, last_error, payload, delivered_attempt,
                                     delivered_started_at, delivered_duration_ms,
                                     delivered_response_headers, delivered_response_body,
                                     budget_started_at)
             SELECT u.id, u.event_id, u.bus, u.rule_name, u.target_id, u.target_ref, u.state,
                    CASE WHEN u.untried THEN 0 ELSE 1 END,
                    now() + make_interval(secs => u.after_ms / 1000.0),
                    u.reason, CASE WHEN u.state = 'dead' THEN now() END,
                    CASE WHEN u.state IN ('delivered', 'dead') THEN now() END,
                    CASE WHEN NOT u.untried THEN u.status END,
                    CASE WHEN NOT u.untried THEN u.error END,
                    u.payload, CASE WHEN u.started_at IS NOT NULL THEN 1 END,
                    u.started_at, u.duration_ms, u.headers::jsonb, u.body, u.budget_started_at
             FROM UNNEST($1::uuid[], $2::text[], $3::float8[], $4::text[], $5::bool[], $6::text[],
                         $7::int4[], $8::text[], $9::timestamptz[], $10::int4[], $11::text[], $12::text[],
                         $13::uuid[], $14::text[], $15::text[], $16::text[], $17::uuid[],
                         $18::timestamptz[])
                  AS u(id, state, after_ms, reason, untried, payload, status, error, started_at,
                       duration_ms, headers, body, event_id, bus, rule_name, target_id, target_ref,
                       budget_started_at)
             ON CONFLICT (id) DO NOTHING
             RETURNING id",
        ))
        .bind(made().map(|h| h.event_id).collect::<Vec<_>>())
        .bind(made().map(|h| h.bus.as_str()).collect::<Vec<_>>())
        .bind(made().map(|h| h.rule_name.as_str()).collect::<Vec<_>>())
        .bind(made().map(|h| h.target_id.as_str()).collect::<Vec<_>>())
        .bind(made().map(|h| h.target_ref).collect::<Vec<_>>())
        .bind(made().map(|h| h.received_at).collect::<Vec<_>>())
    }
}

/// Disables a target that answered 410 Gone.
pub async fn disable_target(
    pool: &PgPool,
    target: TargetRef,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE targets SET disabled_at = now(), disabled_reason = $2 WHERE id = $1 AND disabled_at IS NULL",
    )
    .bind(target)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Re-enables a target and returns its held deliveries to the queue; how many were released.
pub async fn enable_target(conn: &mut PgConnection, target: TargetRef) -> Result<u64, sqlx::Error> {
    sqlx::query("UPDATE targets SET disabled_at = NULL, disabled_reason = NULL WHERE id = $1")
        .bind(target)
        .execute(&mut *conn)
        .await?;
    let released = sqlx::query(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = now()
         WHERE target_ref = $1 AND state = 'held'",
    )
    .bind(target)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    notify::deliveries_made_due(conn, released).await?;
    Ok(released)
}

/// The last error of a delivery returned to the queue because its lease expired (a claim's, a
/// handed-over delivery's own, or its process's hand-over lease).
pub const LEASE_EXPIRED: &str = "the lease expired before the attempt finished";

/// Returns deliveries whose lease expired (their worker or process died) to the queue. The try
/// that was under way stays counted.
pub async fn rescue_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
             next_attempt_at = now(), last_error = $1
         WHERE state = 'in_flight' AND lease_expires_at < now()",
    )
    .bind(LEASE_EXPIRED)
    .execute(pool)
    .await?
    .rows_affected())
}

/// At shutdown: returns this owner's unfinished deliveries to the queue, uncounted.
pub async fn release(pool: &PgPool, owner: Uuid) -> Result<u64, sqlx::Error> {
    let released = sqlx::query(
        "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_expires_at = NULL,
             attempts = attempts - 1, next_attempt_at = now()
         WHERE state = 'in_flight' AND lease_owner = $1",
    )
    .bind(owner)
    .execute(pool)
    .await?
    .rows_affected();
    if released > 0 {
        let mut conn = pool.acquire().await?;
        notify::notify(&mut conn, notify::DELIVERIES_DUE, "").await?;
    }
    Ok(released)
}

/// How long until the earliest pending delivery is due (zero if one is due now); `None` when
/// none is pending.
pub async fn next_due_in(pool: &PgPool) -> Result<Option<Duration>, sqlx::Error> {
    // Not GREATEST(…, 0) in SQL: it skips NULL, so an empty queue read as "due now" and an
    // idle worker looked again every 5 ms.
    let seconds: Option<f64> = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM (min(next_attempt_at) - now()))::float8
         FROM deliveries WHERE state = 'pending'",
    )
    .fetch_one(pool)
    .await?;
    Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// Gives Postgres its first statistics of the hot tables once they have `min_changes` rows
/// written, unless it has some already (an `ANALYZE`, by autovacuum or anyone); says whether
/// every one of them has statistics now, so the caller can stop asking.
///
/// Why: a statement's cached plan is made again only when the statistics change. A new
/// installation's outcome batches made theirs on an empty, never analyzed `deliveries`, and kept
/// reading the whole table for each batch (11,000 rows for 9 outcomes) until the first
/// autoanalyze, up to a minute later (BENCHMARKS.md, "Fifth session").
pub async fn first_statistics(pool: &PgPool, min_changes: i64) -> Result<bool, sqlx::Error> {
    let tables: Vec<(String, bool, i64)> = sqlx::query_as(
        "SELECT relname::text, last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL,
                n_mod_since_analyze
         FROM pg_stat_user_tables WHERE relid IN ('deliveries'::regclass, 'events'::regclass)",
    )
    .fetch_all(pool)
    .await?;
    let mut all = true;
    for (table, analyzed, changes) in tables {
        if analyzed {
            continue;
        }
        // The statement names the table by a literal of our own, never by what was read.
        let statement = match table.as_str() {
            "deliveries" => "ANALYZE deliveries",
            "events" => "ANALYZE events",
            _ => continue,
        };
        if changes < min_changes {
            all = false;
            continue;
        }
        sqlx::query(statement).execute(pool).await?;
        tracing::info!(
            table,
            rows_written = changes,
            "gave Postgres its first statistics of the table"
        );
    }
    Ok(all)
}
