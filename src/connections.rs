//! Connections (how Switchyard authenticates to a target) and API destinations (an endpoint with
//! its method, connection and rate limit), as validated values: parsed from the REST API's JSON
//! (EventBridge's API maps its shapes onto these), split into what may be shown and what is
//! sealed ([`crate::secrets`]), and turned back into the headers a delivery sends.
//!
//! `BASIC` sends `Authorization: Basic …`; `API_KEY` a header of the connection's choosing;
//! `OAUTH_CLIENT_CREDENTIALS` a bearer token from the token endpoint (RFC 6749 §4.4, the client
//! authenticated with HTTP Basic), cached until it expires and fetched again once when the target
//! answers 401 ([`crate::delivery`]).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::fields::{Fields, check_text};
use crate::domain::{FieldError, ValidationErrors};

/// Longest name, description, parameter and secret (EventBridge's limits).
pub const MAX_NAME: usize = 64;
pub const MAX_DESCRIPTION: usize = 512;
pub const MAX_SECRET: usize = 512;
pub const MAX_PARAMETERS: usize = 100;
/// The most a rate limit may say (deliveries per second).
pub const MAX_RATE: u32 = 10_000;

/// A connection's or destination's name: 1–64 of `A-Z a-z 0-9 . - _` (EventBridge's).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("must be 1 to {MAX_NAME} characters"));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        Some(bad) => Err(format!(
            "may only contain letters, digits, `.`, `-` and `_`; found {bad:?}"
        )),
        None => Ok(()),
    }
}

/// How a connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationType {
    Basic,
    ApiKey,
    OAuthClientCredentials,
}

impl AuthorizationType {
    pub const ALL: [AuthorizationType; 3] = [
        AuthorizationType::Basic,
        AuthorizationType::ApiKey,
        AuthorizationType::OAuthClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationType::Basic => "basic",
            AuthorizationType::ApiKey => "api_key",
            AuthorizationType::OAuthClientCredentials => "oauth_client_credentials",
        }
    }

    pub fn parse(text: &str) -> Option<AuthorizationType> {
        AuthorizationType::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
    }

    /// EventBridge's name for it.
    pub fn aws(self) -> &'static str {
        match self {
            AuthorizationType::Basic => "BASIC",
            AuthorizationType::ApiKey => "API_KEY",
            AuthorizationType::OAuthClientCredentials => "OAUTH_CLIENT_CREDENTIALS",
        }
    }
}

/// What a connection may show: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameters {
    Basic {
        username: String,
    },
    ApiKey {
        /// The header the key is sent in.
        name: String,
    },
    Oauth(OAuthParameters),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthParameters {
    pub token_endpoint: String,
    /// `POST` (the default), `GET` or `PUT`.
    pub method: String,
    pub client_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub body_parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub query_parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub header_parameters: BTreeMap<String, String>,
}

impl Parameters {
    pub fn authorization_type(&self) -> AuthorizationType {
        match self {
            Parameters::Basic { .. } => AuthorizationType::Basic,
            Parameters::ApiKey { .. } => AuthorizationType::ApiKey,
            Parameters::Oauth(_) => AuthorizationType::OAuthClientCredentials,
        }
    }
}

/// A connection as saved: its description, its parameters, and its secret (a password, an API
/// key's value or a client secret); `None` keeps the stored one (a replacement of the same
/// type that leaves the secret out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub description: String,
    pub parameters: Parameters,
    pub secret: Option<String>,
}

