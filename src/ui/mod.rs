//! The admin UI at `/ui`: server-rendered pages (askama templates compiled into the binary, a
//! little vanilla JavaScript for local times and confirmations, no build step, no CDN).
//!
//! Access: a login form takes an API token and sets an HttpOnly, SameSite=Strict session cookie
//! (only its SHA-256 is stored, so any process can check it). Every page needs the session; every
//! form that changes something carries the session's CSRF token. Everything from events and
//! responses is rendered as escaped text.

mod audit;
mod connections;
mod dead_letters;
mod events;
mod login;
mod overview;
mod page;
mod pattern_tester;
mod replays;
mod rule_editor;
mod rules;
mod schemas;
mod tokens;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::auth::{Principal, Scope, sha256};
use crate::pattern::Json;
use crate::state::AppState;
use crate::store;

pub const COOKIE: &str = "sy_session";

/// The page that answers when the database cannot serve the UI now (503, Retry-After).
pub fn unavailable_page() -> Response {
    page::unavailable().into_response()
}
/// How long a UI session lasts.
pub const SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/overview/charts", get(overview::charts))
        .route("/ui/dead-letters", get(dead_letters::list))
        .route("/ui/dead-letters/action", post(dead_letters::bulk_action))
        .route("/ui/dead-letters/{id}", get(dead_letters::detail))
        .route("/ui/dead-letters/{id}/redrive", post(dead_letters::redrive))
        .route("/ui/dead-letters/{id}/discard", post(dead_letters::discard))
        .route("/ui/rules", get(rules::list))
        .route("/ui/rules/{bus}/{rule}", get(rules::detail))
        .route(
            "/ui/rule-editor/{bus}",
            get(rule_editor::new).post(rule_editor::submit),
        )
        .route("/ui/rule-editor/{bus}/{rule}", get(rule_editor::edit))
        .route("/ui/rule-check/{bus}", post(rule_editor::check))
        .route("/ui/rules/{bus}/{rule}/state", post(rule_editor::set_state))
        .route("/ui/rules/{bus}/{rule}/delete", post(rule_editor::delete))
        .route("/ui/schemas", get(schemas::catalog))
        .route(
            "/ui/schemas/{bus}/{source}/{detail_type}",
            get(schemas::event_type),
        )
        .route(
            "/ui/schemas/{bus}/{source}/{detail_type}/accept",
            post(schemas::accept),
        )
        .route(
            "/ui/schemas/{bus}/{source}/{detail_type}/discard",
            post(schemas::discard),
        )
        .route(
            "/ui/rules/{bus}/{rule}/targets/{target}/enable",
            post(rules::enable_target),
        )
        .route(
            "/ui/rules/{bus}/{rule}/targets/{target}/groups",
            get(rules::groups),
        )
        .route(
            "/ui/pattern-tester",
            get(pattern_tester::form).post(pattern_tester::test),
        )
        .route("/ui/events", get(events::events))
        .route("/ui/archives", get(replays::archives))
        .route("/ui/replays", get(replays::replays))
        .route("/ui/replays/{name}/cancel", post(replays::cancel))
        .route("/ui/tokens", get(tokens::list).post(tokens::create))
        .route(
            "/ui/connections",
            get(connections::list).post(connections::save_connection),
        )
        .route(
            "/ui/connections/{name}/delete",
            post(connections::delete_connection),
        )
        .route("/ui/api-destinations", post(connections::save_destination))
        .route(
            "/ui/api-destinations/{name}/delete",
            post(connections::delete_destination),
        )
        .route("/ui/tokens/{id}/revoke", post(tokens::revoke))
        .route("/ui/audit", get(audit::list))
        .route("/ui/logout", post(login::logout))
        .route_layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .merge(pages)
        .route("/ui/login", get(login::form).post(login::login))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .layer(middleware::map_response(security_headers))
}

/// Every UI answer: scripts, styles and frames only from the UI itself (the pages use no inline
/// script or style), never framed, no type sniffing, no referrer beyond the site.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The signed-in session, for handlers.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_sha256: [u8; 32],
    pub csrf: String,
    /// The token that opened the session, as it is now.
    pub principal: Principal,
}

pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

async fn require_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let to_login = |request: &Request| {
        let next = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/ui".into());
        let target = format!("/ui/login?next={}", page::url_encode(&next));
        Redirect::to(&target).into_response()
    };
    let Some(id) = session_cookie(request.headers()) else {
        return to_login(&request);
    };
    let id_sha256 = sha256(&id);
    let session = match live_session(&state, id_sha256).await {
        Ok(Some(session)) => session,
        Ok(None) => return to_login(&request),
        Err(error) => return error.into_response(),
    };
    // A read token's session looks; only an admin's changes anything. Signing out, testing a
    // pattern and checking one in the rule editor (which change nothing, like the API's
    // test-event-pattern) are posts too.
    const CHANGE_NOTHING: [&str; 2] = ["/ui/logout", "/ui/pattern-tester"];
    let path = request.uri().path();
    if request.method() == Method::POST
        && !CHANGE_NOTHING.contains(&path)
        && !path.starts_with("/ui/rule-check/")
        && let Err(refusal) = require_admin(&session)
    {
        return refusal.into_response();
    }
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// What only an admin's session may do or see: changes, tokens, the audit log.
pub fn require_admin(session: &Session) -> Result<(), page::PageError> {
    if session.principal.may(Scope::Admin) {
        return Ok(());
    }
    Err(page::refuse(
        StatusCode::FORBIDDEN,
        &format!(
            "This needs a token with the `admin` scope; this session's token {:?} has `{}`.",
            session.principal.name,
            session.principal.scope.as_str()
        ),
    ))
}

/// The session with this id, if it has not expired and the token that opened it is still
/// accepted (not revoked; for the configured admin token, not rotated).
async fn live_session(
    state: &AppState,
    id_sha256: [u8; 32],
) -> Result<Option<Session>, page::PageError> {
    let mut conn = state.pool.acquire().await?;
    let Some((csrf, token_sha256)) = store::sessions::find(&mut conn, &id_sha256).await? else {
        return Ok(None);
    };
    drop(conn);
    let Ok(token_sha256) = <[u8; 32]>::try_from(token_sha256.as_slice()) else {
        return Ok(None);
    };
    Ok(state
        .auth
        .by_digest(token_sha256)
        .await?
        .map(|principal| Session {
            id_sha256,
            csrf,
            principal,
        }))
}

async fn css() -> Response {
    asset(include_str!("assets/app.css"), "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(
        include_str!("assets/app.js"),
        "text/javascript; charset=utf-8",
    )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// JSON text indented for reading, numbers exactly as stored; text that is not JSON as it is.
pub fn pretty_json(text: &str) -> String {
    match Json::parse(text) {
        Ok(json) => {
            let mut out = String::with_capacity(text.len() * 2);
            write_pretty(&json, 0, &mut out);
            out
        }
        Err(_) => text.to_owned(),
    }
}

fn write_pretty(json: &Json, depth: usize, out: &mut String) {
    let indent = |out: &mut String, depth: usize| out.extend(std::iter::repeat_n("  ", depth));
    match json {
        Json::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_pretty(item, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        Json::Object(members) if !members.is_empty() => {
            out.push_str("{\n");
            for (i, (key, value)) in members.iter().enumerate() {
                indent(out, depth + 1);
                out.push_str(&Json::String(key.clone()).to_string());
                out.push_str(": ");
                write_pretty(value, depth + 1, out);
                out.push_str(if i + 1 < members.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_json_keeps_numbers_and_order() {
        assert_eq!(
            pretty_json(r#"{"b":1.50,"a":[1,{"x":"<y>"}],"e":{},"f":[]}"#),
            "{\n  \"b\": 1.50,\n  \"a\": [\n    1,\n    {\n      \"x\": \"<y>\"\n    }\n  ],\n  \"e\": {},\n  \"f\": []\n}"
        );
        assert_eq!(pretty_json("not json"), "not json");
    }
}
