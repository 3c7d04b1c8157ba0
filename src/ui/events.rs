//! Events: the search (the filters of `GET /v1/events` in the URL, keyset pages) and the event
//! trace (an event, the rules it matched, its deliveries and their attempts).

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::page::{
    AttemptView, Chrome, Page, chrome, non_empty, query_string, range_start, ranges, render,
    rfc3339, with_cursor,
};
use super::{Session, pretty_json};
use crate::api::events::SearchIn;
use crate::domain::EventId;
use crate::state::AppState;
use crate::store;
use crate::store::event_search::{self, EventCursor};

pub struct DeliveryView {
    pub id: String,
    pub rule: String,
    pub target: String,
    pub state: String,
    pub attempts: Vec<AttemptView>,
    pub dead: bool,
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    chrome: Chrome,
    id: String,
    found: bool,
    bus: String,
    received_at: String,
    event: String,
    matched_rules: Vec<String>,
    /// The trace id, the event's span and the producer's span ("" when none).
    trace: (String, String, String),
    /// What the detail broke when its bus validated in `warn` mode: the schema version and the
    /// violations (none when it broke nothing).
    schema: (i32, Vec<crate::schema::Violation>),
    deliveries: Vec<DeliveryView>,
}

/// An event's stored `schema_violations`.
#[derive(Deserialize)]
struct Flagged {
    version: i32,
    violations: Vec<crate::schema::Violation>,
}

/// The page's query: an event id opens its trace; else the search's filters.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct EventQuery {
    #[serde(default)]
    id: String,
    #[serde(default)]
    bus: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    detail_type: String,
    #[serde(default)]
    trace_id: String,
    /// `yes`, `no` or empty (either).
    #[serde(default)]
    matched: String,
    /// A key of the shared ranges, or empty (any time).
    #[serde(default)]
    range: String,
    #[serde(default)]
    cursor: String,
}

impl EventQuery {
    /// The filters as a query string (without the cursor).
    fn query(&self) -> String {
        query_string(&[
            ("bus", self.bus.trim()),
            ("source", self.source.trim()),
            ("detail_type", self.detail_type.trim()),
            ("trace_id", self.trace_id.trim()),
            ("matched", self.matched.trim()),
            ("range", self.range.trim()),
        ])
    }
}

pub struct EventRow {
    pub id: String,
    pub received_at: String,
    pub bus: String,
    pub source: String,
    pub detail_type: String,
    pub matched_rules: Vec<String>,
    pub deliveries: i32,
    pub trace_id: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct SearchPage {
    chrome: Chrome,
    params: EventQuery,
    query: String,
    /// What is wrong with a filter ("" when nothing).
    problem: String,
    rows: Vec<EventRow>,
    next_page: Option<String>,
    ranges: Vec<(&'static str, &'static str)>,
}

/// `/ui/events`: the trace of `?id=`, else the search.
pub async fn events(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<EventQuery>,
) -> Page {
    if query.id.trim().is_empty() {
        search(state, session, query).await
    } else {
        trace(state, session, query).await
    }
}

async fn search(state: AppState, session: Session, params: EventQuery) -> Page {
    let chrome = chrome(&state, &session, "events").await?;
    let filter = SearchIn {
        bus: non_empty(&params.bus),
        source: non_empty(&params.source),
        detail_type: non_empty(&params.detail_type),
        since: range_start(&params.range).map(rfc3339),
        until: None,
        trace_id: non_empty(&params.trace_id),
        matched: match params.matched.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
    }
    .parse();
    let mut page = SearchPage {
        chrome,
        query: params.query(),
        params,
        problem: String::new(),
        rows: Vec::new(),
        next_page: None,
        ranges: ranges(),
    };
    let filter = match filter {
        Ok(filter) => filter,
        Err(error) => {
            page.problem = format!("{}: {}", error.pointer.replace('_', "-"), error.detail);
            return render(&page);
        }
    };
    let after = EventCursor::decode(&page.params.cursor);
    let mut conn = state.pool.acquire().await?;
    let mut items = event_search::search(&mut conn, &filter, after, PAGE + 1).await?;
    page.next_page = store::page_end(&mut items, PAGE as usize)
        .map(EventCursor::after)
        .map(|cursor| with_cursor(&page.query, &cursor.encode()));
    page.rows = items
        .into_iter()
        .map(|e| EventRow {
            id: e.id.to_string(),
            received_at: rfc3339(e.received_at),
            bus: e.bus,
            source: e.source,
            detail_type: e.detail_type,
            matched_rules: e.matched_rules,
            deliveries: e.deliveries,
            trace_id: e.trace_id.unwrap_or_default(),
        })
        .collect();
    render(&page)
}

const PAGE: i64 = 50;

async fn trace(state: AppState, session: Session, query: EventQuery) -> Page {
    let chrome = chrome(&state, &session, "events").await?;
    let id = query.id.trim().to_owned();
    let mut page = EventPage {
        chrome,
        id: id.clone(),
        found: false,
        bus: String::new(),
        received_at: String::new(),
        event: String::new(),
        matched_rules: Vec::new(),
        trace: Default::default(),
        schema: Default::default(),
        deliveries: Vec::new(),
    };
    if let Ok(event_id) = id.parse::<EventId>() {
        let mut conn = state.pool.acquire().await?;
        if let Some(trace) = store::events::trace(&mut conn, event_id).await? {
            page.found = true;
            page.bus = trace.event.bus.clone();
            page.received_at = rfc3339(trace.event.received_at);
            page.event = pretty_json(&trace.event.body);
            page.matched_rules = trace.event.matched_rules.clone();
            if let Some(flagged) = trace
                .event
                .schema_violations
                .as_deref()
                .and_then(|text| serde_json::from_str::<Flagged>(text).ok())
            {
                page.schema = (flagged.version, flagged.violations);
            }
            if let Some(span) = trace.event.span() {
                page.trace = (
                    span.trace_id,
                    span.span_id,
                    span.parent_id.unwrap_or_default(),
                );
            }
            page.deliveries = trace
                .deliveries
                .iter()
                .map(|(d, attempts)| DeliveryView {
                    id: d.id.to_string(),
                    rule: d.rule_name.clone(),
                    target: d.target_id.clone(),
                    state: d.state.clone(),
                    dead: d.state == "dead",
                    attempts: attempts.iter().map(AttemptView::from).collect(),
                })
                .collect();
        }
    }
    render(&page)
}
