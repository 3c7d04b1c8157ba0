//! Connections and API destinations in the UI (admin sessions): the lists (never a secret), a
//! form to create or replace each, and deletion. Saved through the REST API's own functions
//! ([`crate::api::connections`]), so the checks, the sealing and the audit are the same.

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::json;

use super::Session;
use super::page::{
    Chrome, CsrfForm, NoticeQuery, Page, check_csrf, chrome, problems, render, rfc3339, url_encode,
};
use crate::api::connections::{self as api, ConnectionOut, Saved};
use crate::audit::Actor;
use crate::connections::{self, Parameters};
use crate::domain::ValidationErrors;
use crate::state::AppState;
use crate::store::{self, connections::Deleted};

pub struct ConnectionRow {
    pub name: String,
    pub kind: String,
    /// What identifies it, never the secret: the user, the header, the client and endpoint.
    pub summary: String,
    pub description: String,
    pub updated_at: String,
}

pub struct DestinationRow {
    pub name: String,
    pub connection: String,
    pub method: String,
    pub endpoint: String,
    pub rate: String,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    chrome: Chrome,
    connections: Vec<ConnectionRow>,
    destinations: Vec<DestinationRow>,
    notice: String,
    error: String,
    methods: Vec<&'static str>,
}

async fn page(state: &AppState, session: &Session, notice: String, error: String) -> Page {
    let chrome = chrome(state, session, "connections").await?;
    let mut conn = state.pool.acquire().await?;
    let mut connections = Vec::new();
    for row in store::connections::list_connections(&mut conn, "", None, 1000).await? {
        let out = ConnectionOut::try_from(row)?;
        let summary = match &out.parameters {
            Parameters::Basic { username } => format!("user {username}"),
            Parameters::ApiKey { name } => format!("header {name}"),
            Parameters::Oauth(oauth) => format!(
                "client {} at {}{}",
                oauth.client_id,
                oauth.token_endpoint,
                if oauth.scopes.is_empty() {
                    String::new()
                } else {
                    format!(" (scopes {})", oauth.scopes.join(" "))
                }
            ),
        };
        connections.push(ConnectionRow {
            name: out.name,
            kind: out.authorization_type,
            summary,
            description: out.description,
            updated_at: rfc3339(out.updated_at),
        });
    }
    let destinations = store::connections::list_destinations(&mut conn, "", None, None, 1000)
        .await?
        .into_iter()
        .map(|row| DestinationRow {
            name: row.name,
            connection: row.connection,
            method: row.http_method,
            endpoint: row.endpoint,
            rate: row
                .invocation_rate_limit_per_second
                .map(|r| format!("{r}/s"))
                .unwrap_or_default(),
        })
        .collect();
    render(&ConnectionsPage {
        chrome,
        connections,
        destinations,
        notice,
        error,
        methods: connections::DESTINATION_METHODS.to_vec(),
    })
}

pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<NoticeQuery>,
) -> Page {
    super::require_admin(&session)?;
    page(&state, &session, query.notice, String::new()).await
}

/// The page again with what was refused (400), each problem with its field.
async fn refused(state: &AppState, session: &Session, errors: ValidationErrors) -> Page {
    with_error(state, session, StatusCode::BAD_REQUEST, problems(&errors)).await
}

/// The page again, answered with `status` and showing `error`.
async fn with_error(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    error: String,
) -> Page {
    let mut response = page(state, session, String::new(), error).await?;
    *response.status_mut() = status;
    Ok(response)
}

fn back(notice: &str) -> Page {
    Ok(Redirect::to(&format!("/ui/connections?notice={}", url_encode(notice))).into_response())
}

#[derive(Deserialize)]
pub struct ConnectionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    authorization_type: String,
    /// The user, the API key's header, or the OAuth client id.
    #[serde(default)]
    principal: String,
    /// The password, the API key, or the client secret; empty keeps the stored one.
    #[serde(default)]
    secret: String,
    #[serde(default)]
    token_endpoint: String,
    /// Space-separated.
    #[serde(default)]
    scopes: String,
}

