//! `/v1/buses…`: create, read, list, delete buses.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::extract::{ApiPath, ApiQuery, JsonText};
use super::problem::ApiError;
use crate::audit::{self, Action, Actor};
use crate::auth::Principal;
use crate::domain::fields::{check_text, whole_number};
use crate::domain::{BusName, FieldError};
use crate::schema::{Compatibility, Unregistered, Validation};
use crate::state::AppState;
use crate::store::{self, StoreError, buses::BusRow, buses::BusSettings, buses::Deleted};

pub const DEFAULT_BUS: &str = "default";
pub(crate) const MAX_DESCRIPTION: usize = 512;
/// A bus's de-duplication window unless it says otherwise: a day.
pub const DEFAULT_DEDUP_WINDOW: u64 = 86_400;
/// The longest window when history is kept for ever: a year.
const MAX_DEDUP_WINDOW: u64 = 365 * 86_400;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/buses", get(list))
        .route("/buses/{bus}", get(read).put(put).delete(delete))
}

#[derive(Serialize)]
pub struct BusOut {
    name: String,
    description: String,
    dedup_window_seconds: i32,
    schema_validation: String,
    unregistered_types: String,
    schema_compatibility: String,
    schema_discovery: bool,
    rule_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<BusRow> for BusOut {
    fn from(row: BusRow) -> Self {
        BusOut {
            name: row.name,
            description: row.description,
            dedup_window_seconds: row.dedup_window_seconds,
            schema_validation: row.schema_validation,
            unregistered_types: row.unregistered_types,
            schema_compatibility: row.schema_compatibility,
            schema_discovery: row.schema_discovery,
            rule_count: row.rule_count,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BusIn {
    #[serde(default)]
    description: String,
    /// How long an idempotency key names its event, in seconds (0: no de-duplication).
    #[serde(default, deserialize_with = "super::extract::not_null")]
    dedup_window_seconds: Option<serde_json::Value>,
    /// `off` (the default), `warn` or `enforce`.
    #[serde(default, deserialize_with = "super::extract::not_null")]
    schema_validation: Option<String>,
    /// `accept` (the default) or `refuse`.
    #[serde(default, deserialize_with = "super::extract::not_null")]
    unregistered_types: Option<String>,
    /// The compatibility mode of event types without their own (`BACKWARD` by default).
    #[serde(default, deserialize_with = "super::extract::not_null")]
    schema_compatibility: Option<String>,
    /// Whether new shapes of its event types become drafts (false by default).
    #[serde(default)]
    schema_discovery: bool,
}

/// A setting named by its text, refused with the choices when it is not one of them.
fn setting<T: Copy>(
    text: Option<&str>,
    default: T,
    parse: fn(&str) -> Option<T>,
    choices: fn() -> String,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> T {
    match text {
        None => default,
        Some(text) => parse(text).unwrap_or_else(|| {
            errors.push(FieldError::new(
                pointer,
                format!("must be one of {}", choices()),
            ));
            default
        }),
    }
}

#[derive(Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let buses: Vec<BusOut> = store::buses::list(&mut conn)
        .await?
        .into_iter()
        .map(BusOut::from)
        .collect();
    Ok(Json(serde_json::json!({ "buses": buses })).into_response())
}

async fn read(
    State(state): State<AppState>,
    ApiPath(bus): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    match store::buses::get(&mut conn, &bus).await? {
        Some(row) => Ok(Json(BusOut::from(row)).into_response()),
        None => Err(bus_not_found(&bus)),
    }
}

async fn put(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(bus): ApiPath<String>,
    body: Option<JsonText>,
) -> Result<Response, ApiError> {
    let name = BusName::parse(&bus).map_err(|e| ApiError::parameter("bus", e))?;
    let input = match body {
        // No body is the empty bus; a body sent as JSON must be JSON (whitespace alone is not:
        // the schema test's fuzzer sent a lone newline and rightly expected a 400).
        Some(JsonText(text)) if !text.is_empty() => super::extract::parse_body::<BusIn>(&text)?,
        _ => BusIn {
            description: String::new(),
            dedup_window_seconds: None,
            schema_validation: None,
            unregistered_types: None,
            schema_compatibility: None,
            schema_discovery: false,
        },
    };
    let mut errors = Vec::new();
    if let Err(why) = check_text(&input.description, MAX_DESCRIPTION) {
        errors.push(FieldError::new("/description", why));
    }
    // At most the retention: a key must not outlive the event it names.
    let max_window = state
        .retention
        .map_or(MAX_DEDUP_WINDOW, |r| r.as_secs().min(MAX_DEDUP_WINDOW));
    let window = match &input.dedup_window_seconds {
        None => Some(DEFAULT_DEDUP_WINDOW),
        Some(value) => whole_number(value).filter(|w| *w <= max_window),
    };
    let Some(window) = window.and_then(|w| i32::try_from(w).ok()) else {
        errors.push(FieldError::new(
            "/dedup_window_seconds",
            format!("must be an integer from 0 to {max_window} (the retention)"),
        ));
        return Err(ApiError::validation(errors));
    };
    let settings = BusSettings {
        dedup_window_seconds: window,
        schema_validation: setting(
            input.schema_validation.as_deref(),
            Validation::Off,
            Validation::parse,
            Validation::choices,
            "/schema_validation",
            &mut errors,
        ),
        unregistered_types: setting(
            input.unregistered_types.as_deref(),
            Unregistered::Accept,
            Unregistered::parse,
            Unregistered::choices,
            "/unregistered_types",
            &mut errors,
        ),
        schema_compatibility: setting(
            input.schema_compatibility.as_deref(),
            Compatibility::Backward,
            Compatibility::parse,
            Compatibility::choices,
            "/schema_compatibility",
            &mut errors,
        ),
        schema_discovery: input.schema_discovery,
        description: input.description,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = state.pool.begin().await?;
    let created = store::buses::upsert(&mut tx, name.as_str(), &settings).await?;
    let row = store::buses::get(&mut tx, name.as_str())
        .await?
        .ok_or_else(|| bus_not_found(&bus))?;
    let detail = serde_json::json!({
        "created": created,
        "description": settings.description,
        "dedup_window_seconds": window,
        "schema_validation": settings.schema_validation.as_str(),
        "unregistered_types": settings.unregistered_types.as_str(),
        "schema_compatibility": settings.schema_compatibility.as_str(),
        "schema_discovery": settings.schema_discovery,
    });
    let resource = audit::bus_resource(&bus);
    audit::record(
        &mut tx,
        &Actor::of(&principal),
        Action::BusPut,
        &resource,
        detail,
    )
    .await?;
    tx.commit().await?;
    state.snapshots.refresh().await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(BusOut::from(row))).into_response())
}

async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(bus): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<Response, ApiError> {
    if bus == DEFAULT_BUS {
        return Err(ApiError::conflict(
            "the default bus always exists and cannot be deleted",
        ));
    }
    match remove(&state, &Actor::of(&principal), &bus, query.force).await? {
        Deleted::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        Deleted::NotFound => Err(bus_not_found(&bus)),
        Deleted::HasRules(n) => Err(ApiError::conflict(format!(
            "bus {bus:?} has {n} rule(s); delete them first or pass ?force=true to delete them with it"
        ))),
    }
}

/// Deletes a bus (with `force`, its rules too), audited in the same transaction: the REST API's
/// and EventBridge's API's one way. The caller refuses the default bus.
pub(crate) async fn remove(
    state: &AppState,
    actor: &Actor,
    bus: &str,
    force: bool,
) -> Result<Deleted, StoreError> {
    let mut tx = state.pool.begin().await?;
    let outcome = store::buses::delete(&mut tx, bus, force).await?;
    if matches!(outcome, Deleted::Deleted) {
        let detail = serde_json::json!({ "force": force });
        let resource = audit::bus_resource(bus);
        audit::record(&mut tx, actor, Action::BusDelete, &resource, detail).await?;
    }
    tx.commit().await?;
    if matches!(outcome, Deleted::Deleted) {
        state.snapshots.refresh().await?;
    }
    Ok(outcome)
}

pub fn bus_not_found(bus: &str) -> ApiError {
    ApiError::not_found(format!("no bus named {bus:?}"))
}