/// Parses `PUT /v1/connections/{name}`'s body, every problem named by its pointer.
pub fn parse_connection(text: &str) -> Result<Connection, ValidationErrors> {
    let mut errors = Vec::new();
    let connection = Fields::parse(text, "", &mut errors).and_then(|mut fields| {
        let description = fields
            .take_string("description", &mut errors)
            .unwrap_or_default();
        if let Err(why) = check_text(&description, MAX_DESCRIPTION) {
            errors.push(FieldError::new("/description", why));
        }
        let kind = match fields.take_string("authorization_type", &mut errors) {
            Some(text) => AuthorizationType::parse(&text).or_else(|| {
                errors.push(FieldError::new(
                    "/authorization_type",
                    format!("must be basic, api_key or oauth_client_credentials; found {text:?}"),
                ));
                None
            }),
            None => {
                if !fields.had("authorization_type") {
                    errors.push(FieldError::new(
                        "/authorization_type",
                        "is required: basic, api_key or oauth_client_credentials",
                    ));
                }
                None
            }
        };
        let mut sections = BTreeMap::new();
        for section in ["basic", "api_key", "oauth"] {
            if let Some(raw) = fields.take(section) {
                sections.insert(section, raw);
            }
        }
        fields.refuse_unknown(&mut errors);
        let kind = kind?;
        let wanted = match kind {
            AuthorizationType::Basic => "basic",
            AuthorizationType::ApiKey => "api_key",
            AuthorizationType::OAuthClientCredentials => "oauth",
        };
        // A section of another type is refused, even as null.
        for other in ["basic", "api_key", "oauth"]
            .into_iter()
            .filter(|s| *s != wanted && (sections.contains_key(s) || fields.had(s)))
        {
            errors.push(FieldError::new(
                format!("/{other}"),
                format!("does not go with authorization_type {:?}", kind.as_str()),
            ));
        }
        let Some(raw) = sections.remove(wanted) else {
            errors.push(FieldError::new(
                format!("/{wanted}"),
                format!("is required with authorization_type {:?}", kind.as_str()),
            ));
            return None;
        };
        let (parameters, secret) = match kind {
            AuthorizationType::Basic => parse_basic(raw.get(), &mut errors)?,
            AuthorizationType::ApiKey => parse_api_key(raw.get(), &mut errors)?,
            AuthorizationType::OAuthClientCredentials => parse_oauth(raw.get(), &mut errors)?,
        };
        Some(Connection {
            description,
            parameters,
            secret,
        })
    });
    ValidationErrors::finish(connection, errors, "connection")
}

/// A required (or, for a secret, optional) text of at most `max` characters without NUL.
fn text(
    fields: &mut Fields,
    name: &str,
    base: &str,
    max: usize,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let at = format!("{base}/{name}");
    match fields.take_string(name, errors) {
        Some(value) if value.is_empty() => {
            errors.push(FieldError::new(at, "must not be empty"));
            None
        }
        Some(value) => match check_text(&value, max) {
            Ok(()) => Some(value),
            Err(why) => {
                errors.push(FieldError::new(at, why));
                None
            }
        },
        None => {
            if required && !fields.had(name) {
                errors.push(FieldError::new(at, "is required"));
            }
            None
        }
    }
}

type Parsed = (Parameters, Option<String>);

fn parse_basic(raw: &str, errors: &mut Vec<FieldError>) -> Option<Parsed> {
    let mut fields = Fields::parse(raw, "/basic", errors)?;
    let username = text(&mut fields, "username", "/basic", MAX_SECRET, true, errors);
    let password = text(&mut fields, "password", "/basic", MAX_SECRET, false, errors);
    fields.refuse_unknown(errors);
    if username.as_deref().is_some_and(|u| u.contains(':')) {
        errors.push(FieldError::new(
            "/basic/username",
            "must not contain `:` (Basic authentication separates it from the password with one)",
        ));
        return None;
    }
    Some((
        Parameters::Basic {
            username: username?,
        },
        password,
    ))
}

fn parse_api_key(raw: &str, errors: &mut Vec<FieldError>) -> Option<Parsed> {
    let mut fields = Fields::parse(raw, "/api_key", errors)?;
    let name = text(&mut fields, "name", "/api_key", 256, true, errors);
    let value = text(&mut fields, "value", "/api_key", MAX_SECRET, false, errors);
    fields.refuse_unknown(errors);
    let name = name?;
    if let Err(why) = header_name(&name) {
        errors.push(FieldError::new("/api_key/name", why));
        return None;
    }
    if let Some(value) = &value
        && !value.chars().all(|c| c == '\t' || (' '..='~').contains(&c))
    {
        errors.push(FieldError::new(
            "/api_key/value",
            "must be visible ASCII, spaces and tabs (it is sent as a header value)",
        ));
        return None;
    }
    Some((Parameters::ApiKey { name }, value))
}

fn header_name(name: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if crate::domain::RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(format!("{name:?} is set by Switchyard itself"));
    }
    Ok(())
}

