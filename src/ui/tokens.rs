//! API tokens in the UI: the list (never secrets), a form to create one (its secret is shown on
//! the answer page, once, and never put in a URL), and revocation. Admin sessions only.

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::Session;
use super::page::{
    Chrome, CsrfForm, NoticeQuery, Page, check_csrf, chrome, refuse, render, rfc3339, url_encode,
};
use crate::audit::Actor;
use crate::auth::{self, Issued, NewToken, Scope, TokenKind};
use crate::state::AppState;
use crate::store;

pub struct TokenRow {
    pub id: String,
    pub name: String,
    /// An AWS access key's id (empty for a bearer token).
    pub access_key_id: String,
    pub scope: String,
    pub buses: String,
    pub created_at: String,
    pub revoked_at: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    notice: String,
    error: String,
    /// The token just created: shown this once.
    created: Option<(String, String)>,
    scopes: Vec<&'static str>,
}

async fn page(
    state: &AppState,
    session: &Session,
    notice: String,
    error: String,
    created: Option<(String, String)>,
) -> Page {
    let chrome = chrome(state, session, "tokens").await?;
    let mut conn = state.pool.acquire().await?;
    let tokens = store::tokens::list(&mut conn)
        .await?
        .into_iter()
        .rev()
        .map(|row| TokenRow {
            id: row.id.to_string(),
            name: row.name,
            access_key_id: row.access_key_id.unwrap_or_default(),
            scope: row.scope,
            buses: row.buses.map(|b| b.join(", ")).unwrap_or_default(),
            created_at: rfc3339(row.created_at),
            revoked_at: row.revoked_at.map(rfc3339).unwrap_or_default(),
        })
        .collect();
    render(&TokensPage {
        chrome,
        tokens,
        notice,
        error,
        created,
        scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
    })
}

pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<NoticeQuery>,
) -> Page {
    super::require_admin(&session)?;
    page(&state, &session, query.notice, String::new(), None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    scope: String,
    /// Bus names separated by commas or spaces; empty: every bus.
    #[serde(default)]
    buses: String,
    /// `bearer` (the default) or `aws_access_key`.
    #[serde(default)]
    kind: String,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<CreateForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let buses: Vec<String> = form
        .buses
        .split([',', ' '])
        .filter(|b| !b.is_empty())
        .map(str::to_owned)
        .collect();
    let buses = (!buses.is_empty()).then_some(buses);
    let kind = TokenKind::parse(&form.kind).unwrap_or_default();
    let new = match NewToken::check(form.name.trim().to_owned(), &form.scope, buses, kind) {
        Ok(new) => new,
        Err(errors) => {
            let why = super::page::problems(&errors);
            let mut response = page(&state, &session, String::new(), why, None).await?;
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    };
    let actor = Actor::of(&session.principal);
    let (row, issued) = auth::issue_token(&state.pool, &state.sealer, &actor, &new).await?;
    let secret = match issued {
        Issued::Bearer(token) => token,
        Issued::AccessKey { id, secret } => {
            format!("AWS_ACCESS_KEY_ID={id}\nAWS_SECRET_ACCESS_KEY={secret}")
        }
    };
    let mut response = page(
        &state,
        &session,
        String::new(),
        String::new(),
        Some((row.name, secret)),
    )
    .await?;
    // The answer holds a secret: no cache may keep it.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

pub async fn revoke(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| refuse(StatusCode::NOT_FOUND, "There is no such token."))?;
    let actor = Actor::of(&session.principal);
    let row = auth::revoke_token(&state.pool, &actor, id)
        .await?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "There is no such token."))?;
    let notice = format!("Revoked {:?}; its sessions have ended.", row.name);
    Ok(Redirect::to(&format!("/ui/tokens?notice={}", url_encode(&notice))).into_response())
}
