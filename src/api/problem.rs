//! API errors as RFC 9457 problem details (`application/problem+json`), with an `errors` list of
//! `{pointer, detail}` naming each refused field. 5xx bodies are opaque; the cause is logged.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::{FieldError, ValidationErrors};
use crate::store::{Fault, StoreError};
use crate::telemetry::error_chain;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// An error answer. `kind` is the last part of the problem `type` URI.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Seconds to send as `Retry-After` (with 503s).
    pub retry_after: Option<u32>,
    /// Extension members of the problem (RFC 9457, 3.2): what a client needs beyond the detail,
    /// such as the reasons a schema version was refused.
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// `Retry-After` of a 503 when the database is unavailable, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 2;

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            extensions: serde_json::Map::new(),
        }
    }

    /// The problem with an extension member.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> ApiError {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    /// A request body that is well-formed JSON but refused, field by field.
    pub fn validation(errors: Vec<FieldError>) -> ApiError {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", display_pointer(&one.pointer), one.detail),
            many => format!("{} fields are not valid", many.len()),
        };
        ApiError {
            errors,
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                "validation",
                "Invalid request",
                detail,
            )
        }
    }

    /// A refused path or query parameter.
    pub fn parameter(name: &str, detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-parameter",
            "Invalid parameter",
            format!("parameter `{name}`: {detail}"),
        )
    }

    pub fn bad_body(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed-body",
            "Malformed request body",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// The token is valid but may not do this; `detail` names the missing scope or bus.
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// Too many wrong tokens from the client's address: 429 with `Retry-After`.
    pub fn throttled(wait: std::time::Duration) -> ApiError {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u32;
        ApiError {
            retry_after: Some(seconds),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-failed-authentications",
                "Too many failed authentications",
                format!("too many wrong tokens came from this address; try again in {seconds} s"),
            )
        }
    }

    /// Something failed on our side: logged with its cause chain, answered opaquely.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> ApiError {
        tracing::error!(error = %error_chain(error), "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request failed on the server; the log has the details",
        )
    }

    /// The database cannot serve the request now: 503 with `Retry-After`.
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(RETRY_AFTER_SECONDS),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                detail,
            )
        }
    }

    /// A failure that concerns the database: the request's text Postgres cannot store (400),
    /// the database unreachable (503), or anything else (an opaque, logged 500).
    pub fn from_failure(error: &(dyn std::error::Error + 'static)) -> ApiError {
        match crate::store::fault(error) {
            Some(Fault::RefusedText) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "unstorable-text",
                "Unstorable text",
                "a text in the request contains a NUL character (\\u0000), which cannot be stored",
            ),
            Some(Fault::Unavailable) => {
                tracing::warn!(error = %error_chain(error), "the database is unavailable");
                ApiError::unavailable("the database is unavailable; try again shortly")
            }
            None => ApiError::internal(error),
        }
    }
}

fn display_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        "the body".to_owned()
    } else {
        format!("`{pointer}`")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            kind: format!("urn:switchyard:problem:{}", self.kind),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
            extensions: &self.extensions,
        };
        let text = serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"));
        let mut response = (self.status, text).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::validation(errors.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::from_failure(&error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::from(StoreError::from(error))
    }
}