fn string_map(
    raw: &str,
    at: &str,
    errors: &mut Vec<FieldError>,
) -> Option<BTreeMap<String, String>> {
    let Ok(map) = serde_json::from_str::<BTreeMap<String, String>>(raw) else {
        errors.push(FieldError::new(at, "must be an object of strings"));
        return None;
    };
    if map.len() > MAX_PARAMETERS {
        errors.push(FieldError::new(
            at,
            format!("at most {MAX_PARAMETERS} parameters"),
        ));
        return None;
    }
    for (name, value) in &map {
        let bad = check_text(name, 512).and_then(|()| check_text(value, MAX_SECRET));
        if name.is_empty() || bad.is_err() {
            errors.push(FieldError::new(
                crate::domain::fields::pointer(at, name),
                "names and values are texts of at most 512 characters without NUL",
            ));
            return None;
        }
    }
    Some(map)
}

fn parse_oauth(raw: &str, errors: &mut Vec<FieldError>) -> Option<Parsed> {
    let base = "/oauth";
    let mut fields = Fields::parse(raw, base, errors)?;
    let endpoint = text(&mut fields, "token_endpoint", base, 2048, true, errors);
    if let Some(endpoint) = &endpoint
        && let Err(why) = crate::domain::check_url(endpoint)
    {
        errors.push(FieldError::new("/oauth/token_endpoint", why));
    }
    let method = match fields.take_string("method", errors) {
        Some(m) if ["GET", "POST", "PUT"].contains(&m.to_ascii_uppercase().as_str()) => {
            Some(m.to_ascii_uppercase())
        }
        Some(m) => {
            errors.push(FieldError::new(
                "/oauth/method",
                format!("must be GET, POST or PUT; found {m:?}"),
            ));
            None
        }
        None => Some("POST".to_owned()),
    };
    let client_id = text(&mut fields, "client_id", base, MAX_SECRET, true, errors);
    let client_secret = text(
        &mut fields,
        "client_secret",
        base,
        MAX_SECRET,
        false,
        errors,
    );
    let scopes = match fields.take("scopes") {
        Some(raw) => match serde_json::from_str::<Vec<String>>(raw.get()) {
            Ok(scopes)
                if scopes
                    .iter()
                    .all(|s| !s.is_empty() && !s.contains(' ') && check_text(s, 256).is_ok()) =>
            {
                Some(scopes)
            }
            _ => {
                errors.push(FieldError::new(
                    "/oauth/scopes",
                    "must be an array of scope names (no spaces, no NUL)",
                ));
                None
            }
        },
        None => Some(Vec::new()),
    };
    let mut map = |name: &str| match fields.take(name) {
        Some(raw) => string_map(raw.get(), &format!("{base}/{name}"), errors),
        None => Some(BTreeMap::new()),
    };
    let body_parameters = map("body_parameters");
    let query_parameters = map("query_parameters");
    let header_parameters = map("header_parameters");
    fields.refuse_unknown(errors);
    for name in header_parameters.iter().flatten().map(|(n, _)| n) {
        if let Err(why) = header_name(name) {
            let at = crate::domain::fields::pointer("/oauth/header_parameters", name);
            errors.push(FieldError::new(at, why));
        }
    }
    Some((
        Parameters::Oauth(OAuthParameters {
            token_endpoint: endpoint?,
            method: method?,
            client_id: client_id?,
            scopes: scopes?,
            body_parameters: body_parameters?,
            query_parameters: query_parameters?,
            header_parameters: header_parameters?,
        }),
        client_secret,
    ))
}

/// The associated data a connection's secret is sealed with: its row.
pub fn sealed_for(name: &str) -> String {
    format!("connection/{name}")
}

/// A connection as a delivery reads it, its secret still sealed (opened only to send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedConnection {
    pub name: String,
    pub parameters: Parameters,
    pub secret_sealed: Vec<u8>,
    pub version: time::OffsetDateTime,
}

impl SealedConnection {
    pub fn open(
        &self,
        sealer: &crate::secrets::Sealer,
    ) -> Result<Credentials, crate::secrets::SecretError> {
        let secret = sealer.open(&self.secret_sealed, &sealed_for(&self.name))?;
        Ok(Credentials {
            name: self.name.clone(),
            parameters: self.parameters.clone(),
            secret: String::from_utf8(secret).map_err(|_| crate::secrets::SecretError::Damaged)?,
            version: self.version,
        })
    }
}

