//! EventBridge's own API, so that the AWS SDKs and the aws CLI work unchanged: the JSON 1.1
//! protocol (`POST /` with `X-Amz-Target: AWSEvents.<Action>`), requests signed with SigV4 by
//! access keys Switchyard issues ([`crate::auth::TokenKind::AwsAccessKey`]), shapes, limits and
//! error types as AWS's API reference gives them (`{"__type": …, "message": …}`).
//!
//! Every action is a thin translation onto what the REST API does: the same rules, buses and
//! ingest path, saved through the same functions ([`crate::api::rules::save_in`], …), so a rule
//! made here is the same rule in REST, `rules/` files and the UI. Scopes and bus limits of the
//! key apply as they do to bearer tokens.

pub mod actions;
mod archives;
pub mod arn;
mod connections;
pub mod sigv4;
mod targets;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{KeyError, KeyVerdict, Principal, Scope};
use crate::state::AppState;
use crate::store::{Fault, StoreError};

/// The JSON 1.1 protocol's media type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The service name requests are signed for.
pub const SERVICE: &str = "events";
const TARGET_PREFIX: &str = "AWSEvents.";

pub fn routes() -> Router<AppState> {
    Router::new().route("/", post(call))
}

/// An error as the AWS SDKs read it: `__type` names the exception, `message` says why.
#[derive(Debug)]
pub struct AwsError {
    pub kind: &'static str,
    pub status: StatusCode,
    pub message: String,
}

impl AwsError {
    pub fn new(kind: &'static str, status: StatusCode, message: impl Into<String>) -> AwsError {
        AwsError {
            kind,
            status,
            message: message.into(),
        }
    }

    /// A request field AWS's constraints refuse, worded as AWS words it.
    pub fn validation(field: &str, why: impl std::fmt::Display) -> AwsError {
        AwsError::new(
            "ValidationException",
            StatusCode::BAD_REQUEST,
            format!(
                "1 validation error detected: Value at '{field}' failed to satisfy constraint: {why}"
            ),
        )
    }

    /// A request EventBridge's rules refuse (not a field's shape): its message as is.
    pub fn invalid(message: impl Into<String>) -> AwsError {
        AwsError::new("ValidationException", StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> AwsError {
        AwsError::new(
            "ResourceNotFoundException",
            StatusCode::BAD_REQUEST,
            message,
        )
    }

    pub fn already_exists(message: impl Into<String>) -> AwsError {
        AwsError::new(
            "ResourceAlreadyExistsException",
            StatusCode::BAD_REQUEST,
            message,
        )
    }

    pub fn access_denied(message: impl Into<String>) -> AwsError {
        AwsError::new("AccessDeniedException", StatusCode::BAD_REQUEST, message)
    }

    fn internal(error: &(dyn std::error::Error + 'static)) -> AwsError {
        tracing::error!(error = %crate::telemetry::error_chain(error), "AWS API request failed");
        AwsError::new(
            "InternalException",
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request failed on the server; the log has the details",
        )
    }
}

impl AwsError {
    /// A failure that concerns the database: text Postgres cannot store, the database
    /// unreachable (503, which the SDKs retry), or anything else (an opaque, logged 500).
    pub fn from_failure(error: &(dyn std::error::Error + 'static)) -> AwsError {
        match crate::store::fault(error) {
            Some(Fault::RefusedText) => AwsError::invalid(
                "a text in the request contains a NUL character (\\u0000), which cannot be stored",
            ),
            Some(Fault::Unavailable) => AwsError::new(
                "ServiceUnavailableException",
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable; try again shortly",
            ),
            None => AwsError::internal(error),
        }
    }
}

impl From<StoreError> for AwsError {
    fn from(error: StoreError) -> Self {
        AwsError::from_failure(&error)
    }
}

impl From<sqlx::Error> for AwsError {
    fn from(error: sqlx::Error) -> Self {
        AwsError::from(StoreError::from(error))
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.kind, "message": self.message });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Ok(kind) = HeaderValue::from_str(self.kind) {
            headers.insert("x-amzn-errortype", kind);
        }
        response
    }
}

/// What an action has: the application, who signed, and the configured account and region.
pub struct Call<'a> {
    pub state: &'a AppState,
    pub principal: Principal,
}

impl Call<'_> {
    pub fn account(&self) -> &str {
        &self.state.ingest.account
    }

    pub fn region(&self) -> &str {
        &self.state.ingest.region
    }

    pub fn actor(&self) -> crate::audit::Actor {
        crate::audit::Actor::of(&self.principal)
    }

    /// Refuses unless the key's scope covers `needed`.
    pub fn need(&self, needed: Scope) -> Result<(), AwsError> {
        if self.principal.may(needed) {
            Ok(())
        } else {
            Err(AwsError::access_denied(format!(
                "access key {:?} has the `{}` scope; this action needs `{}`",
                self.principal.name,
                self.principal.scope.as_str(),
                needed.as_str()
            )))
        }
    }

    /// Refuses unless the key may use `bus`.
    pub fn may_use(&self, bus: &str) -> Result<(), AwsError> {
        if self.principal.may_use_bus(bus) {
            Ok(())
        } else {
            Err(AwsError::access_denied(format!(
                "access key {:?} may not use the event bus {bus:?}",
                self.principal.name
            )))
        }
    }
}

