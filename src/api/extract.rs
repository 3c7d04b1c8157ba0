//! Extractors whose every rejection is a problem+json answer.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// A JSON request body as text: `Content-Type: application/json` (or `+json`), UTF-8, within the
/// route's body limit. Handlers parse it with the domain's own parsers, which name every field.
pub struct JsonText(pub String);

impl<S: Send + Sync> FromRequest<S> for JsonText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = crate::domain::cloudevent::essence(content_type);
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                format!(
                    "the body must be JSON sent with `Content-Type: application/json`; got {:?}",
                    content_type
                ),
            ));
        }
        let bytes = read_body(req, state).await?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_body("the body is not valid UTF-8"))?;
        Ok(JsonText(text))
    }
}

/// The body's bytes within the route's limit, whatever its content type (the handler decides).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(req, state).await.map(RawBody)
    }
}

/// The 415 answer for a body of a type the route does not take.
pub fn unsupported_media_type(detail: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        detail,
    )
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(inner)
                if inner.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    "Payload too large",
                    "the request body is larger than this route accepts",
                )
            }
            other => body_failure(other),
        })
}

/// A body that could not be read: 408 when it did not arrive within the body-read deadline,
/// else 400 with what went wrong.
fn body_failure(rejection: BytesRejection) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(error) = cause {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "Request timeout",
                "the request body did not arrive within SWITCHYARD_BODY_READ_TIMEOUT_MS",
            );
        }
        cause = error.source();
    }
    ApiError::bad_body(rejection.body_text())
}

/// An optional JSON body: a request with neither a body nor a `Content-Type` gives `None`.
impl<S: Send + Sync> OptionalFromRequest<S> for JsonText {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return <JsonText as FromRequest<S>>::from_request(req, state)
                .await
                .map(Some);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_failure)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else {
            Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "a request body must be sent with `Content-Type: application/json`",
            ))
        }
    }
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|rejection: PathRejection| ApiError::parameter("path", rejection.body_text()))
    }
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::parameter("query", rejection.body_text())
            })
    }
}

/// For `#[serde(default, deserialize_with = "not_null")]`: an optional field may be left out,
/// but `null` is refused like any other value of the wrong type (openapi.yaml does not allow it).
pub fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For `#[serde(default, deserialize_with = "object")]`: an optional member that must be a JSON
/// object (serde would also fill a struct from an array, by position) and not `null`.
pub fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    let members = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
    T::deserialize(serde_json::Value::Object(members))
        .map(Some)
        .map_err(D::Error::custom)
}

/// Parses a small JSON body into `T`, which must be an object (serde would also fill a struct
/// from an array); a refused value is named by its JSON pointer.
pub fn parse_body<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Result<T, ApiError> {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
        && !text.trim_start().starts_with('{')
    {
        return Err(ApiError::validation(vec![crate::domain::FieldError::new(
            "",
            "must be a JSON object",
        )]));
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_body(format!("the body is not valid JSON: {inner}"));
        }
        let mut pointer = String::new();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    pointer.push_str(&format!("/{index}"))
                }
                serde_path_to_error::Segment::Map { key } => {
                    pointer = crate::domain::fields::pointer(&pointer, key)
                }
                serde_path_to_error::Segment::Enum { variant } => {
                    pointer = crate::domain::fields::pointer(&pointer, variant)
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        // serde's message ends with a position; the pointer says where.
        let message = inner.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_owned();
        ApiError::validation(vec![crate::domain::FieldError::new(pointer, message)])
    })
}