/// A connection with its secret, as deliveries use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub name: String,
    pub parameters: Parameters,
    pub secret: String,
    /// When the connection last changed: a cached OAuth token from before is not used.
    pub version: time::OffsetDateTime,
}

impl Credentials {
    /// The header that authenticates a request, for `BASIC` and `API_KEY` (OAuth's comes with
    /// its token).
    pub fn static_header(&self) -> Option<(String, String)> {
        match &self.parameters {
            Parameters::Basic { username } => {
                Some(("authorization".to_owned(), basic(username, &self.secret)))
            }
            Parameters::ApiKey { name } => Some((name.to_ascii_lowercase(), self.secret.clone())),
            Parameters::Oauth(_) => None,
        }
    }
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The token request of an OAuth connection: method, URL (with the query parameters), headers
/// and form body (`grant_type=client_credentials`, the scopes, the body parameters).
pub fn token_request(
    oauth: &OAuthParameters,
    client_secret: &str,
) -> (String, String, Vec<(String, String)>, String) {
    let mut url = oauth.token_endpoint.clone();
    if !oauth.query_parameters.is_empty() {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&oauth.query_parameters)
            .finish();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query);
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if !oauth.scopes.is_empty() {
        form.append_pair("scope", &oauth.scopes.join(" "));
    }
    form.extend_pairs(&oauth.body_parameters);
    let mut headers: Vec<(String, String)> = oauth
        .header_parameters
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    headers.push((
        "authorization".to_owned(),
        basic(&oauth.client_id, client_secret),
    ));
    headers.push((
        "content-type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    ));
    headers.push(("accept".to_owned(), "application/json".to_owned()));
    (oauth.method.clone(), url, headers, form.finish())
}

/// A token endpoint's answer: the access token and how long it lives (an hour when it does not
/// say, as is common).
pub fn read_token(body: &str) -> Result<(String, std::time::Duration), String> {
    let value: Value = serde_json::from_str(body)
        .map_err(|_| "the token endpoint's answer is not JSON".to_owned())?;
    let token = value["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the token endpoint's answer has no access_token".to_owned())?;
    let lifetime = value["expires_in"]
        .as_u64()
        .or_else(|| value["expires_in"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(3600);
    Ok((token.to_owned(), std::time::Duration::from_secs(lifetime)))
}

/// An API destination as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub description: String,
    pub connection: String,
    /// `https://…`, `*` standing for path parameters.
    pub endpoint: String,
    pub method: String,
    pub rate_limit_per_second: Option<u32>,
}

/// Methods an API destination may use (EventBridge's).
pub const DESTINATION_METHODS: [&str; 7] =
    ["POST", "GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"];

/// Parses `PUT /v1/api-destinations/{name}`'s body.
pub fn parse_destination(body: &str) -> Result<Destination, ValidationErrors> {
    let mut errors = Vec::new();
    let destination = Fields::parse(body, "", &mut errors).and_then(|mut fields| {
        let description = fields
            .take_string("description", &mut errors)
            .unwrap_or_default();
        if let Err(why) = check_text(&description, MAX_DESCRIPTION) {
            errors.push(FieldError::new("/description", why));
        }
        let connection = text(&mut fields, "connection", "", MAX_NAME, true, &mut errors);
        if let Some(name) = &connection
            && let Err(why) = check_name(name)
        {
            errors.push(FieldError::new("/connection", why));
        }
        let endpoint = text(&mut fields, "endpoint", "", 2048, true, &mut errors);
        if let Some(endpoint) = &endpoint
            && let Err(why) = crate::domain::check_url(&endpoint.replace('*', "x"))
        {
            errors.push(FieldError::new("/endpoint", why));
        }
        let method = match fields.take_string("method", &mut errors) {
            Some(m) if DESTINATION_METHODS.contains(&m.to_ascii_uppercase().as_str()) => {
                Some(m.to_ascii_uppercase())
            }
            Some(m) => {
                errors.push(FieldError::new(
                    "/method",
                    format!(
                        "must be one of {}; found {m:?}",
                        DESTINATION_METHODS.join(", ")
                    ),
                ));
                None
            }
            None => {
                if !fields.had("method") {
                    errors.push(FieldError::new("/method", "is required"));
                }
                None
            }
        };
        let rate = match fields.take("rate_limit_per_second") {
            Some(raw) => match crate::domain::fields::whole_number(
                &serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            ) {
                Some(n) if (1..=u64::from(MAX_RATE)).contains(&n) => Some(Some(n as u32)),
                _ => {
                    errors.push(FieldError::new(
                        "/rate_limit_per_second",
                        format!("must be an integer from 1 to {MAX_RATE}"),
                    ));
                    None
                }
            },
            None => Some(None),
        };
        fields.refuse_unknown(&mut errors);
        Some(Destination {
            description,
            connection: connection?,
            endpoint: endpoint?,
            method: method?,
            rate_limit_per_second: rate?,
        })
    });
    ValidationErrors::finish(destination, errors, "API destination")
}

/// The URL a destination target sends to: each `*` of the endpoint replaced by the next path
/// parameter (percent-encoded), then the query parameters appended. Errors name what is wrong.
pub fn destination_url(
    endpoint: &str,
    path_parameters: &[String],
    query_parameters: &BTreeMap<String, String>,
) -> Result<String, String> {
    let wildcards = endpoint.matches('*').count();
    if wildcards != path_parameters.len() {
        return Err(format!(
            "the endpoint {endpoint:?} has {wildcards} `*` path parameter(s); {} given",
            path_parameters.len()
        ));
    }
    let mut url = String::with_capacity(endpoint.len() + 32);
    let mut parameters = path_parameters.iter();
    for (i, piece) in endpoint.split('*').enumerate() {
        if i > 0 {
            let value = parameters.next().map(String::as_str).unwrap_or_default();
            url.push_str(&crate::aws::sigv4::uri_encode(value, true));
        }
        url.push_str(piece);
    }
    if !query_parameters.is_empty() {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query_parameters)
            .finish();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query);
    }
    crate::domain::check_url(&url)?;
    Ok(url)
}

/// Fills in each destination target of `rule` from its API destination (URL, method,
/// connection, rate limit) and checks that every connection named exists and that no header of
/// a target is one its connection sets. Returns the problems, each at its target's pointer.
pub async fn resolve_targets(
    conn: &mut sqlx::PgConnection,
    rule: &mut crate::domain::Rule,
) -> Result<Vec<FieldError>, sqlx::Error> {
    use crate::store::connections as store;
    let mut errors = Vec::new();
    for (i, target) in rule.targets.iter_mut().enumerate() {
        let at = |field: &str| format!("/targets/{i}/{field}");
        if let Some(reference) = &target.api_destination {
            match store::get_destination(conn, &reference.name, false).await? {
                None => errors.push(FieldError::new(
                    at("api_destination/name"),
                    format!("no API destination named {:?}", reference.name),
                )),
                Some(row) => match destination_url(
                    &row.endpoint,
                    &reference.path_parameters,
                    &reference.query_parameters,
                ) {
                    Ok(url) => {
                        target.url = url;
                        target.method = row.http_method;
                        target.connection = Some(row.connection);
                        target.rate_limit_per_second = row
                            .invocation_rate_limit_per_second
                            .and_then(|r| u32::try_from(r).ok());
                    }
                    Err(why) => errors.push(FieldError::new(at("api_destination"), why)),
                },
            }
        }
        let Some(name) = &target.connection else {
            continue;
        };
        let Some(row) = store::get_connection(conn, name, false).await? else {
            errors.push(FieldError::new(
                at("connection"),
                format!("no connection named {name:?}"),
            ));
            continue;
        };
        let set_by_connection = match serde_json::from_value::<Parameters>(row.parameters.0) {
            Ok(Parameters::ApiKey { name }) => name.to_ascii_lowercase(),
            _ => "authorization".to_owned(),
        };
        for header in target.headers.keys() {
            if header.eq_ignore_ascii_case(&set_by_connection) {
                errors.push(FieldError::new(
                    crate::domain::fields::pointer(&at("headers"), header),
                    format!("is set by the connection {name:?}"),
                ));
            }
        }
    }
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointers(text: &str) -> Vec<String> {
        parse_connection(text)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.pointer)
            .collect()
    }

