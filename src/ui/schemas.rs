//! The schema catalog: a bus's event types with their latest version, mode and violations in the
//! last hour; one type's versions, a version's schema, the difference between two versions (as
//! the compatibility check sees it, both ways, and line by line) and its recent events.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use axum::extract::Form;
use axum::response::{IntoResponse, Redirect};

use super::page::{
    Chrome, CsrfForm, Page, PageError, check_csrf, chrome, refuse, render, rfc3339, url_encode,
};
use super::{Session, pretty_json};
use crate::api::schemas::{DEFAULT_SAMPLE, Registration, TypePath};
use crate::audit::Actor;
use crate::schema::compat::{self, Difference};
use crate::state::AppState;
use crate::store;

pub struct TypeRow {
    pub source: String,
    pub detail_type: String,
    pub latest_version: i32,
    pub compatibility: String,
    pub violations: i64,
    /// Discovery proposes a new shape.
    pub draft: bool,
}

#[derive(Template)]
#[template(path = "schemas.html")]
struct CatalogPage {
    chrome: Chrome,
    buses: Vec<String>,
    bus: String,
    /// The bus's settings: validation, unregistered types, default mode, discovery.
    settings: (String, String, String, bool),
    types: Vec<TypeRow>,
    notice: String,
}

#[derive(Deserialize)]
pub struct BusQuery {
    bus: Option<String>,
    #[serde(default)]
    notice: String,
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
        row.schema_discovery,
    );
    let violations = store::stats::violations_last_hour(&mut conn, &bus).await?;
    let drafts = store::schemas::drafts(&mut conn, &bus).await?;
    let mut types: Vec<TypeRow> = store::schemas::list_types(&mut conn, &bus)
        .await?
        .into_iter()
        .map(|t| TypeRow {
            draft: drafts
                .iter()
                .any(|d| d.source == t.source && d.detail_type == t.detail_type),
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
    // Types discovery found before any version was registered.
    for draft in drafts {
        if !types
            .iter()
            .any(|t| t.source == draft.source && t.detail_type == draft.detail_type)
        {
            types.push(TypeRow {
                source: draft.source,
                detail_type: draft.detail_type,
                latest_version: 0,
                compatibility: settings.2.clone(),
                violations: 0,
                draft: true,
            });
        }
    }
    render(&CatalogPage {
        chrome,
        buses: buses.into_iter().map(|b| b.name).collect(),
        bus,
        settings,
        types,
        notice: query.notice,
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
    /// What discovery proposes: the schema, how many recent events the latest version refused
    /// of how many, and how it differs from the latest version.
    draft: Option<DraftView>,
    notice: String,
}

pub struct DraftView {
    pub schema: String,
    pub samples: i32,
    pub refused: i32,
    pub updated_at: String,
    pub diff: Option<DiffView>,
}

#[derive(Deserialize)]
pub struct VersionQuery {
    version: Option<i32>,
    /// The version to compare with (default: the one before).
    against: Option<i32>,
    #[serde(default)]
    notice: String,
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
    let row = match store::schemas::get_type(&mut conn, &bus, &source, &detail_type).await? {
        Some(row) => row,
        // A type discovery found before any version: its draft alone.
        None => match store::schemas::get_draft(&mut conn, &bus, &source, &detail_type).await? {
            Some(draft) => store::schemas::TypeRow {
                source: draft.source,
                detail_type: draft.detail_type,
                description: String::new(),
                compatibility: None,
                effective_compatibility: String::from("—"),
                latest_version: 0,
                created_at: draft.created_at,
                updated_at: draft.updated_at,
            },
            None => return Err(not_found()),
        },
    };
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
        (Some(to), Some(from)) if against != shown => Some(compare(against, &from, shown, to)),
        _ => None,
    };
    let draft = store::schemas::get_draft(&mut conn, &bus, &source, &detail_type)
        .await?
        .and_then(|d| {
            let value: Value = serde_json::from_str(&d.schema).ok()?;
            let latest = schema_of(row.latest_version);
            Some(DraftView {
                diff: latest
                    .map(|l| compare(row.latest_version, &l, row.latest_version + 1, &value)),
                schema: pretty(&value),
                samples: d.samples,
                refused: d.refused,
                updated_at: rfc3339(d.updated_at),
            })
        });
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
                let detail = crate::schema::detail_of(&body);
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
        draft,
        notice: query.notice,
    })
}

/// Version `from` against version `to`: the compatibility check's differences both ways and
/// the schemas line by line.
fn compare(from: i32, old: &Value, to: i32, new: &Value) -> DiffView {
    let (old_text, new_text) = (pretty(old), pretty(new));
    let lines = similar::TextDiff::from_lines(&old_text, &new_text)
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
    DiffView {
        from,
        to,
        backward: compat::differences(new, old),
        forward: compat::differences(old, new),
        lines,
    }
}

#[derive(Deserialize)]
pub struct DraftForm {
    #[serde(default)]
    csrf: String,
    /// Register even when the compatibility check refuses.
    #[serde(default)]
    force: Option<String>,
}

/// `POST /ui/schemas/{bus}/{source}/{detail_type}/accept`: the draft becomes the next version,
/// through the compatibility check (refused: the page says why).
pub async fn accept(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, source, detail_type)): Path<(String, String, String)>,
    Form(form): Form<DraftForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let path = type_path(&bus, &source, &detail_type)?;
    let actor = Actor::of(&session.principal);
    let done =
        crate::api::schemas::accept(&state, &actor, &path, form.force.is_some(), DEFAULT_SAMPLE)
            .await
            .map_err(|e| refuse(e.status, &e.detail))?;
    let notice = match done {
        Registration::Unchanged(row) => format!("The draft was version {} already.", row.version),
        Registration::Registered { version, .. } => {
            format!("Registered as version {}.", version.version)
        }
        Registration::Refused(report) => format!(
            "Not registered: it is not {} compatible: {}. Accept it anyway to force it.",
            report.mode(),
            report.summary()
        ),
    };
    Ok(Redirect::to(&type_page(&bus, &source, &detail_type, &notice)).into_response())
}

/// `POST /ui/schemas/{bus}/{source}/{detail_type}/discard`.
pub async fn discard(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path((bus, source, detail_type)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> Page {
    check_csrf(&session, &form.csrf)?;
    let path = type_path(&bus, &source, &detail_type)?;
    let discarded =
        crate::api::schemas::discard(&state, &Actor::of(&session.principal), &path).await?;
    let notice = if discarded {
        "Draft discarded."
    } else {
        "There was no draft."
    };
    Ok(Redirect::to(&type_page(&bus, &source, &detail_type, notice)).into_response())
}

/// The event type a form's path names, its texts checked as the API checks them.
fn type_path(bus: &str, source: &str, detail_type: &str) -> Result<TypePath, PageError> {
    TypePath::check(bus.to_owned(), source.to_owned(), detail_type.to_owned())
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, &e.detail))
}

fn type_page(bus: &str, source: &str, detail_type: &str, notice: &str) -> String {
    format!(
        "/ui/schemas/{}/{}/{}?notice={}",
        url_encode(bus),
        url_encode(source),
        url_encode(detail_type),
        url_encode(notice)
    )
}

fn pretty(value: &Value) -> String {
    pretty_json(&value.to_string())
}
