//! `/v1/replays…`: start a replay of an archive's time window onto a bus (all its rules or a
//! subset), list and read replays with their progress, cancel one. The work itself is
//! [`crate::replay`]'s.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::extract::{ApiPath, ApiQuery, JsonText};
use super::problem::ApiError;
use crate::audit::{self, Action, Actor};
use crate::auth::Principal;
use crate::domain::fields::{FieldError, Fields, ValidationErrors};
use crate::domain::{ArchiveName, BusName, ReplayName, RuleName};
use crate::state::AppState;
use crate::store::{self, StoreError, replays::NewReplay, replays::ReplayRow};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 100;
pub const DEFAULT_EVENTS_PER_SECOND: u32 = 1000;
pub const MAX_EVENTS_PER_SECOND: u32 = 100_000;
/// At most this many rules in a replay's subset.
pub const MAX_RULES: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/replays", get(list).post(start))
        .route("/replays/{replay}", get(read))
        .route("/replays/{replay}/cancel", post(cancel))
}

#[derive(Serialize)]
pub struct ReplayOut {
    id: Uuid,
    name: String,
    bus: String,
    archive: String,
    destination_bus: String,
    /// `null`: every rule of the destination.
    rules: Option<Vec<String>>,
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
    events_per_second: i32,
    state: String,
    /// Archived events in the window, counted when the replay started.
    total: Option<i64>,
    done: i64,
    /// The receive time of the last archived event replayed.
    #[serde(with = "time::serde::rfc3339::option")]
    last_event_time: Option<OffsetDateTime>,
    reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    finished_at: Option<OffsetDateTime>,
}

impl From<ReplayRow> for ReplayOut {
    fn from(row: ReplayRow) -> ReplayOut {
        ReplayOut {
            id: row.id,
            name: row.name,
            bus: row.bus,
            archive: row.archive,
            destination_bus: row.destination_bus,
            rules: row.rules,
            from: row.window_from,
            to: row.window_to,
            events_per_second: row.events_per_second,
            state: row.state,
            total: row.total,
            done: row.done,
            last_event_time: row.cursor_received_at,
            reason: row.reason,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
    }
}

/// A replay request, each field checked with its pointer.
pub(crate) struct ReplayIn {
    name: ReplayName,
    bus: BusName,
    archive: ArchiveName,
    from: OffsetDateTime,
    to: OffsetDateTime,
    destination_bus: BusName,
    rules: Option<Vec<String>>,
    events_per_second: u32,
}

pub(crate) fn parse(text: &str, now: OffsetDateTime) -> Result<ReplayIn, ValidationErrors> {
    let mut errors = Vec::new();
    let parsed = Fields::parse(text, "", &mut errors).and_then(|mut fields| {
        let mut name_of = |field: &str, errors: &mut Vec<FieldError>| {
            let text = fields.take_string(field, errors);
            if text.is_none() && !fields.had(field) {
                errors.push(FieldError::new(format!("/{field}"), "is required"));
            }
            text
        };
        let name = name_of("name", &mut errors).and_then(|t| {
            ReplayName::parse(&t)
                .map_err(|e| errors.push(FieldError::new("/name", e.0)))
                .ok()
        });
        let bus = name_of("bus", &mut errors).and_then(|t| {
            BusName::parse(&t)
                .map_err(|e| errors.push(FieldError::new("/bus", e.0)))
                .ok()
        });
        let archive = name_of("archive", &mut errors).and_then(|t| {
            ArchiveName::parse(&t)
                .map_err(|e| errors.push(FieldError::new("/archive", e.0)))
                .ok()
        });
        let mut time_of = |field: &str, errors: &mut Vec<FieldError>| {
            name_of(field, errors).and_then(|t| {
                OffsetDateTime::parse(&t, &Rfc3339)
                    .map_err(|_| {
                        errors.push(FieldError::new(
                            format!("/{field}"),
                            "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z",
                        ))
                    })
                    .ok()
            })
        };
        let from = time_of("from", &mut errors);
        let to = time_of("to", &mut errors);
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                errors.push(FieldError::new("/to", "must be after `from`"));
            } else if to > now {
                errors.push(FieldError::new(
                    "/to",
                    "must not be in the future: a replay reads events already archived",
                ));
            }
        }
        let destination_bus = match fields.take_string("destination_bus", &mut errors) {
            Some(t) => BusName::parse(&t)
                .map_err(|e| errors.push(FieldError::new("/destination_bus", e.0)))
                .ok(),
            None if fields.had("destination_bus") => None,
            None => bus.clone(),
        };
        let rules = match fields.take("rules") {
            None => Some(None),
            Some(raw) => match serde_json::from_str::<Vec<serde_json::Value>>(raw.get()) {
                Ok(items) if items.is_empty() || items.len() > MAX_RULES => {
                    errors.push(FieldError::new(
                        "/rules",
                        format!("must name 1 to {MAX_RULES} rules (leave it out for all)"),
                    ));
                    None
                }
                Ok(items) => {
                    let mut names = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        match item.as_str().map(RuleName::parse) {
                            Some(Ok(rule)) => names.push(rule.to_string()),
                            Some(Err(e)) => {
                                errors.push(FieldError::new(format!("/rules/{i}"), e.0))
                            }
                            None => errors.push(FieldError::new(
                                format!("/rules/{i}"),
                                "must be a rule name",
                            )),
                        }
                    }
                    Some(Some(names))
                }
                Err(_) => {
                    errors.push(FieldError::new("/rules", "must be an array of rule names"));
                    None
                }
            },
        };
        let events_per_second = match fields.take("events_per_second") {
            Some(raw) => crate::domain::integer_in(
                raw.get(),
                1,
                MAX_EVENTS_PER_SECOND,
                "/events_per_second",
                &mut errors,
            ),
            None => Some(DEFAULT_EVENTS_PER_SECOND),
        };
        fields.refuse_unknown(&mut errors);
        Some(ReplayIn {
            name: name?,
            bus: bus?,
            archive: archive?,
            from: from?,
            to: to?,
            destination_bus: destination_bus?,
            rules: rules?,
            events_per_second: events_per_second?,
        })
    });
    ValidationErrors::finish(parsed, errors, "replay")
}

