//! `/v1/dead-letters…`: inspect, redrive and discard deliveries that died.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::events::AttemptOut;
use super::extract::{ApiPath, ApiQuery, JsonText, not_null, object, parse_body};
use super::problem::ApiError;
use crate::audit::{self, Actor};
use crate::auth::Principal;
use crate::delivery::DeadReason;
use crate::domain::fields::check_text;
use crate::domain::{BusName, DeliveryId, EventId, FieldError, NameError, RuleName, TargetId};
use crate::state::AppState;
use crate::store::dead_letters::{self, Cursor, DeadLetterSummary, Filter, Selection};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;
const MAX_IDS: usize = 1000;
/// A discard's reason (when given), checked before it reaches the database.
fn check_reason(reason: Option<&str>) -> Result<(), String> {
    reason.map_or(Ok(()), |r| check_text(r, dead_letters::MAX_DISCARD_REASON))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dead-letters", get(list))
        .route("/dead-letters/redrive", post(redrive_many))
        .route("/dead-letters/discard", post(discard_many))
        .route("/dead-letters/{id}", get(read).delete(discard))
        .route("/dead-letters/{id}/redrive", post(redrive_one))
}

/// The filter as query parameters (and inside bulk bodies).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterIn {
    #[serde(default, deserialize_with = "not_null")]
    bus: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    rule: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    target_id: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    dead_reason: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    since: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    until: Option<String>,
}

impl FilterIn {
    /// The store's filter; `at` prefixes error locations (`/filter` in a body).
    fn parse(self, at: &str, errors: &mut Vec<FieldError>) -> Filter {
        let mut time = |name: &str, value: Option<String>| {
            value.and_then(|text| {
                OffsetDateTime::parse(&text, &Rfc3339)
                    .map_err(|_| {
                        errors.push(FieldError::new(
                            format!("{at}/{name}"),
                            format!("{text:?} is not an RFC 3339 timestamp"),
                        ))
                    })
                    .ok()
            })
        };
        let since = time("since", self.since);
        let until = time("until", self.until);
        // Names that cannot exist are refused (which also keeps what Postgres cannot store out).
        let checks = [
            ("bus", self.bus.as_deref().map(|v| BusName::parse(v).err())),
            (
                "rule",
                self.rule.as_deref().map(|v| RuleName::parse(v).err()),
            ),
            (
                "target_id",
                self.target_id.as_deref().map(|v| TargetId::parse(v).err()),
            ),
        ];
        for (field, refused) in checks {
            if let Some(Some(NameError(why))) = refused {
                errors.push(FieldError::new(format!("{at}/{field}"), why));
            }
        }
        if let Some(reason) = &self.dead_reason
            && DeadReason::parse(reason).is_none()
        {
            let known: Vec<&str> = DeadReason::ALL.iter().map(|r| r.as_str()).collect();
            errors.push(FieldError::new(
                format!("{at}/dead_reason"),
                format!(
                    "{reason:?} is not a dead reason; known: {}",
                    known.join(", ")
                ),
            ));
        }
        Filter {
            bus: self.bus,
            rule: self.rule,
            target_id: self.target_id,
            dead_reason: self.dead_reason,
            since,
            until,
        }
    }

    fn is_empty(&self) -> bool {
        self.bus.is_none()
            && self.rule.is_none()
            && self.target_id.is_none()
            && self.dead_reason.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }
}

/// The list's query: the filter's fields and the page's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    bus: Option<String>,
    rule: Option<String>,
    target_id: Option<String>,
    dead_reason: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ListOut {
    items: Vec<DeadLetterOut>,
    next_cursor: Option<String>,
    /// Dead letters matching the filter, per dead reason.
    counts: std::collections::BTreeMap<String, i64>,
}

/// A dead letter, on the wire.
#[derive(Serialize)]
struct DeadLetterOut {
    id: DeliveryId,
    event_id: EventId,
    bus: String,
    rule: String,
    target_id: String,
    dead_reason: Option<String>,
    last_status: Option<i32>,
    last_error: Option<String>,
    attempts: i32,
    redrive_count: i32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    dead_at: Option<OffsetDateTime>,
}

impl From<DeadLetterSummary> for DeadLetterOut {
    fn from(d: DeadLetterSummary) -> Self {
        DeadLetterOut {
            id: d.id,
            event_id: d.event_id,
            bus: d.bus,
            rule: d.rule_name,
            target_id: d.target_id,
            dead_reason: d.dead_reason,
            last_status: d.last_status,
            last_error: d.last_error,
            attempts: d.attempts,
            redrive_count: d.redrive_count,
            created_at: d.created_at,
            dead_at: d.dead_at,
        }
    }
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let after = super::page_cursor(query.cursor.as_deref(), Cursor::decode)?;
    let mut errors = Vec::new();
    let filter = FilterIn {
        bus: query.bus,
        rule: query.rule,
        target_id: query.target_id,
        dead_reason: query.dead_reason,
        since: query.since,
        until: query.until,
    }
    .parse("", &mut errors);
    if let Some(first) = errors.first() {
        return Err(ApiError::parameter(
            first.pointer.trim_start_matches('/'),
            &first.detail,
        ));
    }
    let mut conn = state.pool.acquire().await?;
    let mut items = dead_letters::list(&mut conn, &filter, after, limit + 1).await?;
    let next_cursor = crate::store::page_end(&mut items, limit as usize)
        .and_then(Cursor::after)
        .map(|c| c.encode());
    let counts = dead_letters::count_by_reason(&mut conn, &filter)
        .await?
        .into_iter()
        .collect();
    Ok(Json(ListOut {
        items: items.into_iter().map(DeadLetterOut::from).collect(),
        next_cursor,
        counts,
    })
    .into_response())
}