    #[test]
    fn connections_parse_per_type_and_name_each_problem() {
        let parsed = parse_connection(
            r#"{"authorization_type": "basic", "basic": {"username": "u", "password": "p"}}"#,
        )
        .unwrap();
        assert_eq!(parsed.secret.as_deref(), Some("p"));
        assert_eq!(
            Credentials {
                name: "c".into(),
                parameters: parsed.parameters,
                secret: "p".into(),
                version: time::OffsetDateTime::UNIX_EPOCH,
            }
            .static_header(),
            Some(("authorization".into(), "Basic dTpw".into()))
        );
        let oauth = parse_connection(
            r#"{"authorization_type": "oauth_client_credentials", "oauth": {"token_endpoint": "https://auth.example/token", "client_id": "id", "client_secret": "s", "scopes": ["a", "b"], "body_parameters": {"audience": "x"}}}"#,
        )
        .unwrap();
        let Parameters::Oauth(params) = &oauth.parameters else {
            panic!("oauth")
        };
        assert_eq!(params.method, "POST");
        let (method, url, headers, body) = token_request(params, "s");
        assert_eq!(
            (method.as_str(), url.as_str()),
            ("POST", "https://auth.example/token")
        );
        assert_eq!(body, "grant_type=client_credentials&scope=a+b&audience=x");
        assert!(headers.contains(&("authorization".into(), basic("id", "s"))));

        assert_eq!(
            pointers(r#"{"authorization_type": "digest"}"#),
            ["/authorization_type"]
        );
        assert_eq!(pointers(r#"{"authorization_type": "basic"}"#), ["/basic"]);
        assert_eq!(
            pointers(
                r#"{"authorization_type": "api_key", "api_key": {"name": "content-type", "value": "v"}, "basic": {}}"#
            ),
            ["/basic", "/api_key/name"]
        );
        assert_eq!(
            pointers(
                r#"{"authorization_type": "oauth_client_credentials", "oauth": {"token_endpoint": "ftp://x", "client_id": "", "method": "DELETE"}}"#
            ),
            ["/oauth/token_endpoint", "/oauth/method", "/oauth/client_id"]
        );
        assert_eq!(
            pointers(
                r#"{"authorization_type": "basic", "basic": {"username": "a:b", "password": "p\u0000"}}"#
            ),
            ["/basic/password", "/basic/username"]
        );
    }

    #[test]
    fn tokens_are_read_with_their_lifetime() {
        assert_eq!(
            read_token(r#"{"access_token": "t", "expires_in": 60, "token_type": "Bearer"}"#),
            Ok(("t".into(), std::time::Duration::from_secs(60)))
        );
        assert_eq!(
            read_token(r#"{"access_token": "t"}"#).unwrap().1,
            std::time::Duration::from_secs(3600)
        );
        assert!(read_token(r#"{"error": "invalid_client"}"#).is_err());
        assert!(read_token("<html>").is_err());
    }

    #[test]
    fn destination_urls_fill_their_path_parameters_in_order() {
        let query = BTreeMap::from([("k".to_owned(), "a b".to_owned())]);
        assert_eq!(
            destination_url(
                "https://api.example/orders/*/lines/*",
                &["o 1".into(), "2".into()],
                &query
            )
            .unwrap(),
            "https://api.example/orders/o%201/lines/2?k=a+b"
        );
        assert!(destination_url("https://api.example/*", &[], &BTreeMap::new()).is_err());
        let destination = parse_destination(
            r#"{"connection": "c", "endpoint": "https://api.example/*", "method": "put", "rate_limit_per_second": 5}"#,
        )
        .unwrap();
        assert_eq!(
            (
                destination.method.as_str(),
                destination.rate_limit_per_second
            ),
            ("PUT", Some(5))
        );
        let errors = parse_destination(r#"{"connection": "c d", "endpoint": "x", "method": "TRACE", "rate_limit_per_second": 0}"#)
            .unwrap_err();
        let pointers: Vec<&str> = errors.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/connection",
                "/endpoint",
                "/method",
                "/rate_limit_per_second"
            ]
        );
    }
}
