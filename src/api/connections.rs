//! `/v1/connections…` and `/v1/api-destinations…`: how Switchyard authenticates to targets, and
//! endpoints with their method, connection and rate limit. A connection's secret goes in and is
//! never given back. Saving and deleting go through the functions here, which EventBridge's
//! API ([`crate::aws`]) uses too.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::extract::{ApiPath, ApiQuery, JsonText};
use super::problem::ApiError;
use crate::audit::{self, Action, Actor};
use crate::auth::Principal;
use crate::connections::{self, Connection, Destination, Parameters};
use crate::domain::{FieldError, ValidationErrors};
use crate::secrets::Sealer;
use crate::state::AppState;
use crate::store::connections::{ConnectionRow, Deleted, DestinationRow};
use crate::store::{self, StoreError};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list_connections))
        .route(
            "/connections/{name}",
            get(read_connection)
                .put(put_connection)
                .delete(delete_connection),
        )
        .route("/api-destinations", get(list_destinations))
        .route(
            "/api-destinations/{name}",
            get(read_destination)
                .put(put_destination)
                .delete(delete_destination),
        )
}

/// A connection as shown: never its secret.
#[derive(Serialize)]
pub(crate) struct ConnectionOut {
    pub name: String,
    pub description: String,
    pub authorization_type: String,
    #[serde(flatten)]
    pub parameters: Parameters,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl TryFrom<ConnectionRow> for ConnectionOut {
    type Error = StoreError;

    fn try_from(row: ConnectionRow) -> Result<Self, StoreError> {
        let parameters = serde_json::from_value(row.parameters.0)
            .map_err(|e| StoreError::Corrupt(format!("connection {}: {e}", row.name)))?;
        Ok(ConnectionOut {
            name: row.name,
            description: row.description,
            authorization_type: row.authorization_type,
            parameters,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(Serialize)]
pub(crate) struct DestinationOut {
    pub name: String,
    pub description: String,
    pub connection: String,
    pub endpoint: String,
    pub method: String,
    pub rate_limit_per_second: Option<i32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<DestinationRow> for DestinationOut {
    fn from(row: DestinationRow) -> Self {
        DestinationOut {
            name: row.name,
            description: row.description,
            connection: row.connection,
            endpoint: row.endpoint,
            method: row.http_method,
            rate_limit_per_second: row.invocation_rate_limit_per_second,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    next_token: Option<String>,
}

fn name_of(name: &str) -> Result<(), ApiError> {
    connections::check_name(name).map_err(|why| ApiError::parameter("name", why))
}

/// What saving a connection or a destination did.
pub(crate) enum Saved<T> {
    Done { created: bool, row: T },
    Invalid(ValidationErrors),
}

/// Creates or replaces a connection, its secret sealed; a replacement of the same type that
/// leaves the secret out keeps the stored one. Audited in the same transaction.
pub(crate) async fn save_connection(
    state: &AppState,
    actor: &Actor,
    name: &str,
    connection: Connection,
) -> Result<Saved<ConnectionRow>, StoreError> {
    let kind = connection.parameters.authorization_type();
    let mut tx = state.pool.begin().await?;
    let existing = store::connections::get_connection(&mut tx, name, true).await?;
    let secret = match (connection.secret, existing) {
        (Some(secret), _) => secret,
        (None, Some(row)) if row.authorization_type == kind.as_str() => {
            open_secret(&state.sealer, &row)?
        }
        (None, _) => {
            let pointer = match kind {
                connections::AuthorizationType::Basic => "/basic/password",
                connections::AuthorizationType::ApiKey => "/api_key/value",
                connections::AuthorizationType::OAuthClientCredentials => "/oauth/client_secret",
            };
            return Ok(Saved::Invalid(ValidationErrors(vec![FieldError::new(
                pointer,
                "is required (it may be left out only to keep the secret of a connection of the same type)",
            )])));
        }
    };
    let sealed = state
        .sealer
        .seal(secret.as_bytes(), &connections::sealed_for(name));
    let parameters = serde_json::to_value(&connection.parameters)
        .map_err(|e| StoreError::Corrupt(format!("connection parameters: {e}")))?;
    let created = store::connections::put_connection(
        &mut tx,
        name,
        &connection.description,
        kind.as_str(),
        &parameters,
        &sealed,
    )
    .await?;
    let detail = json!({ "created": created, "authorization_type": kind.as_str() });
    let resource = audit::connection_resource(name);
    audit::record(&mut tx, actor, Action::ConnectionPut, &resource, detail).await?;
    let row = store::connections::get_connection(&mut tx, name, false)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("connection {name:?} vanished while saved")))?;
    tx.commit().await?;
    tracing::info!(connection = name, created, "connection saved");
    Ok(Saved::Done { created, row })
}

/// A stored connection's secret, opened.
pub(crate) fn open_secret(sealer: &Sealer, row: &ConnectionRow) -> Result<String, StoreError> {
    let plain = sealer
        .open(&row.secret_sealed, &connections::sealed_for(&row.name))
        .map_err(|e| StoreError::Corrupt(format!("connection {}: {e}", row.name)))?;
    String::from_utf8(plain)
        .map_err(|_| StoreError::Corrupt(format!("connection {}: secret not UTF-8", row.name)))
}

/// Deletes a connection no destination or target uses, audited.
pub(crate) async fn remove_connection(
    state: &AppState,
    actor: &Actor,
    name: &str,
) -> Result<Deleted, StoreError> {
    let mut tx = state.pool.begin().await?;
    let outcome = store::connections::delete_connection(&mut tx, name).await?;
    let resource = audit::connection_resource(name);
    audited(tx, actor, Action::ConnectionDelete, &resource, outcome).await
}

/// Records a deletion that happened in `tx` and commits it; anything else changed nothing.
async fn audited(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    actor: &Actor,
    action: Action,
    resource: &str,
    outcome: Deleted,
) -> Result<Deleted, StoreError> {
    if outcome == Deleted::Deleted {
        audit::record(&mut tx, actor, action, resource, json!(null)).await?;
        tx.commit().await?;
    }
    Ok(outcome)
}

/// Creates or replaces an API destination; its targets follow it in the same transaction (a
/// change that would leave one of them without a valid URL is refused, naming it).
pub(crate) async fn save_destination(
    state: &AppState,
    actor: &Actor,
    name: &str,
    destination: &Destination,
) -> Result<Saved<DestinationRow>, StoreError> {
    let mut tx = state.pool.begin().await?;
    if store::connections::get_connection(&mut tx, &destination.connection, true)
        .await?
        .is_none()
    {
        return Ok(Saved::Invalid(ValidationErrors(vec![FieldError::new(
            "/connection",
            format!("no connection named {:?}", destination.connection),
        )])));
    }
    let created = store::connections::put_destination(&mut tx, name, destination).await?;
    let mut problems = Vec::new();
    let targets = store::connections::destination_targets(&mut tx, name).await?;
    for target in &targets {
        let query = target
            .query_parameters
            .as_ref()
            .map(|q| q.0.clone())
            .unwrap_or_default();
        let path = target.path_parameters.clone().unwrap_or_default();
        match connections::destination_url(&destination.endpoint, &path, &query) {
            Ok(url) => {
                store::connections::retarget(&mut tx, target.id, &url, destination).await?;
            }
            Err(why) => problems.push(FieldError::new(
                "/endpoint",
                format!(
                    "target {:?} of rule {}/{} would break: {why}",
                    target.target_id, target.bus, target.rule
                ),
            )),
        }
    }
    if !problems.is_empty() {
        return Ok(Saved::Invalid(ValidationErrors(problems)));
    }
    let detail = json!({ "created": created, "targets": targets.len() });
    let resource = audit::destination_resource(name);
    audit::record(&mut tx, actor, Action::DestinationPut, &resource, detail).await?;
    let row = store::connections::get_destination(&mut tx, name, false)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("destination {name:?} vanished while saved")))?;
    tx.commit().await?;
    tracing::info!(
        destination = name,
        created,
        targets = targets.len(),
        "API destination saved"
    );
    Ok(Saved::Done { created, row })
}

/// Deletes an API destination no target uses, audited.
pub(crate) async fn remove_destination(
    state: &AppState,
    actor: &Actor,
    name: &str,
) -> Result<Deleted, StoreError> {
    let mut tx = state.pool.begin().await?;
    let outcome = store::connections::delete_destination(&mut tx, name).await?;
    let resource = audit::destination_resource(name);
    audited(tx, actor, Action::DestinationDelete, &resource, outcome).await
}

async fn list_connections(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    if let Some(token) = &query.next_token {
        name_of(token).map_err(|_| {
            ApiError::parameter("next_token", "is not a next_token this API gave out")
        })?;
    }
    let mut conn = state.pool.acquire().await?;
    let mut rows =
        store::connections::list_connections(&mut conn, "", query.next_token.as_deref(), limit + 1)
            .await?;
    let next_token = store::page_end(&mut rows, limit as usize).map(|r| r.name.clone());
    let items = rows
        .into_iter()
        .map(ConnectionOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "connections": items, "next_token": next_token })).into_response())
}

