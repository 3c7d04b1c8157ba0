//! `Authorization: Bearer <token>` on every `/v1` route, and what the token may do there: each
//! route needs a scope ([`needed_scope`]); a token limited to buses may use only routes whose
//! path names one of its buses. The [`Principal`] goes into the request's extensions for the
//! handlers (the audit log names it).

use axum::extract::rejection::RawPathParamsRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::problem::ApiError;
use crate::auth::{Principal, Scope, Verdict};
use crate::state::AppState;

pub async fn require_token(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <token>`"))?;
    let token = header
        .to_str()
        .ok()
        // The scheme is case-insensitive (RFC 9110, 11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
        })?;
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let principal = match state.auth.verdict(address, token).await? {
        Verdict::Accepted(principal) => principal,
        Verdict::Refused => return Err(ApiError::unauthorized("the token is not valid")),
        Verdict::Throttled(wait) => return Err(ApiError::throttled(wait)),
    };
    let route = matched.as_ref().map_or("", |m| m.as_str());
    let route = route.strip_prefix("/v1").unwrap_or(route);
    let needed = needed_scope(request.method(), route);
    if !principal.may(needed) {
        return Err(ApiError::forbidden(format!(
            "this route needs a token with the `{}` scope; token {:?} has `{}`",
            needed.as_str(),
            principal.name,
            principal.scope.as_str()
        )));
    }
    let bus = params
        .as_ref()
        .ok()
        .and_then(|params| params.iter().find(|(name, _)| *name == "bus"))
        .map(|(_, value)| value);
    check_bus(&principal, bus)?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// The scope a route needs: posting events `publish`; reading, testing a pattern and checking a
/// schema's compatibility `read`;
/// tokens, the audit log and every change `admin`.
pub fn needed_scope(method: &Method, route: &str) -> Scope {
    if route.starts_with("/tokens") || route.starts_with("/audit") {
        Scope::Admin
    } else if method == Method::POST && route == "/buses/{bus}/events" {
        Scope::Publish
    } else if method == Method::GET
        || method == Method::HEAD
        || route == "/test-event-pattern"
        || route == "/buses/{bus}/schemas/{source}/{detail_type}/check"
    {
        Scope::Read
    } else {
        Scope::Admin
    }
}

/// A token limited to buses may use a route only if the route names one of them.
fn check_bus(principal: &Principal, bus: Option<&str>) -> Result<(), ApiError> {
    let Some(buses) = &principal.buses else {
        return Ok(());
    };
    let allowed = buses.join(", ");
    match bus {
        Some(bus) if principal.may_use_bus(bus) => Ok(()),
        Some(bus) => Err(ApiError::forbidden(format!(
            "token {:?} may use only the buses {allowed}, not {bus:?}",
            principal.name
        ))),
        None => Err(ApiError::forbidden(format!(
            "token {:?} is limited to the buses {allowed}: it may use only routes that name one \
             of them (/v1/buses/{{bus}}/…)",
            principal.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_the_scope_of_what_they_do() {
        let cases = [
            (Method::POST, "/buses/{bus}/events", Scope::Publish),
            (Method::GET, "/buses/{bus}/rules", Scope::Read),
            (Method::GET, "/events/{id}", Scope::Read),
            (Method::POST, "/test-event-pattern", Scope::Read),
            (Method::PUT, "/buses/{bus}", Scope::Admin),
            (Method::DELETE, "/dead-letters/{id}", Scope::Admin),
            (Method::POST, "/dead-letters/redrive", Scope::Admin),
            (Method::GET, "/tokens", Scope::Admin),
            (Method::GET, "/audit", Scope::Admin),
        ];
        for (method, route, scope) in cases {
            assert_eq!(needed_scope(&method, route), scope, "{method} {route}");
        }
    }
}