/// A time as the JSON 1.1 protocol sends it: seconds since the epoch, with a fraction.
pub fn epoch_seconds(time: time::OffsetDateTime) -> f64 {
    time.unix_timestamp() as f64 + f64::from(time.millisecond()) / 1000.0
}

/// The time a protocol timestamp (seconds since the epoch) names, if it is one.
pub fn from_epoch_seconds(seconds: f64) -> Option<time::OffsetDateTime> {
    let nanos = (seconds * 1e9).round();
    (nanos.is_finite() && nanos.abs() < 1e19)
        .then(|| time::OffsetDateTime::from_unix_timestamp_nanos(nanos as i128).ok())
        .flatten()
}

/// Reads an action's input; a body that is not its shape is refused with the member's path.
pub fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let mut reader = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            AwsError::new(
                "SerializationException",
                StatusCode::BAD_REQUEST,
                format!("the body is not the action's JSON input: {inner}"),
            )
        } else {
            AwsError::validation(&path, inner)
        }
    })
}

/// An action's output as the protocol sends it.
pub fn output(value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => {
            let mut response = (StatusCode::OK, text).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(error) => AwsError::internal(&error).into_response(),
    }
}

async fn call(State(state): State<AppState>, request: Request) -> Response {
    let request_id = uuid::Uuid::now_v7().to_string();
    let (parts, body) = request.into_parts();
    let limit = state.ingest.max_request_bytes;
    let answer = match axum::body::to_bytes(body, limit).await {
        Ok(body) => handle(&state, &parts, &body).await,
        Err(error) if error.to_string().contains("length limit") => Err(AwsError::new(
            "RequestEntityTooLargeException",
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request must be smaller than {limit} bytes."),
        )),
        Err(error) => Err(AwsError::new(
            "SerializationException",
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {error}"),
        )),
    };
    let mut response = match answer {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(kind = error.kind, message = %error.message, "AWS API call refused");
            error.into_response()
        }
    };
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

async fn handle(state: &AppState, parts: &Parts, body: &[u8]) -> Result<Response, AwsError> {
    let unknown =
        |why: String| AwsError::new("UnknownOperationException", StatusCode::BAD_REQUEST, why);
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            unknown(
                "EventBridge's API takes POST / with an X-Amz-Target: AWSEvents.<Action> header; \
                 Switchyard's own API is under /v1 (see openapi.yaml)"
                    .to_owned(),
            )
        })?;
    let action = target.strip_prefix(TARGET_PREFIX).ok_or_else(|| {
        unknown(format!(
            "X-Amz-Target {target:?} is not an EventBridge action (AWSEvents.<Action>)"
        ))
    })?;
    let action = actions::Action::parse(action).ok_or_else(|| {
        unknown(format!(
            "{action} is not an action Switchyard serves; README lists the ones it does"
        ))
    })?;
    let principal = authenticate(state, parts, body).await?;
    let call = Call { state, principal };
    action.run(&call, body).await
}

/// Who signed the request, by the access key its SigV4 signature names.
async fn authenticate(state: &AppState, parts: &Parts, body: &[u8]) -> Result<Principal, AwsError> {
    use sigv4::SignatureError;
    let headers = &parts.headers;
    let refused = |error: SignatureError| {
        let kind = match error {
            SignatureError::Missing => "MissingAuthenticationTokenException",
            SignatureError::Incomplete(_) | SignatureError::Scope(_) => {
                "IncompleteSignatureException"
            }
            SignatureError::Expired { .. }
            | SignatureError::NotYetCurrent { .. }
            | SignatureError::Mismatch => "InvalidSignatureException",
        };
        let status = match error {
            SignatureError::Missing => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        AwsError::new(kind, status, error.to_string())
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .ok_or(SignatureError::Missing)
        .and_then(|v| {
            v.to_str()
                .map_err(|_| SignatureError::Incomplete("Authorization is not ASCII.".into()))
        })
        .map_err(refused)?;
    let auth = sigv4::Authorization::parse(header).map_err(refused)?;
    let pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let request = sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    let expect = sigv4::Expect {
        region: &state.ingest.region,
        service: SERVICE,
        now: time::OffsetDateTime::now_utc(),
    };
    let stamp = sigv4::check_scope(&auth, &request, &expect).map_err(refused)?;
    let address = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let (principal, secret) = match state.auth.access_key(address, &auth.access_key_id).await {
        Ok(KeyVerdict::Found(principal, secret)) => (principal, secret),
        Ok(KeyVerdict::Unknown) => {
            return Err(AwsError::new(
                "UnrecognizedClientException",
                StatusCode::BAD_REQUEST,
                "The security token included in the request is invalid.",
            ));
        }
        Ok(KeyVerdict::Throttled(wait)) => {
            return Err(AwsError::new(
                "ThrottlingException",
                StatusCode::BAD_REQUEST,
                format!(
                    "too many failed authentications from this address; try again in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        Err(KeyError::Store(error)) => return Err(error.into()),
        Err(KeyError::Secret(error)) => return Err(AwsError::internal(&error)),
    };
    if let Err(error) = sigv4::verify(&auth, &request, &stamp, &secret) {
        state.auth.failed(address);
        return Err(refused(error));
    }
    Ok(principal)
}
