//! Signing in with an API token, and out.

use std::net::SocketAddr;

use askama::Template;
use axum::Extension;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use rand::RngCore;
use serde::Deserialize;

use super::page::{CsrfForm, Page, check_csrf, render};
use super::{COOKIE, SESSION_TTL, Session, session_cookie};
use crate::audit::{self, Action, Actor};
use crate::auth::{Principal, Scope, Verdict, sha256};
use crate::state::AppState;
use crate::store;

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

pub async fn form(Query(query): Query<NextQuery>) -> Page {
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

pub async fn login(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(form): Form<LoginForm>,
) -> Page {
    let next = safe_next(form.next.as_deref()).to_owned();
    let token = form.token.trim();
    // An empty form is no guess: it is not counted against the address.
    let verdict = if token.is_empty() {
        Verdict::Refused
    } else {
        let address = connection.map(|c| c.0.ip());
        state.auth.verdict(address, token).await?
    };
    let principal = match verdict {
        Verdict::Accepted(p) if p.may(Scope::Read) && p.buses.is_none() => p,
        other => {
            let (status, message, retry_after) = refusal(&other);
            let mut response = render(&LoginPage {
                next: &next,
                error: Some(&message),
            })?;
            *response.status_mut() = status;
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            return Ok(response);
        }
    };
    let mut id = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut csrf = [0u8; 16];
    rand::rng().fill_bytes(&mut csrf);
    let csrf: String = csrf.iter().map(|b| format!("{b:02x}")).collect();
    let mut tx = state.pool.begin().await?;
    store::sessions::create(
        &mut tx,
        &sha256(&id),
        &csrf,
        &principal.token_sha256,
        SESSION_TTL,
    )
    .await?;
    let actor = Actor::of(&principal);
    audit::record(
        &mut tx,
        &actor,
        Action::SessionSignIn,
        "ui",
        serde_json::Value::Null,
    )
    .await?;
    tx.commit().await?;
    let secure = if state.behind_tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Why the UI does not admit this sign-in: the status, the words, and for a throttled address
/// the seconds to wait. The UI needs `read` or `admin`, on every bus: its pages show every bus.
fn refusal(verdict: &Verdict) -> (StatusCode, String, Option<u64>) {
    match verdict {
        Verdict::Refused => (
            StatusCode::UNAUTHORIZED,
            "That token is not valid.".to_owned(),
            None,
        ),
        Verdict::Throttled(wait) => {
            let seconds = wait.as_secs().max(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many wrong tokens came from this address; try again in {seconds} s."),
                Some(seconds),
            )
        }
        Verdict::Accepted(Principal {
            buses: Some(buses),
            name,
            ..
        }) => (
            StatusCode::FORBIDDEN,
            format!(
                "Token {name:?} is limited to the buses {}: the UI shows every bus and needs a \
                 token that is not limited to buses.",
                buses.join(", ")
            ),
            None,
        ),
        Verdict::Accepted(p) => (
            StatusCode::FORBIDDEN,
            format!(
                "Token {:?} has the `{}` scope: the UI needs a token with the `read` or `admin` \
                 scope.",
                p.name,
                p.scope.as_str()
            ),
            None,
        ),
    }
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
