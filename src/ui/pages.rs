//! The UI's handlers, one template each.

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rand::RngCore;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration as TimeSpan, OffsetDateTime};
use uuid::Uuid;

use super::{COOKIE, SESSION_TTL, Session, pretty_json, session_cookie};
use crate::auth::sha256;
use crate::delivery::DeadReason;
use crate::pattern::{self, TestOutcome};
use crate::state::AppState;
use crate::store::dead_letters::{self, Cursor, DeadLetterRow, Filter};
use crate::store::overview::Overview;
use crate::store::{self, events::AttemptRow};

const PAGE: i64 = 50;
/// Longest text shown in a table cell; the detail page shows everything.
const CELL: usize = 120;

/// What every page's frame shows.
pub struct Chrome {
    pub overview: Overview,
    pub csrf: String,
    pub section: &'static str,
}

/// A page, or the error page that replaces it. `?` turns any error into the logged, opaque 500.
type Page = Result<Response, PageError>;

/// Boxed: a `Response` is large, and every handler returns this on the error path.
pub struct PageError(Box<Response>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl<E: std::error::Error> From<E> for PageError {
    fn from(error: E) -> PageError {
        PageError(Box::new(db_error(error)))
    }
}

/// A refusal with its own status and words.
fn refuse(status: StatusCode, message: &str) -> PageError {
    PageError(Box::new(error_page(status, message)))
}

async fn chrome(
    state: &AppState,
    session: &Session,
    section: &'static str,
) -> Result<Chrome, PageError> {
    let mut conn = state.pool.acquire().await?;
    let overview = store::overview::overview(&mut conn).await?;
    Ok(Chrome {
        overview,
        csrf: session.csrf.clone(),
        section,
    })
}

fn db_error(error: impl std::error::Error) -> Response {
    tracing::error!(error = %crate::telemetry::error_chain(&error), "UI request failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the request failed on the server; the log has the details",
    )
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = ErrorPage {
        status: status.as_u16(),
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_owned());
    (status, Html(body)).into_response()
}

fn render(template: &impl Template) -> Page {
    Ok(Html(template.render()?).into_response())
}

/// Refuses a form whose CSRF token is not the session's.
fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    if sent.is_empty() || sent != session.csrf {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "the form is stale or was not sent from this page; reload and try again",
        ));
    }
    Ok(())
}

/// A dead letter's id from the URL; an id that cannot exist is simply not found.
fn dead_letter_id(id: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(id).map_err(|_| refuse(StatusCode::NOT_FOUND, "There is no such dead letter."))
}

/// Back to the dead-letter list (with this filter query) showing a notice.
fn to_list(query: &str, notice: &str) -> Page {
    let sep = if query.is_empty() { "" } else { "&" };
    Ok(Redirect::to(&format!("/ui?{query}{sep}notice={}", url_encode(notice))).into_response())
}

pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

// ---------------------------------------------------------------- login

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path inside the UI: never an open redirect.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with("/ui") && !next.starts_with("//") && !next.contains('\\') =>
        {
            next
        }
        _ => "/ui",
    }
}