#[derive(Serialize)]
struct DeadLetterDetailOut {
    #[serde(flatten)]
    summary: DeadLetterOut,
    event: Box<RawValue>,
    /// The payload as rendered for the last attempt (text: it may not be JSON).
    payload: Option<String>,
    attempt_log: Vec<AttemptOut>,
}

fn parse_id(id: &str) -> Result<DeliveryId, ApiError> {
    id.parse().map_err(|_| not_found(id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no dead letter with id {id:?}"))
}

async fn read(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let uuid = parse_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    let letter = dead_letters::get(&mut conn, uuid)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let event = RawValue::from_string(letter.event).map_err(|e| ApiError::internal(&e))?;
    Ok(Json(DeadLetterDetailOut {
        summary: letter.summary.into(),
        event,
        payload: letter.payload,
        attempt_log: letter.attempts.into_iter().map(AttemptOut::from).collect(),
    })
    .into_response())
}

async fn redrive_one(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let uuid = parse_id(&id)?;
    let selection = Selection::Ids(vec![uuid]);
    match audit::redrive(&state.pool, &Actor::of(&principal), &selection).await? {
        0 => Err(not_found(&id)),
        n => Ok(Json(serde_json::json!({ "redriven": n })).into_response()),
    }
}

/// A bulk request: a list of ids, or a filter (the list's filter; `{}` is every dead letter).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkIn {
    #[serde(default, deserialize_with = "not_null")]
    ids: Option<Vec<DeliveryId>>,
    #[serde(default, deserialize_with = "object")]
    filter: Option<FilterIn>,
    /// For discards: why (kept with the delivery).
    #[serde(default, deserialize_with = "not_null")]
    reason: Option<String>,
}

fn selection(body: &str) -> Result<(Selection, Option<String>), ApiError> {
    let input: BulkIn = parse_body(body)?;
    match (input.ids, input.filter) {
        (Some(ids), None) if ids.len() <= MAX_IDS => Ok((Selection::Ids(ids), input.reason)),
        (Some(_), None) => Err(ApiError::validation(vec![FieldError::new(
            "/ids",
            format!("at most {MAX_IDS} ids; use a filter for more"),
        )])),
        (None, Some(filter)) => {
            let mut errors = Vec::new();
            let everything = filter.is_empty();
            let filter = filter.parse("/filter", &mut errors);
            if !errors.is_empty() {
                return Err(ApiError::validation(errors));
            }
            if everything {
                tracing::info!("bulk operation on every dead letter");
            }
            Ok((Selection::Matching(filter), input.reason))
        }
        _ => Err(ApiError::validation(vec![FieldError::new(
            "",
            "give exactly one of `ids` and `filter`",
        )])),
    }
}

async fn redrive_many(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    let (selection, reason) = selection(&body)?;
    if reason.is_some() {
        return Err(ApiError::validation(vec![FieldError::new(
            "/reason",
            "is only for discards",
        )]));
    }
    let n = audit::redrive(&state.pool, &Actor::of(&principal), &selection).await?;
    tracing::info!(redriven = n, "dead letters redriven");
    Ok(Json(serde_json::json!({ "redriven": n })).into_response())
}

async fn discard_many(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    let (selection, reason) = selection(&body)?;
    check_reason(reason.as_deref())
        .map_err(|why| ApiError::validation(vec![FieldError::new("/reason", why)]))?;
    let actor = Actor::of(&principal);
    let n = audit::discard(&state.pool, &actor, &selection, reason.as_deref()).await?;
    tracing::info!(discarded = n, "dead letters discarded");
    Ok(Json(serde_json::json!({ "discarded": n })).into_response())
}

#[derive(Deserialize)]
struct DiscardQuery {
    reason: Option<String>,
}

async fn discard(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DiscardQuery>,
) -> Result<Response, ApiError> {
    let uuid = parse_id(&id)?;
    check_reason(query.reason.as_deref()).map_err(|why| ApiError::parameter("reason", why))?;
    let selection = Selection::Ids(vec![uuid]);
    let actor = Actor::of(&principal);
    if audit::discard(&state.pool, &actor, &selection, query.reason.as_deref()).await? == 0 {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
