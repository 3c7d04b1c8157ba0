//! `GET /v1/audit`: the audit log, newest first, filtered and paged. Needs `admin`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::extract::ApiQuery;
use super::problem::ApiError;
use crate::audit::Action;
use crate::domain::fields::check_text;
use crate::state::AppState;
use crate::store::audit::{AuditFilter, AuditRow};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;
/// Longest actor or resource a filter may name (longer ones cannot have been stored).
const MAX_FILTER_TEXT: usize = 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    actor: Option<String>,
    token_id: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct EntryOut {
    id: i64,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    actor: String,
    token_id: Option<Uuid>,
    action: String,
    resource: String,
    detail: Option<Box<RawValue>>,
}

impl TryFrom<AuditRow> for EntryOut {
    type Error = ApiError;

    fn try_from(row: AuditRow) -> Result<Self, ApiError> {
        let detail = row
            .detail
            .map(RawValue::from_string)
            .transpose()
            .map_err(|e| ApiError::internal(&e))?;
        Ok(EntryOut {
            id: row.id,
            at: row.at,
            actor: row.actor,
            token_id: row.token_id,
            action: row.action,
            resource: row.resource,
            detail,
        })
    }
}

#[derive(Serialize)]
struct ListOut {
    items: Vec<EntryOut>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// A text filter: empty is the same as none (`?actor=` filters nothing).
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let before = super::page_cursor(query.cursor.as_deref(), |text| {
        text.parse::<i64>().ok().filter(|id| *id > 0)
    })?;
    let text = |name: &str, value: Option<String>| -> Result<Option<String>, ApiError> {
        let value = given(value);
        if let Some(v) = &value {
            check_text(v, MAX_FILTER_TEXT).map_err(|why| ApiError::parameter(name, why))?;
        }
        Ok(value)
    };
    let time = |name: &str, value: Option<String>| -> Result<Option<OffsetDateTime>, ApiError> {
        value
            .map(|text| {
                OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                    ApiError::parameter(name, format!("{text:?} is not an RFC 3339 timestamp"))
                })
            })
            .transpose()
    };
    let action = match query.action {
        Some(action) if Action::parse(&action).is_none() => {
            let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
            return Err(ApiError::parameter(
                "action",
                format!("{action:?} is not an action; known: {}", known.join(", ")),
            ));
        }
        action => action,
    };
    let token_id = query
        .token_id
        .map(|id| {
            Uuid::parse_str(&id)
                .map_err(|_| ApiError::parameter("token_id", "must be a token id (a UUID)"))
        })
        .transpose()?;
    let filter = AuditFilter {
        actor: text("actor", query.actor)?,
        token_id,
        action,
        resource: text("resource", query.resource)?,
        since: time("since", query.since)?,
        until: time("until", query.until)?,
    };
    let mut conn = state.pool.acquire().await?;
    let mut rows = crate::store::audit::list(&mut conn, &filter, before, limit + 1).await?;
    let next_cursor =
        crate::store::page_end(&mut rows, limit as usize).map(|row| row.id.to_string());
    let items = rows
        .into_iter()
        .map(EntryOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(ListOut { items, next_cursor }).into_response())
}
