//! `/healthz` (the process answers), `/readyz` (the database answers and is migrated) and
//! `/metrics` (OpenMetrics text, see [`crate::metrics`]).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::problem::ApiError;
use crate::state::AppState;
use crate::store;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// `/readyz` answers within this, ready or not.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    match tokio::time::timeout(READY_WITHIN, store::is_ready(&state.pool)).await {
        Ok(Ok(true)) => Ok(Json(serde_json::json!({ "status": "ready" })).into_response()),
        Ok(Ok(false)) => Err(ApiError::unavailable(
            "database migrations are not all applied",
        )),
        Ok(Err(error)) => {
            tracing::warn!(error = %crate::telemetry::error_chain(&error), "readiness check failed");
            Err(ApiError::unavailable("the database does not answer"))
        }
        Err(_) => Err(ApiError::unavailable(format!(
            "the database did not answer within {} ms",
            READY_WITHIN.as_millis()
        ))),
    }
}

/// The OpenMetrics text; with a configured token, only for `Authorization: Bearer <token>`
/// (digests are compared, so the comparison's timing says nothing about the token).
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(expected) = state.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(crate::auth::sha256);
        if presented != Some(expected) {
            return Err(ApiError::unauthorized(
                "/metrics asks for the token of SWITCHYARD_METRICS_TOKEN as `Authorization: Bearer <token>`",
            ));
        }
    }
    let mut conn = state.pool.acquire().await?;
    let queue = store::overview::overview(&mut conn).await?;
    let mut response = state.metrics.render(&queue).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    Ok(response)
}
