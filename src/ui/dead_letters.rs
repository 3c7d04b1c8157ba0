//! The dead letters: the list (filters in the URL, counts per dead reason, keyset pages, bulk
//! redrive and discard), one dead letter with every attempt, and its redrive and discard.

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::page::{
    AttemptView, CELL, Chrome, CsrfForm, Page, PageError, check_csrf, chrome, non_empty,
    query_string, range_start, ranges, refuse, render, rfc3339, truncate, url_encode, with_cursor,
};
use super::{Session, pretty_json};
use crate::audit::{self, Actor};
use crate::delivery::DeadReason;
use crate::domain::DeliveryId;
use crate::domain::fields::check_text;
use crate::state::AppState;
use crate::store;
use crate::store::dead_letters::{self, Cursor, DeadLetterSummary, Filter, Selection};

const PAGE: i64 = 50;

/// A dead letter's id from the URL; an id that cannot exist is simply not found.
fn dead_letter_id(id: &str) -> Result<DeliveryId, PageError> {
    id.parse()
        .map_err(|_| refuse(StatusCode::NOT_FOUND, "There is no such dead letter."))
}

/// Back to the dead-letter list (with this filter query) showing a notice.
fn to_list(query: &str, notice: &str) -> Page {
    let sep = if query.is_empty() { "" } else { "&" };
    Ok(Redirect::to(&format!(
        "/ui/dead-letters?{query}{sep}notice={}",
        url_encode(notice)
    ))
    .into_response())
}

/// The list's filter as the URL keeps it.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    bus: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    target_id: String,
    #[serde(default)]
    dead_reason: String,
    /// `1h`, `24h`, `7d`, `30d` or empty (all time).
    #[serde(default)]
    range: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    notice: String,
}

impl ListParams {
    fn filter(&self) -> Filter {
        Filter {
            bus: non_empty(&self.bus),
            rule: non_empty(&self.rule),
            target_id: non_empty(&self.target_id),
            dead_reason: non_empty(&self.dead_reason).filter(|r| DeadReason::parse(r).is_some()),
            since: range_start(&self.range),
            until: None,
        }
    }

    /// The filter as a query string (without cursor and notice).
    fn query(&self) -> String {
        query_string(&[
            ("bus", &self.bus),
            ("rule", &self.rule),
            ("target_id", &self.target_id),
            ("dead_reason", &self.dead_reason),
            ("range", &self.range),
        ])
    }

    /// The same filter with another dead reason.
    fn with_dead_reason(&self, reason: &str) -> String {
        let mut params = self.clone();
        params.dead_reason = reason.to_owned();
        params.query()
    }
}

pub struct Row {
    pub id: String,
    pub event_id: String,
    pub bus: String,
    pub rule: String,
    pub target: String,
    pub reason: String,
    pub last: String,
    pub attempts: i32,
    pub dead_at: String,
}

impl From<&DeadLetterSummary> for Row {
    fn from(row: &DeadLetterSummary) -> Row {
        let last = match (row.last_status, &row.last_error) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(error)) => truncate(error, CELL),
            (None, None) => String::new(),
        };
        Row {
            id: row.id.to_string(),
            event_id: row.event_id.to_string(),
            bus: row.bus.clone(),
            rule: row.rule_name.clone(),
            target: row.target_id.clone(),
            reason: row.dead_reason.clone().unwrap_or_default(),
            last,
            attempts: row.attempts,
            dead_at: row.dead_at.map(rfc3339).unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "dead_letters.html")]
