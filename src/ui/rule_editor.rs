//! Writing rules in the UI: create, edit, enable or disable, and delete (admin sessions, CSRF
//! like every form, saved and audited by the API's own [`save`] and [`remove`]). The pattern is
//! checked as it is typed ([`check`], a JSON endpoint the page's script calls): its error with
//! the pointer, the warnings of the schemas of the event types it selects, and a dry run against
//! the bus's most recent stored events — how many of them the rule would have matched, and a
//! few of them — before anything is saved.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::page::{
    Chrome, CsrfForm, Page, PageError, check_csrf, chrome, refuse, render, rfc3339, url_encode,
};
use super::{Session, pretty_json, require_admin};
use crate::api::rules::{Saved, remove, save, targets_as_input};
use crate::api::schemas::rule_warnings;
use crate::audit::Actor;
use crate::domain::{self, FieldError, RuleName, RuleState};
use crate::pattern::{self, RuleSet};
use crate::schema::rules::RuleWarning;
use crate::state::AppState;
use crate::store::{self, StoreError};

/// How many of the bus's most recent events a dry run reads.
pub const DRY_RUN_EVENTS: i64 = 1000;
/// How many of the matched ones it shows.
const DRY_RUN_EXAMPLES: usize = 5;

#[derive(Template)]
#[template(path = "rule_editor.html")]
struct EditorPage {
    chrome: Chrome,
    bus: String,
    /// Editing an existing rule (its name cannot change); else creating one.
    editing: bool,
    name: String,
    description: String,
    state: String,
    pattern: String,
    targets: String,
    /// Why the last save was refused, each at its pointer in the rule.
    errors: Vec<FieldError>,
    /// The pattern's check, as the script would show it (for the first view and without script).
    check: Check,
}

/// What the editor says of a pattern.
#[derive(Debug, Default, Serialize)]
pub struct Check {
    /// Why the pattern is not valid: its pointer and EventBridge's words.
    error: Option<PatternProblem>,
    warnings: Vec<RuleWarning>,
    dry_run: Option<DryRun>,
}

#[derive(Debug, Serialize)]
struct PatternProblem {
    pointer: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct DryRun {
    checked: usize,
    matched: usize,
    examples: Vec<Example>,
}

#[derive(Debug, Serialize)]
struct Example {
    id: String,
    received_at: String,
    source: String,
    detail_type: String,
}

/// Checks a pattern for the editor: parse, schema warnings, dry run on the bus's recent events.
async fn check_pattern(state: &AppState, bus: &str, text: &str) -> Result<Check, StoreError> {
    let parsed = match pattern::parse(text) {
        Ok(parsed) => parsed,
        Err(error) => {
            return Ok(Check {
                error: Some(PatternProblem {
                    message: error.aws_message(),
                    pointer: error.pointer,
                }),
                ..Check::default()
            });
        }
    };
    let mut conn = state.pool.acquire().await?;
    let warnings = rule_warnings(&mut conn, bus, &parsed).await?;
    let events = store::events::recent(&mut conn, bus, DRY_RUN_EVENTS).await?;
    drop(conn);
    let rules = RuleSet::compile(std::iter::once(((), &parsed)));
    let mut matcher = rules.matcher();
    let mut dry_run = DryRun {
        checked: events.len(),
        matched: 0,
        examples: Vec::new(),
    };
    for event in events {
        if matcher
            .matches_validated(&event.body)
            .is_ok_and(|hits| !hits.is_empty())
        {
            dry_run.matched += 1;
            if dry_run.examples.len() < DRY_RUN_EXAMPLES {
                dry_run.examples.push(Example {
                    id: event.id.to_string(),
                    received_at: rfc3339(event.received_at),
                    source: event.source,
                    detail_type: event.detail_type,
                });
            }
        }
    }
    Ok(Check {
        error: None,
        warnings,
        dry_run: Some(dry_run),
    })
}

#[derive(Deserialize)]
pub struct CheckIn {
    #[serde(default)]
    event_pattern: String,
}

/// `POST /ui/rule-check/{bus}`: the editor's check as JSON. It changes nothing; the session's
/// CSRF token comes in `X-CSRF-Token`, as a form's would.
pub async fn check(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(bus): Path<String>,
    headers: HeaderMap,
    Json(input): Json<CheckIn>,
) -> Result<Response, PageError> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    check_csrf(&session, sent)?;
    let check = check_pattern(&state, &bus, &input.event_pattern).await?;
    Ok(Json(check).into_response())
}

const NEW_PATTERN: &str = "{\n  \"source\": [\"shop\"],\n  \"detail-type\": [\"OrderPlaced\"]\n}";

/// `GET /ui/rule-editor/{bus}`: a new rule.
pub async fn new(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(bus): Path<String>,
) -> Page {
    require_admin(&session)?;
    let chrome = chrome(&state, &session, "rules").await?;
    let mut conn = state.pool.acquire().await?;
    if store::buses::get(&mut conn, &bus).await?.is_none() {
        return Err(refuse(StatusCode::NOT_FOUND, "There is no such bus."));
    }
    drop(conn);
    let check = check_pattern(&state, &bus, NEW_PATTERN).await?;
    render(&EditorPage {
        chrome,
        bus,
        editing: false,
        name: String::new(),
        description: String::new(),
        state: "enabled".into(),
        pattern: NEW_PATTERN.into(),
        targets: "[\n  {\"id\": \"hook\", \"url\": \"https://example.com/hook\"}\n]".into(),
        errors: Vec::new(),
        check,
    })
}

