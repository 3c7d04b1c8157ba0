//! The pattern tester: one pattern against one event, nothing stored ([`pattern::test`]); with a
//! bus chosen, also what the schemas of the event types the pattern selects say against it.

use askama::Template;
use axum::Extension;
use axum::extract::{Form, State};
use serde::Deserialize;

use super::Session;
use super::page::{Chrome, Page, check_csrf, chrome, render};
use crate::pattern::{self, TestOutcome};
use crate::state::AppState;

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
    buses: Vec<String>,
    /// The bus whose schemas the pattern is checked against ("" for none).
    bus: String,
    warnings: Vec<crate::schema::rules::RuleWarning>,
}

async fn bus_names(state: &AppState) -> Result<Vec<String>, crate::store::StoreError> {
    let mut conn = state.pool.acquire().await?;
    Ok(crate::store::buses::list(&mut conn)
        .await?
        .into_iter()
        .map(|b| b.name)
        .collect())
}

pub async fn form(State(state): State<AppState>, Extension(session): Extension<Session>) -> Page {
    let chrome = chrome(&state, &session, "pattern-tester").await?;
    render(&PatternTesterPage {
        chrome,
        pattern: "{\n  \"source\": [\"shop\"],\n  \"detail\": {\n    \"total\": [{\"numeric\": [\">\", 100]}]\n  }\n}".into(),
        event: "{\n  \"source\": \"shop\",\n  \"detail-type\": \"Order Placed\",\n  \"detail\": {\"total\": 250}\n}".into(),
        outcome: String::new(),
        message: String::new(),
        pointer: String::new(),
        buses: bus_names(&state).await?,
        bus: String::new(),
        warnings: Vec::new(),
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
    #[serde(default)]
    bus: String,
}

pub async fn test(
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
    let warnings = match (form.bus.is_empty(), pattern::parse(&form.pattern)) {
        (false, Ok(parsed)) => {
            let mut conn = state.pool.acquire().await?;
            crate::api::schemas::rule_warnings(&mut conn, &form.bus, &parsed).await?
        }
        _ => Vec::new(),
    };
    render(&PatternTesterPage {
        chrome,
        pattern: form.pattern,
        event: form.event,
        outcome: outcome.to_owned(),
        message,
        pointer,
        buses: bus_names(&state).await?,
        bus: form.bus,
        warnings,
    })
}
