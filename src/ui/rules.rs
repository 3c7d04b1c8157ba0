//! The rules of a bus, one rule with its targets' health, re-enabling a disabled target, and
//! the delivery groups of an ordered target.

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
    /// Its dead letters of the last 24 hours, when there are any ("1000+" past the count's cap).
    pub dead_last_day: Option<String>,
    pub ordering: Option<OrderingView>,
}

/// An ordered target's grouping and how its groups stand.
pub struct OrderingView {
    pub group_by: String,
    pub on_dead: &'static str,
    /// Groups that owe deliveries, and how many of them are blocked by a dead letter.
    pub owing: i64,
    pub blocked: i64,
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
    let target_ids: Vec<&str> = record.rule.targets.iter().map(|t| t.id.as_str()).collect();
    let recent = dead_letters::recent_by_target(&mut conn, &bus, &name, &target_ids).await?;
    let mut orderings = Vec::with_capacity(record.rule.targets.len());
    for (t, s) in record.rule.targets.iter().zip(&record.target_states) {
        orderings.push(match &t.ordering {
            Some(ordering) => {
                let (owing, blocked) = store::groups::count(&mut conn, s.id).await?;
                Some(OrderingView {
                    group_by: ordering.group_by.clone(),
                    on_dead: ordering.on_dead.as_str(),
                    owing,
                    blocked,
                })
            }
            None => None,
        });
    }
    let targets = record
        .rule
        .targets
        .iter()
        .zip(&record.target_states)
        .zip(orderings)
        .map(|((t, s), ordering)| TargetView {
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
            dead_last_day: match recent.get(t.id.as_str()).copied().unwrap_or(0) {
                0 => None,
                n if n > dead_letters::RECENT_COUNTED_UP_TO => {
                    Some(format!("{}+", dead_letters::RECENT_COUNTED_UP_TO))
                }
                n => Some(n.to_string()),
            },
            ordering,
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

const GROUPS_PAGE: i64 = 100;

pub struct GroupRow {
    pub key: String,
    pub state: &'static str,
    pub owed: i64,
    pub head_id: String,
    pub head_event: String,
    pub head_attempts: i32,
    /// The last answer or error, for people.
    pub last: String,
    pub dead_reason: String,
    pub next_attempt_at: String,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    chrome: Chrome,
    bus: String,
    rule: String,
    target: String,
    state: String,
    groups: Vec<GroupRow>,
    /// The query string of the next page, if there is one.
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct GroupsQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    after: Option<String>,
}

/// The groups of an ordered target that owe deliveries, blocked ones first to find.
pub async fn groups(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, rule, target)): Path<(String, String, String)>,
    Query(query): Query<GroupsQuery>,
) -> Page {
    let chrome = chrome(&state, &session, "rules").await?;
    let mut conn = state.pool.acquire().await?;
    let id = store::rules::target_ref(&mut conn, &bus, &rule, &target)
        .await?
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "There is no such target."))?;
    let wanted = store::groups::GroupState::parse(&query.state);
    let after = query.after.filter(|a| !a.contains('\0'));
    let mut rows =
        store::groups::list(&mut conn, id, wanted, after.as_deref(), GROUPS_PAGE + 1).await?;
    let next = store::page_end(&mut rows, GROUPS_PAGE as usize).map(|last| {
        format!(
            "state={}&after={}",
            url_encode(wanted.map_or("", |w| w.as_str())),
            url_encode(&last.group_key)
        )
    });
    let groups = rows
        .into_iter()
        .map(|g| GroupRow {
            state: g.state().as_str(),
            owed: g.owed,
            head_id: g.head_id.to_string(),
            head_event: g.head_event_id.to_string(),
            head_attempts: g.head_attempts,
            last: match (g.head_last_status, &g.head_last_error) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(error)) => truncate(error, CELL),
                (None, None) => String::new(),
            },
            dead_reason: g.head_dead_reason.clone().unwrap_or_default(),
            next_attempt_at: rfc3339(g.head_next_attempt_at),
            key: g.group_key,
        })
        .collect();
    render(&GroupsPage {
        chrome,
        bus,
        rule,
        target,
        state: wanted.map_or("", |w| w.as_str()).to_owned(),
        groups,
        next,
    })
}