/// `GET /ui/rule-editor/{bus}/{rule}`: a rule to edit.
pub async fn edit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, name)): Path<(String, String)>,
) -> Page {
    require_admin(&session)?;
    let chrome = chrome(&state, &session, "rules").await?;
    let mut conn = state.pool.acquire().await?;
    let record = store::rules::get(&mut conn, &bus, &name)
        .await?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "There is no such rule."))?;
    drop(conn);
    let pattern = pretty_json(&record.rule.event_pattern);
    let description = record.rule.description.clone();
    let rule_state = record.rule.state.as_str().to_owned();
    let targets = targets_as_input(record).map_err(|_| {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the rule's targets cannot be shown",
        )
    })?;
    let check = check_pattern(&state, &bus, &pattern).await?;
    render(&EditorPage {
        chrome,
        bus,
        editing: true,
        name,
        description,
        state: rule_state,
        targets: serde_json::to_string_pretty(&targets).unwrap_or_default(),
        pattern,
        errors: Vec::new(),
        check,
    })
}

#[derive(Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    editing: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    event_pattern: String,
    #[serde(default)]
    targets: String,
}

/// `POST /ui/rule-editor/{bus}`: the form as a rule body, read by the API's parser (every error
/// at its pointer), saved by the API's save; refused, the editor again with the errors.
pub async fn submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(bus): Path<String>,
    Form(form): Form<RuleForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let mut errors = Vec::new();
    let name = RuleName::parse(form.name.trim())
        .map_err(|e| errors.push(FieldError::new("/name", e.0)))
        .ok();
    let targets = if form.targets.trim().is_empty() {
        Some(json!([]))
    } else {
        serde_json::from_str::<Value>(&form.targets)
            .map_err(|e| errors.push(FieldError::new("/targets", format!("is not JSON: {e}"))))
            .ok()
    };
    let body = json!({
        "description": form.description,
        "state": form.state,
        "event_pattern": form.event_pattern,
        "targets": targets.unwrap_or(json!([])),
    });
    let parsed = domain::parse_rule(&body.to_string())
        .map_err(|refused| errors.extend(refused.0))
        .ok();
    if let (Some(name), Some(parsed), true) = (&name, &parsed, errors.is_empty()) {
        let actor = Actor::of(&session.principal);
        match save(&state, &actor, &bus, name, parsed).await? {
            Saved::BusNotFound => {
                return Err(refuse(StatusCode::NOT_FOUND, "There is no such bus."));
            }
            Saved::Invalid(refused) => errors.extend(refused.0),
            Saved::Done {
                created, warnings, ..
            } => {
                let mut notice = format!(
                    "{} {}.",
                    if created { "Created" } else { "Saved" },
                    name.as_str()
                );
                for warning in &warnings {
                    notice.push_str(&format!(
                        " Warning at {}: {}",
                        warning.pointer, warning.message
                    ));
                }
                return Ok(Redirect::to(&format!(
                    "/ui/rules/{}/{}?notice={}",
                    url_encode(&bus),
                    url_encode(name.as_str()),
                    url_encode(&notice)
                ))
                .into_response());
            }
        }
    }
    let chrome = chrome(&state, &session, "rules").await?;
    let check = check_pattern(&state, &bus, &form.event_pattern).await?;
    let mut page = EditorPage {
        chrome,
        bus,
        editing: !form.editing.is_empty(),
        name: form.name,
        description: form.description,
        state: form.state,
        pattern: form.event_pattern,
        targets: form.targets,
        errors,
        check,
    };
    page.errors.dedup();
    let mut response = render(&page)?;
    *response.status_mut() = StatusCode::BAD_REQUEST;
    Ok(response)
}

#[derive(Deserialize)]
pub struct StateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    state: String,
}

/// `POST /ui/rules/{bus}/{rule}/state`: enable or disable a rule (saved like an edit).
pub async fn set_state(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, name)): Path<(String, String)>,
    Form(form): Form<StateForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let wanted = match form.state.as_str() {
        "enabled" => RuleState::Enabled,
        "disabled" => RuleState::Disabled,
        _ => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "A rule is enabled or disabled.",
            ));
        }
    };
    let mut conn = state.pool.acquire().await?;
    let record = store::rules::get(&mut conn, &bus, &name)
        .await?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "There is no such rule."))?;
    drop(conn);
    let rule_name = RuleName::parse(&name).map_err(|e| refuse(StatusCode::BAD_REQUEST, &e.0))?;
    let mut rule = record.rule;
    rule.state = wanted;
    save(
        &state,
        &Actor::of(&session.principal),
        &bus,
        &rule_name,
        &rule,
    )
    .await?;
    let notice = format!("{name} is {}.", wanted.as_str());
    Ok(Redirect::to(&format!(
        "/ui/rules/{}/{}?notice={}",
        url_encode(&bus),
        url_encode(&name),
        url_encode(&notice)
    ))
    .into_response())
}

/// `POST /ui/rules/{bus}/{rule}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, name)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    if !remove(&state, &Actor::of(&session.principal), &bus, &name).await? {
        return Err(refuse(StatusCode::NOT_FOUND, "There is no such rule."));
    }
    Ok(Redirect::to(&format!("/ui/rules?bus={}", url_encode(&bus))).into_response())
}
