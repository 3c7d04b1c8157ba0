//! `/v1/buses/{bus}/rules/{rule}/targets/{target}/groups`: the delivery groups of an ordered
//! target that owe deliveries, each with its head and why it waits (blocked by a dead letter,
//! retrying, held).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::extract::{ApiPath, ApiQuery};
use super::problem::ApiError;
use crate::domain::{DeliveryId, EventId};
use crate::state::AppState;
use crate::store::groups::{Group, GroupState};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 100;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/buses/{bus}/rules/{rule}/targets/{target}/groups",
        get(list),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
    next_token: Option<String>,
}

#[derive(Serialize)]
struct GroupOut {
    key: String,
    state: &'static str,
    /// Deliveries not yet ended, the head included.
    owed: i64,
    head: HeadOut,
}

#[derive(Serialize)]
struct HeadOut {
    delivery_id: DeliveryId,
    event_id: EventId,
    state: String,
    attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    next_attempt_at: OffsetDateTime,
    last_status: Option<i32>,
    last_error: Option<String>,
    dead_reason: Option<String>,
}

impl From<Group> for GroupOut {
    fn from(group: Group) -> GroupOut {
        GroupOut {
            state: group.state().as_str(),
            owed: group.owed,
            head: HeadOut {
                delivery_id: group.head_id,
                event_id: group.head_event_id,
                state: group.head_state,
                attempts: group.head_attempts,
                next_attempt_at: group.head_next_attempt_at,
                last_status: group.head_last_status,
                last_error: group.head_last_error,
                dead_reason: group.head_dead_reason,
            },
            key: group.group_key,
        }
    }
}

async fn list(
    State(state): State<AppState>,
    ApiPath((bus, rule, target)): ApiPath<(String, String, String)>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let wanted = match query.state.as_deref() {
        None => None,
        Some(text) => Some(GroupState::parse(text).ok_or_else(|| {
            ApiError::parameter(
                "state",
                format!("must be one of flowing, retrying, held, blocked; found {text:?}"),
            )
        })?),
    };
    let after = match &query.next_token {
        None => None,
        Some(token) => Some(decode_token(token).ok_or_else(|| {
            ApiError::parameter("next_token", "is not a next_token this API gave out")
        })?),
    };
    let mut conn = state.pool.acquire().await?;
    let target_ref = super::rules::find_target(&mut conn, &bus, &rule, &target).await?;
    // One more than asked tells whether another page exists.
    let mut groups =
        crate::store::groups::list(&mut conn, target_ref, wanted, after.as_deref(), limit + 1)
            .await?;
    let next_token =
        crate::store::page_end(&mut groups, limit as usize).map(|g| encode_token(&g.group_key));
    let groups: Vec<GroupOut> = groups.into_iter().map(GroupOut::from).collect();
    Ok(Json(serde_json::json!({ "groups": groups, "next_token": next_token })).into_response())
}

/// The longest `next_token` taken: `k` and a key (which is at most 256 bytes or a digest).
const MAX_TOKEN_CHARS: usize = 1025;

/// A page ends after a group key; the token is `k` and the key, so that it is never empty (the
/// empty key is a key).
fn encode_token(key: &str) -> String {
    format!("k{key}")
}

fn decode_token(token: &str) -> Option<String> {
    let key = token.strip_prefix('k')?;
    (token.chars().count() <= MAX_TOKEN_CHARS && !key.contains('\0')).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carries_any_key_and_refuses_what_it_never_gave() {
        for key in ["", "o-17", "\"quoted\" / and spaces", "sha256:00ff"] {
            assert_eq!(decode_token(&encode_token(key)).as_deref(), Some(key));
        }
        assert_eq!(decode_token(""), None);
        assert_eq!(decode_token("a"), None);
        assert_eq!(decode_token("ka\0b"), None);
        assert_eq!(
            decode_token(&format!("k{}", "x".repeat(MAX_TOKEN_CHARS))),
            None
        );
    }
}
