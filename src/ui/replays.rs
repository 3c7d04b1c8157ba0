//! Archives and replays in the UI: the archives of a bus with what they hold, and the replays
//! with their progress, each still working with a button to cancel it (admin sessions).

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::page::{
    CELL, Chrome, CsrfForm, NoticeQuery, Page, check_csrf, chrome, refuse, render, rfc3339,
    truncate, url_encode,
};
use super::{Session, require_admin};
use crate::audit::Actor;
use crate::state::AppState;
use crate::store;

const PAGE: i64 = 100;

pub struct ArchiveRow {
    pub name: String,
    pub description: String,
    pub pattern: String,
    pub retention: String,
    pub events: i64,
}

#[derive(Template)]
#[template(path = "archives.html")]
struct ArchivesPage {
    chrome: Chrome,
    buses: Vec<String>,
    bus: String,
    archives: Vec<ArchiveRow>,
}

#[derive(Deserialize)]
pub struct BusQuery {
    bus: Option<String>,
}

pub async fn archives(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<BusQuery>,
) -> Page {
    let chrome = chrome(&state, &session, "archives").await?;
    let mut conn = state.pool.acquire().await?;
    let buses = store::buses::list(&mut conn).await?;
    let bus = query
        .bus
        .filter(|b| !b.contains('\0'))
        .unwrap_or_else(|| "default".into());
    let archives = store::archives::list(&mut conn, &bus)
        .await?
        .into_iter()
        .map(|a| ArchiveRow {
            pattern: a
                .event_pattern
                .map_or_else(|| "every event".to_owned(), |p| truncate(&p, CELL)),
            retention: match a.retention_days {
                0 => "for ever".to_owned(),
                days => format!("{days} days"),
            },
            events: a.event_count,
            name: a.name,
            description: a.description,
        })
        .collect();
    render(&ArchivesPage {
        chrome,
        buses: buses.into_iter().map(|b| b.name).collect(),
        bus,
        archives,
    })
}

pub struct ReplayRow {
    pub name: String,
    pub source: String,
    pub destination: String,
    pub window: String,
    pub state: String,
    pub active: bool,
    pub done: i64,
    /// 0 when the total is not known yet (or is 0).
    pub total: i64,
    pub progress: String,
    pub last_event_time: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "replays.html")]
struct ReplaysPage {
    chrome: Chrome,
    replays: Vec<ReplayRow>,
    notice: String,
}

pub async fn replays(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<NoticeQuery>,
) -> Page {
    let chrome = chrome(&state, &session, "replays").await?;
    let mut conn = state.pool.acquire().await?;
    let rows = store::replays::list(&mut conn, None, None, PAGE).await?;
    let replays = rows
        .into_iter()
        .map(|r| {
            let total = r.total.unwrap_or(0);
            ReplayRow {
                active: store::replays::ACTIVE.contains(&r.state.as_str()),
                progress: match r.total {
                    Some(total) if total > 0 => {
                        format!("{} of {total} ({}%)", r.done, r.done * 100 / total)
                    }
                    Some(_) => "nothing in the window".to_owned(),
                    None => "not started".to_owned(),
                },
                source: format!("{} / {}", r.bus, r.archive),
                destination: match &r.rules {
                    Some(rules) => format!("{} (rules {})", r.destination_bus, rules.join(", ")),
                    None => r.destination_bus.clone(),
                },
                window: format!("{} – {}", rfc3339(r.window_from), rfc3339(r.window_to)),
                last_event_time: r.cursor_received_at.map(rfc3339).unwrap_or_default(),
                reason: r.reason.unwrap_or_default(),
                state: r.state,
                done: r.done,
                total,
                name: r.name,
            }
        })
        .collect();
    render(&ReplaysPage {
        chrome,
        replays,
        notice: query.notice,
    })
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    require_admin(&session)?;
    let notice =
        match crate::replay::cancel(&state.pool, &Actor::of(&session.principal), &name).await? {
            Ok(row) => format!("Cancelled {name} after {} events.", row.done),
            Err(Some(row)) => format!("{name} had ended already ({}).", row.state),
            Err(None) => return Err(refuse(StatusCode::NOT_FOUND, "There is no such replay.")),
        };
    Ok(Redirect::to(&format!("/ui/replays?notice={}", url_encode(&notice))).into_response())
}
