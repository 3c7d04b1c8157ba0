//! `POST /v1/test-event-pattern`: does this pattern match this event? Nothing is stored.

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use serde_json::value::RawValue;

use super::extract::JsonText;
use super::problem::ApiError;
use crate::domain::FieldError;
use crate::pattern::{self, TestOutcome};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/test-event-pattern", post(test_event_pattern))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TestIn<'a> {
    #[serde(borrow)]
    event_pattern: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
}

/// An object, or (as EventBridge's API takes them) a string holding its JSON text.
fn json_text(raw: &RawValue, field: &str) -> Result<String, FieldError> {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Object(_)) => Ok(raw.get().to_owned()),
        Ok(Value::String(text)) => Ok(text),
        _ => Err(FieldError::new(
            format!("/{field}"),
            "must be a JSON object (or a string holding one)",
        )),
    }
}

async fn test_event_pattern(JsonText(body): JsonText) -> Result<Response, ApiError> {
    let input: TestIn = super::extract::parse_body(&body)?;
    let mut errors = Vec::new();
    let mut take = |raw: Option<&RawValue>, field: &str| match raw {
        Some(raw) => json_text(raw, field).map_err(|e| errors.push(e)).ok(),
        None => {
            errors.push(FieldError::new(format!("/{field}"), "is required"));
            None
        }
    };
    let pattern_text = take(input.event_pattern, "event_pattern");
    let event_text = take(input.event, "event");
    let (Some(pattern_text), Some(event_text)) = (pattern_text, event_text) else {
        return Err(ApiError::validation(errors));
    };
    let result = match pattern::test(&pattern_text, event_text.as_bytes()) {
        TestOutcome::Match => true,
        TestOutcome::NoMatch => false,
        TestOutcome::InvalidPattern(e) => {
            return Err(ApiError::validation(vec![FieldError::new(
                format!("/event_pattern{}", e.pointer),
                e.aws_message(),
            )]));
        }
        TestOutcome::InvalidEvent(e) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "/event",
                e.to_string(),
            )]));
        }
    };
    Ok(Json(serde_json::json!({ "result": result })).into_response())
}
