//! The rules of a bus, one rule with its targets' health, and re-enabling a disabled target.

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
use super::{Session, pretty_json};
use crate::audit::{self, Action, Actor};
use crate::domain::InputTransform;
use crate::state::AppState;
use crate::store;
use crate::store::dead_letters;

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

pub async fn list(
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

pub async fn detail(
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
                InputTransform::Event => "the whole event".into(),
                InputTransform::Constant(text) => {
                    format!("constant {}", truncate(text, CELL))
                }
                InputTransform::Path(path) => format!("input_path {path}"),
                InputTransform::Transformer { .. } => "input_transformer".into(),
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
    let resource = audit::target_resource(&bus, &rule, &target);
    let detail = serde_json::json!({ "released": released });
    let actor = Actor::of(&session.principal);
    audit::record(&mut tx, &actor, Action::TargetEnable, &resource, detail).await?;
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