struct DeadLettersPage {
    chrome: Chrome,
    params: ListParams,
    query: String,
    rows: Vec<Row>,
    counts: Vec<(String, i64, String)>,
    total: i64,
    next_page: Option<String>,
    reasons: Vec<&'static str>,
    ranges: Vec<(&'static str, &'static str)>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(params): Query<ListParams>,
) -> Page {
    let chrome = chrome(&state, &session, "dead-letters").await?;
    let filter = params.filter();
    let after = Cursor::decode(&params.cursor);
    let mut conn = state.pool.acquire().await?;
    let mut items = dead_letters::list(&mut conn, &filter, after, PAGE + 1).await?;
    let query = params.query();
    let next_page = store::page_end(&mut items, PAGE as usize)
        .and_then(Cursor::after)
        .map(|cursor| with_cursor(&query, &cursor.encode()));
    // Counts per reason for the filter without its reason, so every reason stays reachable.
    let mut without_reason = filter.clone();
    without_reason.dead_reason = None;
    let counts = dead_letters::count_by_reason(&mut conn, &without_reason).await?;
    let total = match &filter.dead_reason {
        Some(reason) => counts
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n),
        None => counts.iter().map(|(_, n)| n).sum(),
    };
    let counts = counts
        .into_iter()
        .map(|(reason, n)| {
            let link = params.with_dead_reason(&reason);
            (reason, n, link)
        })
        .collect();
    render(&DeadLettersPage {
        chrome,
        rows: items.iter().map(Row::from).collect(),
        query,
        params,
        counts,
        total,
        next_page,
        reasons: DeadReason::ALL.iter().map(|r| r.as_str()).collect(),
        ranges: ranges(),
    })
}

#[derive(Template)]
#[template(path = "dead_letter.html")]
struct DeadLetterPage {
    chrome: Chrome,
    row: Row,
    event: String,
    payload: String,
    attempts: Vec<AttemptView>,
    redrive_count: i32,
}

pub async fn detail(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Page {
    let chrome = chrome(&state, &session, "dead-letters").await?;
    let uuid = dead_letter_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    match dead_letters::get(&mut conn, uuid).await? {
        Some(letter) => render(&DeadLetterPage {
            chrome,
            row: Row::from(&letter.summary),
            event: pretty_json(&letter.event),
            payload: letter
                .payload
                .as_deref()
                .map(pretty_json)
                .unwrap_or_default(),
            attempts: letter.attempts.iter().map(AttemptView::from).collect(),
            redrive_count: letter.summary.redrive_count,
        }),
        None => Err(refuse(
            StatusCode::NOT_FOUND,
            "There is no such dead letter: it may have been redriven or discarded.",
        )),
    }
}

pub async fn redrive(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let uuid = dead_letter_id(&id)?;
    let selection = Selection::Ids(vec![uuid]);
    let n = audit::redrive(&state.pool, &Actor::of(&session.principal), &selection).await?;
    to_list("", &format!("Redrove {n} dead letter(s)."))
}

#[derive(Deserialize)]
pub struct DiscardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn discard(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<DiscardForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let uuid = dead_letter_id(&id)?;
    let reason = non_empty(&form.reason);
    if let Some(Err(why)) = reason
        .as_deref()
        .map(|r| check_text(r, dead_letters::MAX_DISCARD_REASON))
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            &format!("The reason {why}."),
        ));
    }
    let selection = Selection::Ids(vec![uuid]);
    let actor = Actor::of(&session.principal);
    let n = audit::discard(&state.pool, &actor, &selection, reason.as_deref()).await?;
    to_list("", &format!("Discarded {n} dead letter(s)."))
}

/// The bulk form: `action` (redrive or discard), `scope` (selected or filter), the selected
/// `id`s, the filter's fields, and the CSRF token.
pub async fn bulk_action(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Page {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    check_csrf(&session, &get("csrf"))?;
    let params = ListParams {
        bus: get("bus"),
        rule: get("rule"),
        target_id: get("target_id"),
        dead_reason: get("dead_reason"),
        range: get("range"),
        ..ListParams::default()
    };
    let ids: Vec<DeliveryId> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let selection = if get("scope") == "filter" {
        Selection::Matching(params.filter())
    } else {
        Selection::Ids(ids)
    };
    let actor = Actor::of(&session.principal);
    const WHY: Option<&str> = Some("discarded in the admin UI");
    let notice = match get("action").as_str() {
        "redrive" => {
            let n = audit::redrive(&state.pool, &actor, &selection).await?;
            format!("Redrove {n} dead letter(s).")
        }
        "discard" => {
            let n = audit::discard(&state.pool, &actor, &selection, WHY).await?;
            format!("Discarded {n} dead letter(s).")
        }
        _ => return Err(refuse(StatusCode::BAD_REQUEST, "Unknown action.")),
    };
    to_list(&params.query(), &notice)
}
