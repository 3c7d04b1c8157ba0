//! `/healthz` (the process answers) and `/readyz` (the database answers and is migrated).

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
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    match store::is_ready(&state.pool).await {
        Ok(true) => Ok(Json(serde_json::json!({ "status": "ready" })).into_response()),
        Ok(false) => Err(ApiError::unavailable(
            "database migrations are not all applied",
        )),
        Err(error) => {
            tracing::warn!(error = %crate::telemetry::error_chain(&error), "readiness check failed");
            Err(ApiError::unavailable("the database does not answer"))
        }
    }
}
