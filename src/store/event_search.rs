//! Finding events: by bus, source, detail-type, time, trace id and whether they matched, newest
//! first with a keyset cursor over (received_at, id).
//!
//! The statement holds only the conditions asked for (built with sqlx's `QueryBuilder`, values
//! always bound), so each search gets the plan of its own indexes (migration 0014): a bus, with
//! or without a time range, walks `events_bus_received` backwards; a bus and a detail-type walk
//! `events_bus_type_received`; a trace id looks up the hash index `events_trace` and the primary
//! key (a trace begun here is named by its first event, migration 0026). The bus indexes end at
//! `received_at` (cheaper to write, BENCHMARKS.md): Postgres sorts each group of equal times (one
//! commit's events) by id, and takes the cursor's `received_at <= …` as the index condition.
//! Other conditions (source, matched) filter along the walk, which a time range bounds.

use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::domain::EventId;

/// Which events; every field optional.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub bus: Option<String>,
    pub source: Option<String>,
    pub detail_type: Option<String>,
    /// Received at or after.
    pub since: Option<OffsetDateTime>,
    /// Received before.
    pub until: Option<OffsetDateTime>,
    /// 32 lowercase hex digits.
    pub trace_id: Option<String>,
    /// Matched at least one rule (`true`) or none (`false`).
    pub matched: Option<bool>,
}

/// Where a page starts: after this (received_at, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor {
    pub received_at: OffsetDateTime,
    pub id: EventId,
}

impl EventCursor {
    pub fn after(row: &EventSummary) -> EventCursor {
        EventCursor {
            received_at: row.received_at,
            id: row.id,
        }
    }

    /// Opaque text for URLs ([`super::encode_cursor`]).
    pub fn encode(&self) -> String {
        super::encode_cursor(self.received_at, self.id.0)
    }

    pub fn decode(text: &str) -> Option<EventCursor> {
        let (received_at, id) = super::decode_cursor(text)?;
        Some(EventCursor {
            received_at,
            id: EventId(id),
        })
    }
}

/// An event as a search lists it (without its body).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventSummary {
    pub id: EventId,
    pub bus: String,
    pub source: String,
    pub detail_type: String,
    pub event_time: OffsetDateTime,
    pub received_at: OffsetDateTime,
    #[sqlx(json)]
    pub matched_rules: Vec<String>,
    /// How many deliveries it made.
    pub deliveries: i32,
    pub trace_id: Option<String>,
}

/// The trace id inside a stored `traceparent` (`00-<trace id>-…`); the expression of the
/// `events_trace` index, which a query must repeat exactly to use it.
const TRACE_ID: &str = "substr(traceparent, 4, 32)";

/// The predicate of the `events_trace` index (migration 0026): a trace id that is not the event's
/// own id. An event that began its trace is named by it ([`crate::domain::trace`]) and found by
/// its primary key instead.
const NOT_OWN_TRACE: &str = "substr(traceparent, 4, 32) <> replace(id::text, '-', '')";

/// A page of events, newest first: at most `limit` after `after`.
pub async fn search(
    conn: &mut PgConnection,
    filter: &EventFilter,
    after: Option<EventCursor>,
    limit: i64,
) -> Result<Vec<EventSummary>, sqlx::Error> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT id, bus, source, detail_type, event_time, received_at, matched_rules,
                cardinality(delivery_ids) AS deliveries, {TRACE_ID} AS trace_id
         FROM events WHERE true"
    ));
    if let Some(bus) = &filter.bus {
        query.push(" AND bus = ").push_bind(bus);
    }
    if let Some(source) = &filter.source {
        query.push(" AND source = ").push_bind(source);
    }
    if let Some(detail_type) = &filter.detail_type {
        query.push(" AND detail_type = ").push_bind(detail_type);
    }
    if let Some(since) = filter.since {
        query.push(" AND received_at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        query.push(" AND received_at < ").push_bind(until);
    }
    if let Some(trace_id) = &filter.trace_id {
        // The events in a trace that is not their own (the index's), and the one that began it
        // if it was begun here: the event whose id it is (32 hex digits always read as a UUID).
        // That second arm says "its own trace" in words of its own: a condition both arms
        // shared would be taken out of the OR, and neither index could serve it.
        query
            .push(format!(" AND (({TRACE_ID} = "))
            .push_bind(trace_id)
            .push(format!(" AND {NOT_OWN_TRACE})"));
        if let Ok(own) = uuid::Uuid::try_parse(trace_id) {
            query
                .push(" OR (id = ")
                .push_bind(own)
                .push(format!(" AND {TRACE_ID} = replace(id::text, '-', ''))"));
        }
        query.push(")");
    }
    match filter.matched {
        Some(true) => query.push(" AND matched_rules <> '[]'::jsonb"),
        Some(false) => query.push(" AND matched_rules = '[]'::jsonb"),
        None => &mut query,
    };
    if let Some(after) = after {
        query
            .push(" AND (received_at, id) < (")
            .push_bind(after.received_at)
            .push(", ")
            .push_bind(after.id)
            .push(")");
    }
    query
        .push(" ORDER BY received_at DESC, id DESC LIMIT ")
        .push_bind(limit);
    query.build_query_as().fetch_all(conn).await
}
