//! The HTTP API: one file per resource, each with its wire types, handlers and `routes()`.
//! Every `/v1` route requires a bearer token; every error is problem+json.

pub(crate) mod archives;
mod audit;
mod auth;
pub(crate) mod buses;
pub(crate) mod connections;
mod dead_letters;
pub(crate) mod events;
pub mod extract;
mod groups;
mod health;
pub mod problem;
pub(crate) mod replays;
pub(crate) mod rules;
pub(crate) mod schemas;
mod test_pattern;
mod tokens;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
pub use buses::DEFAULT_BUS;
use problem::ApiError;

/// Bodies of routes other than ingest (rules, buses, pattern tests) are at most this large.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .merge(buses::routes())
        .merge(rules::routes())
        .merge(groups::routes())
        .merge(archives::routes())
        .merge(schemas::routes())
        .merge(replays::routes())
        .merge(dead_letters::routes())
        .merge(events::routes(state.ingest.max_request_bytes))
        .merge(test_pattern::routes())
        .merge(tokens::routes())
        .merge(connections::routes())
        .merge(audit::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .nest("/v1", v1)
        .merge(health::routes())
        // EventBridge's own API (it reads its body up to the ingest request limit itself).
        .merge(crate::aws::routes())
        .merge(crate::ui::router(state.clone()))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(RequestBodyDeadlineLayer::new(state.http.body_read_timeout))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                        let id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id = id)
                    }),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "Internal error",
                        "the request failed on the server; the log has the details",
                    )
                    .into_response()
                })),
        )
        .with_state(state)
}

/// Every request is answered within the request timeout: past it, 503 with Retry-After (the
/// database accepted a connection and then hung, say), as a problem or, for the UI, a page.
async fn deadline(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    let ui = request.uri().path().starts_with("/ui");
    let aws = request.headers().contains_key("x-amz-target");
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let ms = state.request_timeout.as_millis();
            tracing::warn!(timeout_ms = ms as u64, "request timed out");
            if ui {
                return crate::ui::unavailable_page();
            }
            if aws {
                // EventBridge's API answers in its own shape (the SDKs retry a 503).
                return crate::aws::AwsError::new(
                    "ServiceUnavailableException",
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the request did not complete within {ms} ms; the database may be unavailable"),
                )
                .into_response();
            }
            ApiError::unavailable(format!(
                "the request did not complete within {ms} ms; the database may be unavailable"
            ))
            .into_response()
        }
    }
}

async fn fallback() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no-route",
        "Not found",
        "no such route; see openapi.yaml",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not take that method; see openapi.yaml",
    )
}

/// A list's `cursor` parameter read back by `decode`; one this API did not give out is refused.
fn page_cursor<T>(
    cursor: Option<&str>,
    decode: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    cursor
        .map(|text| {
            decode(text)
                .ok_or_else(|| ApiError::parameter("cursor", "is not a cursor this API gave out"))
        })
        .transpose()
}

/// A list's `limit` parameter: `default` when absent, refused outside 1 to `max`.
fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::parameter(
            "limit",
            format!("must be from 1 to {max}"),
        ));
    }
    Ok(limit)
}
