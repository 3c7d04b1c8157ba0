//! The event trace: an event, the rules it matched, its deliveries and their attempts.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::page::{AttemptView, Chrome, Page, chrome, render, rfc3339};
use super::{Session, pretty_json};
use crate::domain::EventId;
use crate::state::AppState;
use crate::store;

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
    deliveries: Vec<DeliveryView>,
}

#[derive(Deserialize)]
pub struct EventQuery {
    #[serde(default)]
    id: String,
}

pub async fn trace(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<EventQuery>,
) -> Page {
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
