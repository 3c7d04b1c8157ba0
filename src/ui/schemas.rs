//! The schema catalog: a bus's event types with their latest version, mode and violations in the
//! last hour; one type's versions, a version's schema, the difference between two versions (as
//! the compatibility check sees it, both ways, and line by line) and its recent events.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::page::{Chrome, Page, chrome, refuse, render, rfc3339};
use super::{Session, pretty_json};
use crate::schema::compat::{self, Difference};
use crate::state::AppState;
use crate::store;

pub struct TypeRow {
    pub source: String,
    pub detail_type: String,
    pub latest_version: i32,
    pub compatibility: String,
    pub violations: i64,
}

#[derive(Template)]
#[template(path = "schemas.html")]
struct CatalogPage {
    chrome: Chrome,
    buses: Vec<String>,
    bus: String,
    /// The bus's settings: validation, unregistered types, default mode.
    settings: (String, String, String),
    types: Vec<TypeRow>,
}

#[derive(Deserialize)]
pub struct BusQuery {
    bus: Option<String>,
}

/// `GET /ui/schemas?bus=`.
pub async fn catalog(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<BusQuery>,
) -> Page {
    let chrome = chrome(&state, &session, "schemas").await?;
    let mut conn = state.pool.acquire().await?;
    let buses = store::buses::list(&mut conn).await?;
    let bus = query.bus.unwrap_or_else(|| "default".into());
    let row = buses
        .iter()
        .find(|b| b.name == bus)
        .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "There is no such bus."))?;
    let settings = (
        row.schema_validation.clone(),
        row.unregistered_types.clone(),
        row.schema_compatibility.clone(),
    );
    let violations = store::stats::violations_last_hour(&mut conn, &bus).await?;
    let types = store::schemas::list_types(&mut conn, &bus)
        .await?
        .into_iter()
        .map(|t| TypeRow {
            violations: violations
                .iter()
                .find(|(s, d, _)| *s == t.source && *d == t.detail_type)
                .map_or(0, |(_, _, n)| *n),
            source: t.source,
            detail_type: t.detail_type,
            latest_version: t.latest_version,
            compatibility: t.effective_compatibility,
        })
        .collect();
    render(&CatalogPage {
        chrome,
        buses: buses.into_iter().map(|b| b.name).collect(),
        bus,
        settings,
        types,
    })
}

pub struct VersionView {
    pub version: i32,
    pub created_at: String,
    pub forced: bool,
}

pub struct SampleView {
    pub id: String,
    /// The violations of its detail under the shown version ("" when it is valid).
    pub verdict: String,
}

/// Two versions compared: what the check says each way, and the schemas line by line.
pub struct DiffView {
    pub from: i32,
    pub to: i32,
    /// Differences by which `to` may refuse what `from` accepted (not BACKWARD).
    pub backward: Vec<Difference>,
    /// Differences by which `from` may refuse what `to` accepts (not FORWARD).
    pub forward: Vec<Difference>,
    /// Each line with its mark: ' ', '+' or '-'.
    pub lines: Vec<(char, String)>,
}

#[derive(Template)]
#[template(path = "schema.html")]
struct TypePage {
    chrome: Chrome,
    bus: String,
    source: String,
    detail_type: String,
    description: String,
    compatibility: String,
    violations: i64,
    versions: Vec<VersionView>,
    shown: i32,
    schema: String,
    diff: Option<DiffView>,
    samples: Vec<SampleView>,
}

#[derive(Deserialize)]
pub struct VersionQuery {
    version: Option<i32>,
    /// The version to compare with (default: the one before).
    against: Option<i32>,
}

/// How many of the type's recent events the page shows.
const SAMPLES: i64 = 10;

/// `GET /ui/schemas/{bus}/{source}/{detail_type}?version=&against=`.
pub async fn event_type(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, source, detail_type)): Path<(String, String, String)>,
    Query(query): Query<VersionQuery>,
) -> Page {
    let chrome = chrome(&state, &session, "schemas").await?;
    let not_found = || refuse(StatusCode::NOT_FOUND, "There is no such event type.");
    if [&bus, &source, &detail_type]
        .iter()
        .any(|t| t.contains('\0'))
    {
        return Err(not_found());
    }
    let mut conn = state.pool.acquire().await?;
    let row = store::schemas::get_type(&mut conn, &bus, &source, &detail_type)
        .await?
        .ok_or_else(not_found)?;
    let stored = store::schemas::versions(&mut conn, &bus, &source, &detail_type).await?;
    let shown = query.version.unwrap_or(row.latest_version);
    let schema_of = |version: i32| -> Option<Value> {
        let row = stored.iter().find(|v| v.version == version)?;
        serde_json::from_str(&row.schema).ok()
    };
    let current = schema_of(shown);
    if current.is_none() && !stored.is_empty() {
        return Err(refuse(StatusCode::NOT_FOUND, "There is no such version."));
    }
    let against = query.against.unwrap_or(shown - 1);
    let diff = match (&current, schema_of(against)) {
        (Some(to), Some(from)) if against != shown => {
            let (old, new) = (pretty(&from), pretty(to));
            let lines = similar::TextDiff::from_lines(&old, &new)
                .iter_all_changes()
                .map(|change| {
                    let mark = match change.tag() {
                        similar::ChangeTag::Equal => ' ',
                        similar::ChangeTag::Insert => '+',
                        similar::ChangeTag::Delete => '-',
                    };
                    (mark, change.value().trim_end_matches('\n').to_owned())
                })
                .collect();
            Some(DiffView {
                from: against,
                to: shown,
                backward: compat::differences(to, &from),
                forward: compat::differences(&from, to),
                lines,
            })
        }
        _ => None,
    };
    let events =
        store::schemas::recent_events(&mut conn, &bus, &source, &detail_type, SAMPLES).await?;
    let violations = store::stats::violations_last_hour(&mut conn, &bus)
        .await?
        .into_iter()
        .find(|(s, d, _)| *s == source && *d == detail_type)
        .map_or(0, |(_, _, n)| n);
    drop(conn);
    let compiled = current
        .as_ref()
        .and_then(|v| crate::schema::Schema::from_value(v.clone(), "").ok());
    let samples = events
        .into_iter()
        .map(|(id, body)| SampleView {
            id: id.to_string(),
            verdict: compiled.as_ref().map_or_else(String::new, |schema| {
                let detail = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|mut event| event.get_mut("detail").map(Value::take))
                    .unwrap_or(Value::Null);
                schema
                    .violations(&detail)
                    .iter()
                    .map(|v| format!("{} ({}): {}", v.pointer, v.keyword, v.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        })
        .collect();
    render(&TypePage {
        chrome,
        bus,
        source,
        detail_type,
        description: row.description,
        compatibility: row.effective_compatibility,
        violations,
        versions: stored
            .iter()
            .map(|v| VersionView {
                version: v.version,
                created_at: rfc3339(v.created_at),
                forced: v.forced.is_some(),
            })
            .collect(),
        shown,
        schema: current.as_ref().map(pretty).unwrap_or_default(),
        diff,
        samples,
    })
}

fn pretty(value: &Value) -> String {
    pretty_json(&value.to_string())
}