pub async fn login_form(Query(query): Query<NextQuery>) -> Page {
    render(&LoginPage {
        next: safe_next(query.next.as_deref()),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

pub async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Page {
    let next = safe_next(form.next.as_deref()).to_owned();
    let token = form.token.trim();
    let accepted = !token.is_empty() && matches!(state.auth.accepts(token).await, Ok(true));
    if !accepted {
        let page = LoginPage {
            next: &next,
            error: Some("That token is not valid."),
        };
        let mut response = render(&page)?;
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(response);
    }
    let mut id = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut csrf = [0u8; 16];
    rand::rng().fill_bytes(&mut csrf);
    let csrf: String = csrf.iter().map(|b| format!("{b:02x}")).collect();
    let mut conn = state.pool.acquire().await?;
    store::sessions::create(&mut conn, &sha256(&id), &csrf, SESSION_TTL).await?;
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    if session_cookie(&headers).is_some()
        && let Ok(mut conn) = state.pool.acquire().await
    {
        let _ = store::sessions::delete(&mut conn, &session.id_sha256).await;
    }
    let mut response = Redirect::to("/ui/login").into_response();
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

// ---------------------------------------------------------------- dead letters

/// The list's filter as the URL keeps it.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    bus: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    reason: String,
    /// `1h`, `24h`, `7d`, `30d` or empty (all time).
    #[serde(default)]
    range: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    notice: String,
}

const RANGES: [(&str, &str, i64); 4] = [
    ("1h", "last hour", 3600),
    ("24h", "last 24 hours", 86_400),
    ("7d", "last 7 days", 604_800),
    ("30d", "last 30 days", 2_592_000),
];

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl ListParams {
    fn filter(&self) -> Filter {
        Filter {
            bus: non_empty(&self.bus),
            rule: non_empty(&self.rule),
            target: non_empty(&self.target),
            reason: non_empty(&self.reason).filter(|r| DeadReason::parse(r).is_some()),
            since: RANGES
                .iter()
                .find(|(key, _, _)| *key == self.range)
                .map(|(_, _, seconds)| OffsetDateTime::now_utc() - TimeSpan::seconds(*seconds)),
            until: None,
        }
    }

    /// The filter as a query string (without cursor and notice).
    fn query(&self) -> String {
        [
            ("bus", &self.bus),
            ("rule", &self.rule),
            ("target", &self.target),
            ("reason", &self.reason),
            ("range", &self.range),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// The same filter with another reason.
    fn with_reason(&self, reason: &str) -> String {
        let mut params = self.clone();
        params.reason = reason.to_owned();
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

impl From<&DeadLetterRow> for Row {
    fn from(row: &DeadLetterRow) -> Row {
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

pub async fn dead_letters(
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
        .map(|cursor| match query.as_str() {
            "" => format!("cursor={}", cursor.encode()),
            query => format!("{query}&cursor={}", cursor.encode()),
        });
    // Counts per reason for the filter without its reason, so every reason stays reachable.
    let mut without_reason = filter.clone();
    without_reason.reason = None;
    let counts = dead_letters::count_by_reason(&mut conn, &without_reason).await?;
    let total = match &filter.reason {
        Some(reason) => counts
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n),
        None => counts.iter().map(|(_, n)| n).sum(),
    };
    let counts = counts
        .into_iter()
        .map(|(reason, n)| {
            let link = params.with_reason(&reason);
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
        ranges: RANGES.iter().map(|(k, label, _)| (*k, *label)).collect(),
    })
}

pub struct AttemptView {
    pub number: i32,
    pub started_at: String,
    pub duration_ms: i32,
    pub status: String,
    pub ok: bool,
    pub headers: String,
    pub body: String,
    pub error: String,
}

impl From<&AttemptRow> for AttemptView {
    fn from(a: &AttemptRow) -> AttemptView {
        let headers = a
            .response_headers
            .as_ref()
            .and_then(|h| h.0.as_object().cloned())
            .map(|map| {
                map.iter()
                    .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        AttemptView {
            number: a.attempt,
            started_at: rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            status: a
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "no response".into()),
            ok: a.status.is_some_and(|s| (200..300).contains(&s)),
            headers,
            body: a.response_body.clone().unwrap_or_default(),
            error: a.error.clone().unwrap_or_default(),
        }
    }
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

pub async fn dead_letter(
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
            row: Row::from(&letter.row),
            event: pretty_json(&letter.event),
            payload: letter
                .payload
                .as_deref()
                .map(pretty_json)
                .unwrap_or_default(),
            attempts: letter.attempts.iter().map(AttemptView::from).collect(),
            redrive_count: letter.row.redrive_count,
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
    let mut conn = state.pool.acquire().await?;
    let n = dead_letters::redrive_ids(&mut conn, &[uuid]).await?;
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
    let mut conn = state.pool.acquire().await?;
    let n =
        dead_letters::discard_ids(&mut conn, &[uuid], non_empty(&form.reason).as_deref()).await?;
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
        target: get("target"),
        reason: get("reason"),
        range: get("range"),
        ..ListParams::default()
    };
    let ids: Vec<Uuid> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| Uuid::parse_str(v).ok())
        .collect();
    let by_filter = get("scope") == "filter";
    let filter = params.filter();
    let mut conn = state.pool.acquire().await?;
    const WHY: Option<&str> = Some("discarded in the admin UI");
    let notice = match (get("action").as_str(), by_filter) {
        ("redrive", true) => {
            let n = dead_letters::redrive_matching(&mut conn, &filter).await?;
            format!("Redrove {n} dead letter(s).")
        }
        ("redrive", false) => {
            let n = dead_letters::redrive_ids(&mut conn, &ids).await?;
            format!("Redrove {n} dead letter(s).")
        }
        ("discard", true) => {
            let n = dead_letters::discard_matching(&mut conn, &filter, WHY).await?;
            format!("Discarded {n} dead letter(s).")
        }
        ("discard", false) => {
            let n = dead_letters::discard_ids(&mut conn, &ids, WHY).await?;
            format!("Discarded {n} dead letter(s).")
        }
        _ => return Err(refuse(StatusCode::BAD_REQUEST, "Unknown action.")),
    };
    to_list(&params.query(), &notice)
}

// ---------------------------------------------------------------- rules

pub struct RuleRow {
    pub bus: String,
    pub name: String,
    pub state: String,
    pub description: String,
    pub pattern: String,
    pub targets: Vec<(String, bool)>,
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    chrome: Chrome,
    buses: Vec<(String, i64)>,
    bus: String,
    rules: Vec<RuleRow>,
}

#[derive(Deserialize)]
pub struct BusQuery {
    bus: Option<String>,
}

pub async fn rules(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<BusQuery>,
) -> Page {
    let chrome = chrome(&state, &session, "rules").await?;
    let mut conn = state.pool.acquire().await?;
    let buses = store::buses::list(&mut conn).await?;
    let bus = query.bus.unwrap_or_else(|| "default".into());
    let records = store::rules::list(&mut conn, &bus, "", None, 1000).await?;
    let rules = records
        .into_iter()
        .map(|r| RuleRow {
            targets: r
                .rule
                .targets
                .iter()
                .zip(&r.target_states)
                .map(|(t, s)| (t.id.to_string(), s.disabled_at.is_some()))
                .collect(),
            bus: r.bus,
            name: r.name,
            state: r.rule.state.as_str().to_owned(),
            description: r.rule.description,
            pattern: truncate(&r.rule.event_pattern, CELL),
        })
        .collect();
    render(&RulesPage {
        chrome,
        buses: buses.into_iter().map(|b| (b.name, b.rule_count)).collect(),
        bus,
        rules,
    })
}

pub struct TargetView {
    pub id: String,
    pub method: String,
    pub url: String,
    pub input: String,
    pub timeout_ms: u32,
    pub retries: u32,
    pub max_age: u32,
    pub disabled: Option<String>,
    pub dead_last_day: i64,
}

#[derive(Template)]
#[template(path = "rule.html")]
struct RulePage {
    chrome: Chrome,
    bus: String,
    name: String,
    state: String,
    description: String,
    pattern: String,
    targets: Vec<TargetView>,
    notice: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    notice: String,
}

pub async fn rule(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, name)): Path<(String, String)>,
    Query(query): Query<NoticeQuery>,
) -> Page {
    let chrome = chrome(&state, &session, "rules").await?;
    let mut conn = state.pool.acquire().await?;
    let record = store::rules::get(&mut conn, &bus, &name)
        .await?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "There is no such rule."))?;
    let recent = dead_letters::recent_by_target(&mut conn, &bus, &name).await?;
    let targets = record
        .rule
        .targets
        .iter()
        .zip(&record.target_states)
        .map(|(t, s)| TargetView {
            id: t.id.to_string(),
            method: t.method.clone(),
            url: t.url.clone(),
            input: match &t.input {
                crate::domain::InputTransform::Event => "the whole event".into(),
                crate::domain::InputTransform::Constant(text) => {
                    format!("constant {}", truncate(text, CELL))
                }
                crate::domain::InputTransform::Path(path) => format!("input_path {path}"),
                crate::domain::InputTransform::Transformer { .. } => "input_transformer".into(),
            },
            timeout_ms: t.timeout_ms,
            retries: t.retry_policy.maximum_retry_attempts,
            max_age: t.retry_policy.maximum_event_age_seconds,
            disabled: s.disabled_at.map(|at| {
                format!(
                    "{} ({})",
                    s.disabled_reason.clone().unwrap_or_default(),
                    rfc3339(at)
                )
            }),
            dead_last_day: recent.get(t.id.as_str()).copied().unwrap_or(0),
        })
        .collect();
    render(&RulePage {
        chrome,
        bus: record.bus,
        name: record.name,
        state: record.rule.state.as_str().to_owned(),
        description: record.rule.description,
        pattern: pretty_json(&record.rule.event_pattern),
        targets,
        notice: query.notice,
    })
}

pub async fn enable_target(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, rule, target)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let mut tx = state.pool.begin().await?;
    let id = store::rules::target_ref(&mut tx, &bus, &rule, &target)
        .await?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "There is no such target."))?;
    let released = store::deliveries::enable_target(&mut tx, id).await?;
    tx.commit().await?;
    let notice = format!("Enabled {target}; released {released} held deliveries.");
    Ok(Redirect::to(&format!(
        "/ui/rules/{}/{}?notice={}",
        url_encode(&bus),
        url_encode(&rule),
        url_encode(&notice)
    ))
    .into_response())
}

// ---------------------------------------------------------------- pattern tester

#[derive(Template)]
#[template(path = "pattern_tester.html")]
struct PatternTesterPage {
    chrome: Chrome,
    pattern: String,
    event: String,
    /// "match", "no-match", "invalid-pattern" or "invalid-event"; empty before a test.
    outcome: String,
    message: String,
    pointer: String,
}

pub async fn pattern_tester(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Page {
    let chrome = chrome(&state, &session, "pattern-tester").await?;
    render(&PatternTesterPage {
        chrome,
        pattern: "{\n  \"source\": [\"shop\"],\n  \"detail\": {\n    \"total\": [{\"numeric\": [\">\", 100]}]\n  }\n}".into(),
        event: "{\n  \"source\": \"shop\",\n  \"detail-type\": \"Order Placed\",\n  \"detail\": {\"total\": 250}\n}".into(),
        outcome: String::new(),
        message: String::new(),
        pointer: String::new(),
    })
}

#[derive(Deserialize)]
pub struct PatternForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pattern: String,
    #[serde(default)]
    event: String,
}

pub async fn pattern_test(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<PatternForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let chrome = chrome(&state, &session, "pattern-tester").await?;
    let (outcome, message, pointer) = match pattern::test(&form.pattern, form.event.as_bytes()) {
        TestOutcome::InvalidPattern(error) => {
            ("invalid-pattern", error.aws_message(), error.pointer)
        }
        TestOutcome::Match => (
            "match",
            "The pattern matches the event.".to_owned(),
            String::new(),
        ),
        TestOutcome::NoMatch => (
            "no-match",
            "The pattern does not match the event.".to_owned(),
            String::new(),
        ),
        TestOutcome::InvalidEvent(error) => (
            "invalid-event",
            format!("The event is not valid: {error}"),
            String::new(),
        ),
    };
    render(&PatternTesterPage {
        chrome,
        pattern: form.pattern,
        event: form.event,
        outcome: outcome.to_owned(),
        message,
        pointer,
    })
}

// ---------------------------------------------------------------- event trace

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
    deliveries: Vec<DeliveryView>,
}

#[derive(Deserialize)]
pub struct EventQuery {
    #[serde(default)]
    id: String,
}

pub async fn event_trace(
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
        deliveries: Vec::new(),
    };
    if let Ok(uuid) = Uuid::parse_str(&id) {
        let mut conn = state.pool.acquire().await?;
        if let Some(trace) = store::events::trace(&mut conn, uuid).await? {
            page.found = true;
            page.bus = trace.event.bus.clone();
            page.received_at = rfc3339(trace.event.received_at);
            page.event = pretty_json(&trace.event.body);
            page.matched_rules = trace.event.matched_rules.0.clone();
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