async fn start(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    let input = parse(&body, OffsetDateTime::now_utc())?;
    match begin(&state, &Actor::of(&principal), &input).await? {
        Started::Invalid(errors) => Err(ApiError::validation(errors.0)),
        Started::NameTaken => Err(ApiError::conflict(format!(
            "a replay named {:?} exists already; replay names are never reused",
            input.name.as_str()
        ))),
        Started::Done(row) => {
            Ok((StatusCode::CREATED, Json(ReplayOut::from(*row))).into_response())
        }
    }
}

/// What starting a replay did.
pub(crate) enum Started {
    Done(Box<ReplayRow>),
    /// The archive, the destination bus or a rule is not there.
    Invalid(ValidationErrors),
    NameTaken,
}

/// Starts a replay, audited: the REST API's and EventBridge's API's one way.
pub(crate) async fn begin(
    state: &AppState,
    actor: &Actor,
    input: &ReplayIn,
) -> Result<Started, StoreError> {
    let invalid = |pointer: String, detail: String| {
        Ok(Started::Invalid(ValidationErrors(vec![FieldError::new(
            pointer, detail,
        )])))
    };
    let mut tx = state.pool.begin().await?;
    let Some(archive) =
        store::archives::get(&mut tx, input.bus.as_str(), input.archive.as_str()).await?
    else {
        return invalid(
            "/archive".into(),
            format!(
                "there is no archive named {:?} on bus {:?}",
                input.archive.as_str(),
                input.bus.as_str()
            ),
        );
    };
    if store::buses::get(&mut tx, input.destination_bus.as_str())
        .await?
        .is_none()
    {
        return invalid(
            "/destination_bus".into(),
            format!("there is no bus named {:?}", input.destination_bus.as_str()),
        );
    }
    if let Some(rules) = &input.rules {
        let mut missing = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if store::rules::get(&mut tx, input.destination_bus.as_str(), rule)
                .await?
                .is_none()
            {
                missing.push(FieldError::new(
                    format!("/rules/{i}"),
                    format!(
                        "there is no rule named {rule:?} on bus {:?}",
                        input.destination_bus.as_str()
                    ),
                ));
            }
        }
        if !missing.is_empty() {
            return Ok(Started::Invalid(ValidationErrors(missing)));
        }
    }
    let new = NewReplay {
        name: input.name.as_str(),
        archive_id: archive.id,
        bus: input.bus.as_str(),
        archive: input.archive.as_str(),
        destination_bus: input.destination_bus.as_str(),
        rules: input.rules.as_deref(),
        from: input.from,
        to: input.to,
        events_per_second: input.events_per_second,
    };
    let Some(row) = store::replays::create(&mut tx, &new).await? else {
        return Ok(Started::NameTaken);
    };
    let detail = json!({
        "bus": input.bus.as_str(),
        "archive": input.archive.as_str(),
        "destination_bus": input.destination_bus.as_str(),
    });
    let resource = audit::replay_resource(input.name.as_str());
    audit::record(&mut tx, actor, Action::ReplayStart, &resource, detail).await?;
    tx.commit().await?;
    tracing::info!(replay = row.name, "replay started");
    Ok(Started::Done(Box::new(row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

const STATES: [&str; 5] = ["starting", "running", "completed", "cancelled", "failed"];

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    if let Some(wanted) = &query.state
        && !STATES.contains(&wanted.as_str())
    {
        return Err(ApiError::parameter(
            "state",
            format!("must be one of {}; found {wanted:?}", STATES.join(", ")),
        ));
    }
    let before = super::page_cursor(query.cursor.as_deref(), store::decode_cursor)?;
    let mut conn = state.pool.acquire().await?;
    let mut rows =
        store::replays::list(&mut conn, query.state.as_deref(), before, limit + 1).await?;
    let next_cursor = store::page_end(&mut rows, limit as usize).map(|last| {
        format!(
            "{}_{}",
            last.created_at.unix_timestamp_nanos(),
            last.id.simple()
        )
    });
    let replays: Vec<ReplayOut> = rows.into_iter().map(ReplayOut::from).collect();
    Ok(Json(json!({ "replays": replays, "next_cursor": next_cursor })).into_response())
}

async fn read(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    match store::replays::get(&mut conn, &name).await? {
        Some(row) => Ok(Json(ReplayOut::from(row)).into_response()),
        None => Err(replay_not_found(&name)),
    }
}

async fn cancel(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    match crate::replay::cancel(&state.pool, &Actor::of(&principal), &name).await? {
        Ok(row) => Ok(Json(ReplayOut::from(row)).into_response()),
        Err(Some(row)) => Err(ApiError::conflict(format!(
            "replay {name:?} has ended already ({})",
            row.state
        ))),
        Err(None) => Err(replay_not_found(&name)),
    }
}

fn replay_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("no replay named {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(text: &str) -> Vec<String> {
        let now = OffsetDateTime::parse("2026-12-05T00:00:00Z", &Rfc3339).unwrap();
        parse(text, now)
            .err()
            .map(|e| e.0.into_iter().map(|e| e.pointer).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_replay_request_names_every_bad_field() {
        assert_eq!(
            pointers(
                r#"{"name": "r 1", "archive": "a", "from": "yesterday", "to": "2026-12-01T00:00:00Z", "rules": ["ok", 1], "events_per_second": 0, "x": 1}"#
            ),
            [
                "/name",
                "/bus",
                "/from",
                "/rules/1",
                "/events_per_second",
                "/x"
            ]
        );
        assert_eq!(
            pointers(
                r#"{"name": "r", "bus": "b", "archive": "a", "from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}"#
            ),
            ["/to"]
        );
        assert_eq!(
            pointers(
                r#"{"name": "r", "bus": "b", "archive": "a", "from": "2026-12-02T00:00:00Z", "to": "2027-01-01T00:00:00Z"}"#
            ),
            ["/to"],
            "not in the future"
        );
        assert!(pointers(r#"{"name": "r", "bus": "b", "archive": "a", "from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z", "rules": ["x"]}"#).is_empty());
    }
}
