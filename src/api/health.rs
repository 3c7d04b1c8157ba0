//! `/healthz` (the process answers), `/readyz` (the database answers and is migrated) and
//! `/metrics` (Prometheus text format).

use axum::Json;
use axum::Router;
use axum::extract::State;
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

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let queue = store::overview::overview(&mut conn).await?;
    let mut response = state.metrics.render(&queue).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
