//! `/v1/buses/{bus}/archives…`: create or replace, read, list, delete archives.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::json;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use uuid::Uuid;

use super::buses::bus_not_found;
use super::extract::{ApiPath, JsonText};
use super::problem::ApiError;
use crate::audit::{self, Action, Actor};
use crate::auth::Principal;
use crate::domain::ArchiveName;
use crate::domain::archive::parse_archive;
use crate::state::AppState;
use crate::store::{self, StoreError, archives::ArchiveRow, archives::Put};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/buses/{bus}/archives", get(list))
        .route(
            "/buses/{bus}/archives/{archive}",
            get(read).put(put).delete(delete),
        )
}

#[derive(Serialize)]
pub struct ArchiveOut {
    id: Uuid,
    bus: String,
    name: String,
    description: String,
    /// `null`: every event of the bus.
    event_pattern: Option<Box<RawValue>>,
    retention_days: i32,
    event_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl TryFrom<ArchiveRow> for ArchiveOut {
    type Error = ApiError;

    fn try_from(row: ArchiveRow) -> Result<Self, ApiError> {
        Ok(ArchiveOut {
            event_pattern: row
                .event_pattern
                .map(RawValue::from_string)
                .transpose()
                .map_err(|e| ApiError::internal(&e))?,
            id: row.id,
            bus: row.bus,
            name: row.name,
            description: row.description,
            retention_days: row.retention_days,
            event_count: row.event_count,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

async fn list(
    State(state): State<AppState>,
    ApiPath(bus): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    if store::buses::get(&mut conn, &bus).await?.is_none() {
        return Err(bus_not_found(&bus));
    }
    let archives = store::archives::list(&mut conn, &bus)
        .await?
        .into_iter()
        .map(ArchiveOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "archives": archives })).into_response())
}

async fn read(
    State(state): State<AppState>,
    ApiPath((bus, archive)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    match store::archives::get(&mut conn, &bus, &archive).await? {
        Some(row) => Ok(Json(ArchiveOut::try_from(row)?).into_response()),
        None => Err(archive_not_found(&mut conn, &bus, &archive).await),
    }
}

async fn put(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, archive)): ApiPath<(String, String)>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    let name = ArchiveName::parse(&archive).map_err(|e| ApiError::parameter("archive", e))?;
    let parsed = parse_archive(&body)?;
    let Some((created, row)) =
        save(&state, &Actor::of(&principal), &bus, name.as_str(), &parsed).await?
    else {
        return Err(bus_not_found(&bus));
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ArchiveOut::try_from(row)?)).into_response())
}

/// Creates or replaces an archive, audited, and archives with it before answering: the REST
/// API's and EventBridge's API's one way. `None`: no such bus.
pub(crate) async fn save(
    state: &AppState,
    actor: &Actor,
    bus: &str,
    name: &str,
    archive: &crate::domain::archive::Archive,
) -> Result<Option<(bool, ArchiveRow)>, StoreError> {
    let mut tx = state.pool.begin().await?;
    let created = match store::archives::put(&mut tx, bus, name, archive).await? {
        Put::BusNotFound => return Ok(None),
        Put::Created => true,
        Put::Replaced => false,
    };
    let row = store::archives::get(&mut tx, bus, name)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("archive {name:?} vanished while saved")))?;
    let detail = json!({ "created": created, "retention_days": archive.retention_days });
    let resource = audit::archive_resource(bus, name);
    audit::record(&mut tx, actor, Action::ArchivePut, &resource, detail).await?;
    tx.commit().await?;
    // Read your writes: this process archives with the new pattern before it answers.
    state.snapshots.refresh().await?;
    Ok(Some((created, row)))
}

/// Deletes an archive (and what it holds), audited; whether there was one.
pub(crate) async fn remove(
    state: &AppState,
    actor: &Actor,
    bus: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let mut tx = state.pool.begin().await?;
    let deleted = store::archives::delete(&mut tx, bus, name).await?;
    if deleted {
        let resource = audit::archive_resource(bus, name);
        audit::record(
            &mut tx,
            actor,
            Action::ArchiveDelete,
            &resource,
            serde_json::Value::Null,
        )
        .await?;
    }
    tx.commit().await?;
    if deleted {
        state.snapshots.refresh().await?;
    }
    Ok(deleted)
}

async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, archive)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    if !remove(&state, &Actor::of(&principal), &bus, &archive).await? {
        let mut conn = state.pool.acquire().await?;
        return Err(archive_not_found(&mut conn, &bus, &archive).await);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Says whether the bus or the archive is missing.
pub(super) async fn archive_not_found(
    conn: &mut store::PgConnection,
    bus: &str,
    archive: &str,
) -> ApiError {
    match store::buses::get(conn, bus).await {
        Ok(None) => bus_not_found(bus),
        Ok(Some(_)) => ApiError::not_found(format!("no archive named {archive:?} on bus {bus:?}")),
        Err(error) => ApiError::from(error),
    }
}