pub async fn save_connection(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<ConnectionForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    super::require_admin(&session)?;
    let secret = (!form.secret.is_empty()).then_some(form.secret.clone());
    let section = match form.authorization_type.as_str() {
        "basic" => json!({"basic": {"username": form.principal, "password": secret}}),
        "api_key" => json!({"api_key": {"name": form.principal, "value": secret}}),
        _ => json!({"oauth": {"token_endpoint": form.token_endpoint, "client_id": form.principal,
                               "client_secret": secret,
                               "scopes": form.scopes.split_whitespace().collect::<Vec<_>>()}}),
    };
    let mut body = section;
    body["authorization_type"] = form.authorization_type.clone().into();
    body["description"] = form.description.clone().into();
    let parsed = connections::parse_connection(&body.to_string());
    let connection = match checked(&form.name, Vec::new(), parsed) {
        Ok(connection) => connection,
        Err(errors) => return refused(&state, &session, errors).await,
    };
    let actor = Actor::of(&session.principal);
    let saved = api::save_connection(&state, &actor, &form.name, connection).await?;
    answer(&state, &session, saved, "connection", &form.name).await
}

/// Every problem of a form at once: those found before (`errors`), the name's and the body's.
fn checked<T>(
    name: &str,
    mut errors: Vec<crate::domain::FieldError>,
    parsed: Result<T, ValidationErrors>,
) -> Result<T, ValidationErrors> {
    if let Err(why) = connections::check_name(name) {
        errors.push(crate::domain::FieldError::new("/name", why));
    }
    match parsed {
        Ok(value) if errors.is_empty() => Ok(value),
        Ok(_) => Err(ValidationErrors(errors)),
        Err(e) => {
            errors.extend(e.0);
            Err(ValidationErrors(errors))
        }
    }
}

/// The page after a save: back to the list saying so, or the form's problems.
async fn answer<T>(
    state: &AppState,
    session: &Session,
    saved: Saved<T>,
    kind: &str,
    name: &str,
) -> Page {
    match saved {
        Saved::Invalid(errors) => refused(state, session, errors).await,
        Saved::Done { created, .. } => back(&format!(
            "{} {kind} {name}.",
            if created { "Created" } else { "Saved" }
        )),
    }
}

pub async fn delete_connection(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    super::require_admin(&session)?;
    let actor = Actor::of(&session.principal);
    match api::remove_connection(&state, &actor, &name).await? {
        Deleted::Deleted => back(&format!("Deleted connection {name}.")),
        Deleted::NotFound => back(&format!("There is no connection {name}.")),
        Deleted::InUse {
            destinations,
            targets,
        } => {
            let why = format!(
                "connection {name} is used by {destinations} API destination(s) and {targets} target(s)"
            );
            with_error(&state, &session, StatusCode::CONFLICT, why).await
        }
    }
}

#[derive(Deserialize)]
pub struct DestinationForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    connection: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    method: String,
    /// Empty: no limit.
    #[serde(default)]
    rate: String,
}

pub async fn save_destination(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(form): Form<DestinationForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    super::require_admin(&session)?;
    let mut body = json!({
        "description": form.description,
        "connection": form.connection,
        "endpoint": form.endpoint,
        "method": form.method,
    });
    let mut errors = Vec::new();
    if !form.rate.trim().is_empty() {
        match form.rate.trim().parse::<u64>() {
            Ok(rate) => body["rate_limit_per_second"] = rate.into(),
            Err(_) => errors.push(crate::domain::FieldError::new(
                "/rate_limit_per_second",
                "must be a whole number of sends per second",
            )),
        }
    }
    let parsed = connections::parse_destination(&body.to_string());
    let destination = match checked(&form.name, errors, parsed) {
        Ok(destination) => destination,
        Err(errors) => return refused(&state, &session, errors).await,
    };
    let actor = Actor::of(&session.principal);
    let saved = api::save_destination(&state, &actor, &form.name, &destination).await?;
    answer(&state, &session, saved, "API destination", &form.name).await
}

pub async fn delete_destination(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    super::require_admin(&session)?;
    let actor = Actor::of(&session.principal);
    match api::remove_destination(&state, &actor, &name).await? {
        Deleted::Deleted => back(&format!("Deleted API destination {name}.")),
        Deleted::NotFound => back(&format!("There is no API destination {name}.")),
        Deleted::InUse { targets, .. } => {
            let why = format!("API destination {name} is the endpoint of {targets} target(s)");
            with_error(&state, &session, StatusCode::CONFLICT, why).await
        }
    }
}
