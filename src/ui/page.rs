//! What every page shares: the frame ([`Chrome`]), the error path ([`PageError`], rendered as the
//! error page), CSRF checks, and the small formatting helpers.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Session;
use crate::state::AppState;
use crate::store;
use crate::store::events::StoredAttempt;
use crate::store::overview::Overview;

/// Longest text shown in a table cell; the detail page shows everything.
pub const CELL: usize = 120;

/// What every page's frame shows.
pub struct Chrome {
    pub overview: Overview,
    pub csrf: String,
    pub section: &'static str,
    /// The session's token may change things (and see tokens and the audit log).
    pub admin: bool,
}

/// A page, or the error page that replaces it. `?` turns any error into the logged, opaque 500.
pub type Page = Result<Response, PageError>;

/// Boxed: a `Response` is large, and every handler returns this on the error path.
pub struct PageError(Box<Response>);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl<E: std::error::Error + 'static> From<E> for PageError {
    fn from(error: E) -> PageError {
        match store::fault(&error) {
            Some(store::Fault::RefusedText) => refuse(
                StatusCode::BAD_REQUEST,
                "A text in the request contains a NUL character, which cannot be stored.",
            ),
            Some(store::Fault::Unavailable) => unavailable(),
            None => PageError(Box::new(db_error(error))),
        }
    }
}

/// The database cannot serve the page now.
pub fn unavailable() -> PageError {
    let mut page = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is unavailable; reload in a moment.",
    );
    page.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(crate::api::problem::RETRY_AFTER_SECONDS),
    );
    PageError(Box::new(page))
}

/// A refused form's problems in one line: each field (its pointer without the leading `/`) and
/// why, as a form's error notice shows them.
pub fn problems(errors: &crate::domain::ValidationErrors) -> String {
    errors
        .0
        .iter()
        .map(|e| format!("{} {}", e.pointer.trim_start_matches('/'), e.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A refusal with its own status and words.
pub fn refuse(status: StatusCode, message: &str) -> PageError {
    PageError(Box::new(error_page(status, message)))
}

pub async fn chrome(
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
        admin: session.principal.may(crate::auth::Scope::Admin),
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

pub fn render(template: &impl Template) -> Page {
    Ok(Html(template.render()?).into_response())
}

/// Refuses a form whose CSRF token is not the session's.
pub fn check_csrf(session: &Session, sent: &str) -> Result<(), PageError> {
    if sent.is_empty() || sent != session.csrf {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "the form is stale or was not sent from this page; reload and try again",
        ));
    }
    Ok(())
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

pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

pub fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

/// The time ranges list filters offer: key in the URL, label, length in seconds.
const RANGES: [(&str, &str, i64); 4] = [
    ("1h", "last hour", 3600),
    ("24h", "last 24 hours", 86_400),
    ("7d", "last 7 days", 604_800),
    ("30d", "last 30 days", 2_592_000),
];

/// The ranges as a filter's select shows them (key, label).
pub fn ranges() -> Vec<(&'static str, &'static str)> {
    RANGES.iter().map(|(k, label, _)| (*k, *label)).collect()
}

/// When the range named by `key` starts (`None`: any time).
pub fn range_start(key: &str) -> Option<OffsetDateTime> {
    RANGES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, _, seconds)| OffsetDateTime::now_utc() - time::Duration::seconds(*seconds))
}

/// `key=value&…` of the pairs whose value is not empty, values URL-encoded (a list's filters
/// as its links keep them).
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The link to the next page of a list: its filters' `query` and the `cursor` to go on from.
pub fn with_cursor(query: &str, cursor: &str) -> String {
    match query {
        "" => format!("cursor={cursor}"),
        query => format!("{query}&cursor={cursor}"),
    }
}

/// The trimmed text, unless it is empty.
pub fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    #[serde(default)]
    pub notice: String,
}

/// One try as the dead-letter and event pages show it.
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

impl From<&StoredAttempt> for AttemptView {
    fn from(a: &StoredAttempt) -> AttemptView {
        let headers = a
            .response_headers
            .as_ref()
            .and_then(|h| h.as_object().cloned())
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
