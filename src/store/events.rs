//! Events and the deliveries ingest creates for them; the event trace.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::trace::EventSpan;
use crate::domain::{DeliveryId, EventId, TargetRef};

/// One accepted event, ready to be stored.
#[derive(Debug)]
pub struct NewEvent {
    pub id: EventId,
    pub bus: String,
    /// The envelope as matched and delivered.
    pub body: String,
    pub source: String,
    pub detail_type: String,
    pub time: OffsetDateTime,
    /// Every rule that matched (JSON array text).
    pub matched_rules: String,
    /// The deliveries created with it (the trace reads them by id).
    pub delivery_ids: Vec<DeliveryId>,
    /// Its place in a trace: its own span, a child of the producer's.
    pub span: EventSpan,
    /// The archives that keep it.
    pub archives: Vec<Uuid>,
    /// What its detail broke, when its bus validates in `warn` mode (JSON text).
    pub schema_violations: Option<String>,
}

/// One delivery of an event to a target.
#[derive(Debug)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub bus: String,
    pub event_id: EventId,
    pub rule_name: String,
    pub target_id: String,
    pub target_ref: TargetRef,
    /// For an ordered target, the group key the event gave.
    pub group: Option<String>,
}

impl NewDelivery {
    /// Whether it may be stored leased: an ordered delivery waits for its group's turn.
    pub fn leasable(&self) -> bool {
        self.group.is_none()
    }

    /// What makes its row, when it is handed over with its event received at `received_at`.
    pub fn handed(&self, received_at: OffsetDateTime) -> super::handover::Handed {
        super::handover::Handed {
            id: self.id,
            event_id: self.event_id,
            bus: self.bus.clone(),
            rule_name: self.rule_name.clone(),
            target_id: self.target_id.clone(),
            target_ref: self.target_ref,
            received_at,
        }
    }
}

/// Deliveries given to the caller's own workers: the `first` leasable ones
/// ([`NewDelivery::leasable`]), their first try counted (the delivery engine's grant says how
/// many). Under the hand-over lease `handover` while it is held (migration 0028), they are
/// listed in their events and get no row until their outcome; otherwise they are stored in
/// flight, leased to `owner` for `lease`.
#[derive(Debug, Clone, Copy)]
pub struct LeasedTo {
    pub owner: Uuid,
    pub lease: std::time::Duration,
    pub first: usize,
    pub handover: Option<Uuid>,
}

/// What [`insert`] did, for the caller to act on once it is committed.
#[derive(Debug, Clone, Copy)]
pub struct Inserted {
    /// Whether it stored pending deliveries: the caller announces them
    /// ([`super::notify::Announcer`], or [`super::notify::notify`] inside its transaction).
    pub due: bool,
    /// The count of target changes its snapshot saw (migration 0027): the delivery engine's
    /// cache of targets is good for it up to that count.
    pub targets_version: i64,
    /// Whether the leased deliveries were handed over without rows ([`LeasedTo::handover`]
    /// was held); else they were stored in flight.
    pub handed: bool,
    /// The events' `received_at` (the database's clock).
    pub received_at: OffsetDateTime,
}

