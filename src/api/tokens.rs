//! `/v1/tokens…`: create (the secret is in that answer only), list (never secrets) and revoke
//! API tokens and AWS access keys. Every route needs the `admin` scope.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::extract::{ApiPath, JsonText};
use super::problem::ApiError;
use crate::audit::Actor;
use crate::auth::{self, Issued, NewToken, Principal, TokenKind};
use crate::state::AppState;
use crate::store::{self, tokens::TokenRow};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(revoke))
}

#[derive(Serialize)]
struct TokenOut {
    id: Uuid,
    name: String,
    scope: String,
    /// `null`: every bus.
    buses: Option<Vec<String>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
    /// `bearer`, or `aws_access_key` (EventBridge's API, signed with SigV4).
    kind: &'static str,
    /// An access key's id (its secret is shown only when it is created).
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
}

impl From<TokenRow> for TokenOut {
    fn from(row: TokenRow) -> Self {
        TokenOut {
            id: row.id,
            name: row.name,
            scope: row.scope,
            buses: row.buses,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            kind: match row.access_key_id {
                Some(_) => TokenKind::AwsAccessKey.as_str(),
                None => TokenKind::Bearer.as_str(),
            },
            access_key_id: row.access_key_id,
        }
    }
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let tokens: Vec<TokenOut> = store::tokens::list(&mut conn)
        .await?
        .into_iter()
        .map(TokenOut::from)
        .collect();
    Ok(Json(serde_json::json!({ "tokens": tokens })).into_response())
}

async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonText(text): JsonText,
) -> Result<Response, ApiError> {
    let new = NewToken::parse(&text).map_err(|e| ApiError::validation(e.0))?;
    let (row, issued) =
        auth::issue_token(&state.pool, &state.sealer, &Actor::of(&principal), &new).await?;
    let mut body = serde_json::to_value(TokenOut::from(row)).map_err(|e| ApiError::internal(&e))?;
    match issued {
        Issued::Bearer(token) => body["token"] = token.into(),
        Issued::AccessKey { secret, .. } => body["secret_access_key"] = secret.into(),
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    // Token ids are UUIDs: anything else names no token.
    let no_token = || ApiError::not_found(format!("no token with id {id:?}"));
    let id = Uuid::parse_str(&id).map_err(|_| no_token())?;
    match auth::revoke_token(&state.pool, &Actor::of(&principal), id).await? {
        Some(row) => Ok(Json(TokenOut::from(row)).into_response()),
        None => Err(no_token()),
    }
}
