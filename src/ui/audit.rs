//! The audit log in the UI: newest first, filtered by action, actor and resource, a page at a
//! time. Admin sessions only.

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::Session;
use super::page::{CELL, Chrome, Page, chrome, render, rfc3339, truncate, url_encode};
use super::require_admin;
use crate::audit::Action;
use crate::state::AppState;
use crate::store::audit::{self, AuditFilter};

const PAGE: i64 = 100;

pub struct EntryRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<EntryRow>,
    params: AuditParams,
    actions: Vec<&'static str>,
    /// The query string of the next (older) page, if there is one.
    older: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    before: String,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(params): Query<AuditParams>,
) -> Page {
    require_admin(&session)?;
    let chrome = chrome(&state, &session, "audit").await?;
    let given = |text: &str| {
        let text = text.trim();
        (!text.is_empty() && !text.contains('\0')).then(|| text.to_owned())
    };
    let filter = AuditFilter {
        actor: given(&params.actor),
        action: given(&params.action).filter(|a| Action::parse(a).is_some()),
        resource: given(&params.resource),
        ..AuditFilter::default()
    };
    let before = params.before.parse::<i64>().ok();
    let mut conn = state.pool.acquire().await?;
    let mut rows = audit::list(&mut conn, &filter, before, PAGE + 1).await?;
    let older = crate::store::page_end(&mut rows, PAGE as usize).map(|last| {
        format!(
            "action={}&actor={}&resource={}&before={}",
            url_encode(&params.action),
            url_encode(&params.actor),
            url_encode(&params.resource),
            last.id
        )
    });
    let entries = rows
        .into_iter()
        .map(|row| EntryRow {
            at: rfc3339(row.at),
            actor: row.actor,
            action: row.action,
            resource: row.resource,
            detail: truncate(&row.detail.unwrap_or_default(), CELL),
        })
        .collect();
    render(&AuditPage {
        chrome,
        entries,
        params,
        actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
        older,
    })
}