async fn read_connection(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    match store::connections::get_connection(&mut conn, &name, false).await? {
        Some(row) => Ok(Json(ConnectionOut::try_from(row)?).into_response()),
        None => Err(connection_not_found(&name)),
    }
}

fn connection_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("no connection named {name:?}"))
}

fn destination_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("no API destination named {name:?}"))
}

async fn put_connection(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    name_of(&name)?;
    let connection = connections::parse_connection(&body)?;
    match save_connection(&state, &Actor::of(&principal), &name, connection).await? {
        Saved::Invalid(errors) => Err(ApiError::validation(errors.0)),
        Saved::Done { created, row } => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(ConnectionOut::try_from(row)?)).into_response())
        }
    }
}

async fn delete_connection(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    match remove_connection(&state, &Actor::of(&principal), &name).await? {
        Deleted::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        Deleted::NotFound => Err(connection_not_found(&name)),
        Deleted::InUse {
            destinations,
            targets,
        } => Err(ApiError::conflict(format!(
            "connection {name:?} is used by {destinations} API destination(s) and {targets} target(s); change or delete them first"
        ))),
    }
}

async fn list_destinations(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    if let Some(token) = &query.next_token {
        name_of(token).map_err(|_| {
            ApiError::parameter("next_token", "is not a next_token this API gave out")
        })?;
    }
    let mut conn = state.pool.acquire().await?;
    let mut rows = store::connections::list_destinations(
        &mut conn,
        "",
        None,
        query.next_token.as_deref(),
        limit + 1,
    )
    .await?;
    let next_token = store::page_end(&mut rows, limit as usize).map(|r| r.name.clone());
    let items: Vec<DestinationOut> = rows.into_iter().map(DestinationOut::from).collect();
    Ok(Json(json!({ "api_destinations": items, "next_token": next_token })).into_response())
}

async fn read_destination(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    match store::connections::get_destination(&mut conn, &name, false).await? {
        Some(row) => Ok(Json(DestinationOut::from(row)).into_response()),
        None => Err(destination_not_found(&name)),
    }
}

async fn put_destination(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    name_of(&name)?;
    let destination = connections::parse_destination(&body)?;
    match save_destination(&state, &Actor::of(&principal), &name, &destination).await? {
        Saved::Invalid(errors) => Err(ApiError::validation(errors.0)),
        Saved::Done { created, row } => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(DestinationOut::from(row))).into_response())
        }
    }
}

async fn delete_destination(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    match remove_destination(&state, &Actor::of(&principal), &name).await? {
        Deleted::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
        Deleted::NotFound => Err(destination_not_found(&name)),
        Deleted::InUse { targets, .. } => Err(ApiError::conflict(format!(
            "API destination {name:?} is the endpoint of {targets} target(s); change or delete them first"
        ))),
    }
}