/// Writes events and their deliveries (of any buses) in ONE statement (data-modifying CTEs):
/// atomic on its own, so the caller needs no transaction and pays one round trip. When it
/// returns, the events are durable. Deliveries covered by `leased` go to the caller's own
/// workers, which send them without a claim: listed in their events, without rows, under the
/// hand-over lease when the statement finds it ([`LeasedTo::handover`]; it locks the lease's row
/// until its commit, so a rescue of the lease waits for it), else stored in flight under the
/// caller's lease. The rest are pending. Every column travels as an array with one element per
/// row.
///
/// New pending deliveries are due at once, or `defer` later (a replay's, so that live
/// deliveries due meanwhile are claimed before them).
///
/// An ordered delivery counts in its group's row (`delivery_groups`, locked in key order, so
/// concurrent writers never deadlock on each other): the first one of an idle group is its head
/// (pending), the others queue behind it, numbered in acknowledgement order.
pub async fn insert(
    conn: &mut PgConnection,
    events: &[NewEvent],
    deliveries: &[NewDelivery],
    leased: Option<LeasedTo>,
    defer: std::time::Duration,
) -> Result<Inserted, sqlx::Error> {
    if events.is_empty() {
        return Ok(Inserted {
            due: false,
            targets_version: 0,
            handed: false,
            received_at: OffsetDateTime::now_utc(),
        });
    }
    let first = leased.map_or(0, |l| l.first);
    let mut leasable_seen = 0;
    let is_leased: Vec<bool> = deliveries
        .iter()
        .map(|d| {
            let leased = d.leasable() && leasable_seen < first;
            leasable_seen += usize::from(d.leasable());
            leased
        })
        .collect();
    let due = is_leased.iter().any(|leased| !leased);
    // Per group: its bus and how many of these deliveries join it; per delivery, its place.
    let mut groups: BTreeMap<(TargetRef, &str), (&str, i64)> = BTreeMap::new();
    let mut places: Vec<Option<i64>> = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        places.push(d.group.as_deref().map(|key| {
            let (_, n) = groups.entry((d.target_ref, key)).or_insert((&d.bus, 0));
            *n += 1;
            *n
        }));
    }
    let joining: Vec<i64> = deliveries
        .iter()
        .map(|d| {
            d.group
                .as_deref()
                .and_then(|key| groups.get(&(d.target_ref, key)))
                .map_or(0, |(_, n)| *n)
        })
        .collect();
    let lease = |i: usize| leased.filter(|_| is_leased[i]);
    let kept: Vec<(Uuid, &NewEvent)> = events
        .iter()
        .flat_map(|e| e.archives.iter().map(move |a| (*a, e)))
        .collect();
    // Per event, what makes the rows of its deliveries handed over (if the lease holds).
    let handed: Vec<Option<String>> = match leased.and_then(|l| l.handover) {
        None => vec![None; events.len()],
        Some(_) => {
            let mut per_event: HashMap<EventId, Vec<&NewDelivery>> = HashMap::new();
            for (d, _) in deliveries.iter().zip(&is_leased).filter(|(_, l)| **l) {
                per_event.entry(d.event_id).or_default().push(d);
            }
            events
                .iter()
                .map(|e| {
                    per_event
                        .get(&e.id)
                        .map(|h| super::handover::handed_column(h.iter().copied()))
                })
                .collect()
        }
    };
    let (_, _, targets_version, handed_over, received_at): (i64, i64, i64, bool, OffsetDateTime) =
        sqlx::query_as(
        "WITH lease AS (
             -- Held until the commit: a rescue of the lease waits for this statement.
             SELECT id FROM handover_leases WHERE id = $34 FOR KEY SHARE
         ), stored_events AS (
             INSERT INTO events (id, bus, body, source, detail_type, event_time, matched_rules, delivery_ids,
                                 traceparent, trace_parent_id, tracestate, schema_violations,
                                 handed_to, handed)
             SELECT u.id, u.bus, u.body, u.source, u.detail_type, u.event_time, u.matched::jsonb,
                    u.delivery_ids::uuid[], u.traceparent, u.trace_parent_id, u.tracestate,
                    u.schema_violations, l.id, CASE WHEN l.id IS NOT NULL THEN u.handed END
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::timestamptz[], $7::text[], $8::text[], $19::text[], $20::text[], $21::text[],
                         $33::text[], $35::text[])
                  AS u(id, bus, body, source, detail_type, event_time, matched, delivery_ids,
                       traceparent, trace_parent_id, tracestate, schema_violations, handed)
                  LEFT JOIN lease l ON u.handed IS NOT NULL
             RETURNING 1
         ), stored_groups AS (
             INSERT INTO delivery_groups AS g (target_ref, group_key, bus, owed, last_seq)
             SELECT u.target_ref, u.group_key, u.bus, u.n, u.n
             FROM UNNEST($22::uuid[], $23::text[], $24::text[], $25::int8[])
                  AS u(target_ref, group_key, bus, n)
             -- The order every statement locks groups in (their primary key's).
             ORDER BY u.target_ref, u.group_key COLLATE \"C\"
             ON CONFLICT (target_ref, group_key) DO UPDATE
                 SET owed = g.owed + EXCLUDED.owed, last_seq = g.last_seq + EXCLUDED.last_seq
             RETURNING g.target_ref, g.group_key, g.owed, g.last_seq
         ), stored_deliveries AS (
             INSERT INTO deliveries (id, event_id, bus, rule_name, target_id, target_ref, state,
                                     attempts, lease_owner, lease_expires_at, group_key,
                                     group_seq, holds_group, next_attempt_at)
             SELECT u.id, u.event_id, u.bus, u.rule_name, u.target_id, u.target_ref,
                    CASE WHEN u.group_key IS NULL THEN u.state
                         -- The group owed nothing before: its first new delivery leads.
                         WHEN g.owed = u.group_n AND u.group_place = 1 THEN 'pending'
                         ELSE 'queued' END,
                    u.attempts, u.lease_owner, now() + make_interval(secs => u.lease_seconds),
                    u.group_key, g.last_seq - u.group_n + u.group_place,
                    COALESCE(g.owed = u.group_n AND u.group_place = 1, false),
                    now() + make_interval(secs => $32)
             FROM UNNEST($9::uuid[], $10::uuid[], $11::text[], $12::text[], $13::text[],
                         $14::uuid[], $15::text[], $16::int4[], $17::uuid[], $18::float8[],
                         $26::text[], $27::int8[], $28::int8[])
                  AS u(id, event_id, bus, rule_name, target_id, target_ref, state, attempts,
                       lease_owner, lease_seconds, group_key, group_place, group_n)
             LEFT JOIN stored_groups g
                  ON g.target_ref = u.target_ref AND g.group_key = u.group_key
             -- Handed over: no row until the outcome.
             WHERE u.state <> 'in_flight' OR NOT EXISTS (SELECT 1 FROM lease)
             RETURNING 1
         ), archived AS (
             -- now(): the events' received_at, the same transaction's time.
             INSERT INTO archive_events (archive_id, bus, received_at, event_id)
             SELECT u.archive_id, u.bus, now(), u.event_id
             FROM UNNEST($29::uuid[], $30::text[], $31::uuid[]) AS u(archive_id, bus, event_id)
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM stored_events),
                (SELECT count(*) FROM stored_deliveries),
                (SELECT version FROM target_changes),
                EXISTS (SELECT 1 FROM lease),
                now()",
    )
    .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.bus.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.body.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.source.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.detail_type.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.time).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.matched_rules.as_str()).collect::<Vec<_>>())
    // Arrays of different lengths do not nest in one SQL array: each travels as its literal.
    .bind(events.iter().map(|e| uuid_array_literal(&e.delivery_ids)).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.id).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.event_id).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.bus.as_str()).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.rule_name.as_str()).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.target_id.as_str()).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.target_ref).collect::<Vec<_>>())
    .bind(is_leased.iter().map(|&l| if l { "in_flight" } else { "pending" }).collect::<Vec<_>>())
    .bind(is_leased.iter().map(|&l| i32::from(l)).collect::<Vec<_>>())
    .bind((0..deliveries.len()).map(|i| lease(i).map(|l| l.owner)).collect::<Vec<_>>())
    .bind((0..deliveries.len()).map(|i| lease(i).map(|l| l.lease.as_secs_f64())).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.span.traceparent()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.span.parent_id.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.span.tracestate.as_deref()).collect::<Vec<_>>())
    .bind(groups.keys().map(|(target, _)| *target).collect::<Vec<_>>())
    .bind(groups.keys().map(|(_, key)| *key).collect::<Vec<_>>())
    .bind(groups.values().map(|(bus, _)| *bus).collect::<Vec<_>>())
    .bind(groups.values().map(|(_, n)| *n).collect::<Vec<_>>())
    .bind(deliveries.iter().map(|d| d.group.as_deref()).collect::<Vec<_>>())
    .bind(&places)
    .bind(&joining)
    .bind(kept.iter().map(|(archive, _)| *archive).collect::<Vec<_>>())
    .bind(kept.iter().map(|(_, e)| e.bus.as_str()).collect::<Vec<_>>())
    .bind(kept.iter().map(|(_, e)| e.id).collect::<Vec<_>>())
    .bind(defer.as_secs_f64())
    .bind(events.iter().map(|e| e.schema_violations.as_deref()).collect::<Vec<_>>())
    .bind(leased.and_then(|l| l.handover))
    .bind(&handed)
    .fetch_one(conn)
    .await?;
    Ok(Inserted {
        due,
        targets_version,
        handed: handed_over,
        received_at,
    })
}

/// `{id,id,...}`: a `uuid[]` literal.
fn uuid_array_literal(ids: &[DeliveryId]) -> String {
    let mut text = String::with_capacity(2 + ids.len() * 37);
    text.push('{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{id}");
    }
    text.push('}');
    text
}

/// A stored event, as the trace shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: EventId,
    pub bus: String,
    pub body: String,
    pub received_at: OffsetDateTime,
    #[sqlx(json)]
    pub matched_rules: Vec<String>,
    pub delivery_ids: Vec<DeliveryId>,
    /// The event's span (`None` for events stored before trace context).
    pub traceparent: Option<String>,
    pub trace_parent_id: Option<String>,
    pub tracestate: Option<String>,
    /// What its detail broke, when its bus validated in `warn` mode (JSON text).
    pub schema_violations: Option<String>,
}

/// A delivery's state, as the trace shows it.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredDelivery {
    pub id: DeliveryId,
    pub rule_name: String,
    pub target_id: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub dead_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub finalized_at: Option<OffsetDateTime>,
    /// For an ordered target: the delivery's group key.
    pub group_key: Option<String>,
}

/// One recorded try of a delivery.
#[derive(Debug, sqlx::FromRow)]
pub struct StoredAttempt {
    pub delivery_id: DeliveryId,
    pub attempt: i32,
    pub started_at: OffsetDateTime,
    pub duration_ms: i32,
    pub status: Option<i32>,
    #[sqlx(json(nullable))]
    pub response_headers: Option<serde_json::Value>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// The columns of [`StoredAttempt`], for every query that reads attempts.
pub(super) const ATTEMPT_COLUMNS: &str =
    "delivery_id, attempt, started_at, duration_ms, status, response_headers, response_body, error";

impl StoredEvent {
    /// The event's place in a trace, if it was stored with one.
    pub fn span(&self) -> Option<EventSpan> {
        let traceparent = self.traceparent.as_deref()?;
        EventSpan::stored(
            traceparent,
            self.trace_parent_id.clone(),
            self.tracestate.clone(),
        )
    }
}

/// An event with its deliveries and their attempts.
#[derive(Debug)]
pub struct Trace {
    pub event: StoredEvent,
    pub deliveries: Vec<(StoredDelivery, Vec<StoredAttempt>)>,
}

pub async fn trace(conn: &mut PgConnection, id: EventId) -> Result<Option<Trace>, sqlx::Error> {
    let event: Option<StoredEvent> = sqlx::query_as(
        "SELECT id, bus, body, received_at, matched_rules, delivery_ids, traceparent,
                trace_parent_id, tracestate, schema_violations
         FROM events WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(event) = event else {
        return Ok(None);
    };
    // A delivery handed over at ingest has no row until its outcome (migration 0028): until
    // then it is in flight on its first try.
    let deliveries: Vec<StoredDelivery> = sqlx::query_as(
        "SELECT id, rule_name, target_id, state, attempts, next_attempt_at, last_status,
                last_error, dead_reason, created_at, finalized_at, group_key
         FROM deliveries WHERE id = ANY($1)
         UNION ALL
         SELECT (h.value->>0)::uuid, h.value->>1, h.value->>2, 'in_flight', 1, e.received_at,
                NULL, NULL, NULL, e.received_at, NULL, NULL
         FROM events e, jsonb_array_elements(e.handed::jsonb) AS h
         WHERE e.id = $2
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = (h.value->>0)::uuid)
         ORDER BY rule_name, target_id",
    )
    .bind(&event.delivery_ids)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    // A delivered delivery keeps the try that delivered in its own row (migration 0024).
    let mut attempts: Vec<StoredAttempt> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE delivery_id = ANY($1)
         UNION ALL
         SELECT id, delivered_attempt, delivered_started_at, delivered_duration_ms, last_status,
                delivered_response_headers, delivered_response_body, NULL
         FROM deliveries WHERE id = ANY($1) AND delivered_attempt IS NOT NULL
         ORDER BY delivery_id, attempt"
    )))
    .bind(&event.delivery_ids)
    .fetch_all(&mut *conn)
    .await?;
    let deliveries = deliveries
        .into_iter()
        .map(|delivery| {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut attempts)
                .into_iter()
                .partition(|a| a.delivery_id == delivery.id);
            attempts = rest;
            (delivery, mine)
        })
        .collect();
    Ok(Some(Trace { event, deliveries }))
}

/// A recent event of a bus, with its envelope: what a rule's dry run matches.
#[derive(Debug, sqlx::FromRow)]
pub struct RecentEvent {
    pub id: EventId,
    pub received_at: OffsetDateTime,
    pub source: String,
    pub detail_type: String,
    pub body: String,
}

/// The bus's most recent stored events (at most `limit`), newest first.
pub async fn recent(
    conn: &mut PgConnection,
    bus: &str,
    limit: i64,
) -> Result<Vec<RecentEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, received_at, source, detail_type, body FROM events
         WHERE bus = $1 ORDER BY received_at DESC LIMIT $2",
    )
    .bind(bus)
    .bind(limit)
    .fetch_all(conn)
    .await
}
