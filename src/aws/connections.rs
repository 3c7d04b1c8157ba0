//! EventBridge's connection and API destination actions, onto the REST API's
//! [`crate::api::connections`] functions: the same validation, sealing and audit. AWS's shapes
//! map field by field; what has no counterpart here is refused (secret OAuth parameters,
//! invocation parameters of a connection, private connectivity, KMS keys).

use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::actions::first_problem;
use super::{AwsError, Call, arn, epoch_seconds, output};
use crate::api::connections::{self as api, ConnectionOut, Saved};
use crate::auth::Scope;
use crate::connections::{self, Connection, Destination, OAuthParameters, Parameters};
use crate::store::{self, connections::Deleted};

fn aws_type(kind: &str) -> &'static str {
    connections::AuthorizationType::parse(kind)
        .map(|k| k.aws())
        .unwrap_or("BASIC")
}

fn name_field(name: Option<String>) -> Result<String, AwsError> {
    let name = name.ok_or_else(|| AwsError::validation("name", "Member must not be null"))?;
    connections::check_name(&name).map_err(|why| AwsError::validation("name", why))?;
    Ok(name)
}

fn connection_not_found(name: &str) -> AwsError {
    AwsError::not_found(format!(
        "Failed to describe the connection(s). Connection '{name}' does not exist."
    ))
}

fn destination_not_found(name: &str) -> AwsError {
    AwsError::not_found(format!(
        "Failed to describe the api-destination(s). An api-destination '{name}' does not exist."
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct KeyValue {
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    is_value_secret: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct HttpParameters {
    #[serde(default)]
    header_parameters: Vec<KeyValue>,
    #[serde(default)]
    query_string_parameters: Vec<KeyValue>,
    #[serde(default)]
    body_parameters: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct BasicIn {
    username: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ApiKeyIn {
    api_key_name: Option<String>,
    api_key_value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ClientIn {
    #[serde(rename = "ClientID")]
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct OAuthIn {
    client_parameters: Option<ClientIn>,
    authorization_endpoint: Option<String>,
    http_method: Option<String>,
    #[serde(rename = "OAuthHttpParameters")]
    oauth_http_parameters: Option<HttpParameters>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct AuthParametersIn {
    basic_auth_parameters: Option<BasicIn>,
    api_key_auth_parameters: Option<ApiKeyIn>,
    #[serde(rename = "OAuthParameters")]
    oauth_parameters: Option<OAuthIn>,
    invocation_http_parameters: Option<HttpParameters>,
    connectivity_parameters: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ConnectionIn {
    name: Option<String>,
    description: Option<String>,
    authorization_type: Option<String>,
    auth_parameters: Option<AuthParametersIn>,
    kms_key_identifier: Option<String>,
    invocation_connectivity_parameters: Option<Value>,
}

/// `[{Key, Value}]` as a map; a secret one is refused (it would be stored in clear).
fn pairs(
    items: Vec<KeyValue>,
    field: &str,
) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    let mut map = std::collections::BTreeMap::new();
    for item in items {
        if item.is_value_secret {
            return Err(AwsError::invalid(format!(
                "{field}: IsValueSecret parameters are not supported by Switchyard (they would be kept in clear); put the secret in ClientSecret"
            )));
        }
        let (Some(key), Some(value)) = (item.key, item.value) else {
            return Err(AwsError::validation(field, "Key and Value are required"));
        };
        map.insert(key, value);
    }
    Ok(map)
}

/// The connection `input` describes, over `current` (UpdateConnection changes what it names).
fn connection_of(
    input: ConnectionIn,
    current: Option<&ConnectionOut>,
) -> Result<Connection, AwsError> {
    super::actions::unsupported(&[
        ("KmsKeyIdentifier", input.kms_key_identifier.is_some()),
        (
            "InvocationConnectivityParameters (private APIs)",
            input.invocation_connectivity_parameters.is_some(),
        ),
    ])?;
    let auth = input.auth_parameters.unwrap_or_default();
    super::actions::unsupported(&[
        (
            "ConnectivityParameters (private APIs)",
            auth.connectivity_parameters.is_some(),
        ),
        (
            "InvocationHttpParameters on a connection (set headers and query parameters on the target)",
            auth.invocation_http_parameters.as_ref().is_some_and(|p| {
                !(p.header_parameters.is_empty()
                    && p.query_string_parameters.is_empty()
                    && p.body_parameters.is_empty())
            }),
        ),
    ])?;
    let kind = match (input.authorization_type.as_deref(), current) {
        (Some("BASIC"), _) => connections::AuthorizationType::Basic,
        (Some("API_KEY"), _) => connections::AuthorizationType::ApiKey,
        (Some("OAUTH_CLIENT_CREDENTIALS"), _) => {
            connections::AuthorizationType::OAuthClientCredentials
        }
        (Some(other), _) => {
            return Err(AwsError::validation(
                "authorizationType",
                format!(
                    "Member must satisfy enum value set: [BASIC, OAUTH_CLIENT_CREDENTIALS, API_KEY]; got {other:?}"
                ),
            ));
        }
        (None, Some(out)) => out.parameters.authorization_type(),
        (None, None) => {
            return Err(AwsError::validation(
                "authorizationType",
                "Member must not be null",
            ));
        }
    };
    // What the connection has now, when it is of this type: the base UpdateConnection changes.
    let (base, description) = match current {
        Some(out) if out.parameters.authorization_type() == kind => {
            (Some(out.parameters.clone()), out.description.clone())
        }
        Some(out) => (None, out.description.clone()),
        None => (None, String::new()),
    };
    let missing =
        |what: &str| AwsError::invalid(format!("{what} is required for this authorization type"));
    let (parameters, secret) = match kind {
        connections::AuthorizationType::Basic => {
            let given = auth.basic_auth_parameters.unwrap_or_default();
            let username = match (given.username, base) {
                (Some(u), _) => u,
                (None, Some(Parameters::Basic { username })) => username,
                _ => return Err(missing("BasicAuthParameters.Username")),
            };
            (Parameters::Basic { username }, given.password)
        }
        connections::AuthorizationType::ApiKey => {
            let given = auth.api_key_auth_parameters.unwrap_or_default();
            let name = match (given.api_key_name, base) {
                (Some(n), _) => n,
                (None, Some(Parameters::ApiKey { name })) => name,
                _ => return Err(missing("ApiKeyAuthParameters.ApiKeyName")),
            };
            (Parameters::ApiKey { name }, given.api_key_value)
        }
        connections::AuthorizationType::OAuthClientCredentials => {
            let given = auth.oauth_parameters.unwrap_or_default();
            let old = match base {
                Some(Parameters::Oauth(old)) => Some(old),
                _ => None,
            };
            let client = given.client_parameters.unwrap_or_default();
            let http = match given.oauth_http_parameters {
                Some(p) => Some((
                    pairs(p.header_parameters, "OAuthHttpParameters.HeaderParameters")?,
                    pairs(
                        p.query_string_parameters,
                        "OAuthHttpParameters.QueryStringParameters",
                    )?,
                    pairs(p.body_parameters, "OAuthHttpParameters.BodyParameters")?,
                )),
                None => None,
            };
            let (headers, query, body) = match (http, &old) {
                (Some(http), _) => http,
                (None, Some(old)) => (
                    old.header_parameters.clone(),
                    old.query_parameters.clone(),
                    old.body_parameters.clone(),
                ),
                (None, None) => Default::default(),
            };
            let endpoint = given
                .authorization_endpoint
                .or_else(|| old.as_ref().map(|o| o.token_endpoint.clone()))
                .ok_or_else(|| missing("OAuthParameters.AuthorizationEndpoint"))?;
            let client_id = client
                .client_id
                .or_else(|| old.as_ref().map(|o| o.client_id.clone()))
                .ok_or_else(|| missing("OAuthParameters.ClientParameters.ClientID"))?;
            let method = given
                .http_method
                .or_else(|| old.as_ref().map(|o| o.method.clone()))
                .unwrap_or_else(|| "POST".to_owned());
            (
                Parameters::Oauth(OAuthParameters {
                    token_endpoint: endpoint,
                    method,
                    client_id,
                    scopes: old.map(|o| o.scopes).unwrap_or_default(),
                    body_parameters: body,
                    query_parameters: query,
                    header_parameters: headers,
                }),
                client.client_secret,
            )
        }
    };
    // Through the REST API's parser: one set of checks for both APIs.
    let mut section =
        serde_json::to_value(&parameters).map_err(|e| AwsError::invalid(e.to_string()))?;
    let key = match kind {
        connections::AuthorizationType::Basic => ("basic", "password"),
        connections::AuthorizationType::ApiKey => ("api_key", "value"),
        connections::AuthorizationType::OAuthClientCredentials => ("oauth", "client_secret"),
    };
    if let Some(secret) = &secret {
        section[key.0][key.1] = secret.clone().into();
    }
    let mut body = section;
    body["authorization_type"] = kind.as_str().into();
    body["description"] = input.description.unwrap_or(description).into();
    connections::parse_connection(&body.to_string()).map_err(first_problem)
}

fn connection_summary(call: &Call<'_>, out: &ConnectionOut) -> Value {
    json!({
        "ConnectionArn": arn::connection(call.region(), call.account(), &out.name),
        "ConnectionState": "AUTHORIZED",
        "CreationTime": epoch_seconds(out.created_at),
        "LastModifiedTime": epoch_seconds(out.updated_at),
        "LastAuthorizedTime": epoch_seconds(out.updated_at),
    })
}

fn connection_description(call: &Call<'_>, out: &ConnectionOut) -> Value {
    let mut value = connection_summary(call, out);
    value["Name"] = out.name.clone().into();
    value["AuthorizationType"] = aws_type(&out.authorization_type).into();
    if !out.description.is_empty() {
        value["Description"] = out.description.clone().into();
    }
    let kv = |map: &std::collections::BTreeMap<String, String>| {
        map.iter()
            .map(|(k, v)| json!({"Key": k, "Value": v, "IsValueSecret": false}))
            .collect::<Vec<_>>()
    };
    value["AuthParameters"] = match &out.parameters {
        Parameters::Basic { username } => json!({"BasicAuthParameters": {"Username": username}}),
        Parameters::ApiKey { name } => json!({"ApiKeyAuthParameters": {"ApiKeyName": name}}),
        Parameters::Oauth(oauth) => json!({"OAuthParameters": {
            "ClientParameters": {"ClientID": oauth.client_id},
            "AuthorizationEndpoint": oauth.token_endpoint,
            "HttpMethod": oauth.method,
            "OAuthHttpParameters": {
                "HeaderParameters": kv(&oauth.header_parameters),
                "QueryStringParameters": kv(&oauth.query_parameters),
                "BodyParameters": kv(&oauth.body_parameters),
            },
        }}),
    };
    value
}

async fn current_connection(
    call: &Call<'_>,
    name: &str,
) -> Result<Option<ConnectionOut>, AwsError> {
    let mut conn = call.state.pool.acquire().await?;
    match store::connections::get_connection(&mut conn, name, false).await? {
        Some(row) => Ok(Some(ConnectionOut::try_from(row)?)),
        None => Ok(None),
    }
}

pub(super) async fn create_connection(
    call: &Call<'_>,
    input: ConnectionIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let name = name_field(input.name.clone())?;
    if current_connection(call, &name).await?.is_some() {
        return Err(AwsError::already_exists(format!(
            "Connection {name} already exists."
        )));
    }
    let connection = connection_of(input, None)?;
    save_connection(call, &name, connection).await
}

pub(super) async fn update_connection(
    call: &Call<'_>,
    input: ConnectionIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let name = name_field(input.name.clone())?;
    let current = current_connection(call, &name)
        .await?
        .ok_or_else(|| connection_not_found(&name))?;
    let connection = connection_of(input, Some(&current))?;
    save_connection(call, &name, connection).await
}

async fn save_connection(
    call: &Call<'_>,
    name: &str,
    connection: Connection,
) -> Result<Response, AwsError> {
    match api::save_connection(call.state, &call.actor(), name, connection).await? {
        Saved::Invalid(errors) => Err(first_problem(errors)),
        Saved::Done { row, .. } => {
            let out = ConnectionOut::try_from(row)?;
            Ok(output(&connection_summary(call, &out)))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct NameIn {
    name: Option<String>,
}

pub(super) async fn describe_connection(
    call: &Call<'_>,
    input: NameIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let name = name_field(input.name)?;
    match current_connection(call, &name).await? {
        Some(out) => Ok(output(&connection_description(call, &out))),
        None => Err(connection_not_found(&name)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListIn {
    name_prefix: Option<String>,
    connection_state: Option<String>,
    connection_arn: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_connections(call: &Call<'_>, input: ListIn) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let limit = super::actions::page_limit(input.limit)?;
    let after = super::actions::read_next_token(input.next_token.as_deref())?;
    let mut conn = call.state.pool.acquire().await?;
    let mut rows = store::connections::list_connections(
        &mut conn,
        input.name_prefix.as_deref().unwrap_or(""),
        after.as_deref(),
        limit + 1,
    )
    .await?;
    // Every connection here is authorized: another state filters all out.
    if input
        .connection_state
        .as_deref()
        .is_some_and(|s| s != "AUTHORIZED")
    {
        rows.clear();
    }
    let next =
        store::page_end(&mut rows, limit as usize).map(|r| super::actions::next_token(&r.name));
    let mut items = Vec::new();
    for row in rows {
        let out = ConnectionOut::try_from(row)?;
        let mut item = connection_summary(call, &out);
        item["Name"] = out.name.clone().into();
        item["AuthorizationType"] = aws_type(&out.authorization_type).into();
        items.push(item);
    }
    let mut answer = json!({ "Connections": items });
    if let Some(next) = next {
        answer["NextToken"] = next.into();
    }
    Ok(output(&answer))
}

pub(super) async fn delete_connection(
    call: &Call<'_>,
    input: NameIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let name = name_field(input.name)?;
    let out = current_connection(call, &name)
        .await?
        .ok_or_else(|| connection_not_found(&name))?;
    match api::remove_connection(call.state, &call.actor(), &name).await? {
        Deleted::Deleted => {
            let mut answer = connection_summary(call, &out);
            answer["ConnectionState"] = "DELETING".into();
            Ok(output(&answer))
        }
        Deleted::NotFound => Err(connection_not_found(&name)),
        Deleted::InUse {
            destinations,
            targets,
        } => Err(AwsError::invalid(format!(
            "Connection {name} is used by {destinations} API destination(s) and {targets} target(s)."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DestinationIn {
    name: Option<String>,
    description: Option<String>,
    connection_arn: Option<String>,
    invocation_endpoint: Option<String>,
    http_method: Option<String>,
    invocation_rate_limit_per_second: Option<i64>,
}

fn destination_summary(call: &Call<'_>, row: &store::connections::DestinationRow) -> Value {
    json!({
        "ApiDestinationArn": arn::api_destination(call.region(), call.account(), &row.name),
        "ApiDestinationState": "ACTIVE",
        "CreationTime": epoch_seconds(row.created_at),
        "LastModifiedTime": epoch_seconds(row.updated_at),
    })
}

fn destination_description(call: &Call<'_>, row: &store::connections::DestinationRow) -> Value {
    let mut value = destination_summary(call, row);
    value["Name"] = row.name.clone().into();
    value["ConnectionArn"] = arn::connection(call.region(), call.account(), &row.connection).into();
    value["InvocationEndpoint"] = row.endpoint.clone().into();
    value["HttpMethod"] = row.http_method.clone().into();
    if let Some(rate) = row.invocation_rate_limit_per_second {
        value["InvocationRateLimitPerSecond"] = rate.into();
    }
    if !row.description.is_empty() {
        value["Description"] = row.description.clone().into();
    }
    value
}

async fn current_destination(
    call: &Call<'_>,
    name: &str,
) -> Result<Option<store::connections::DestinationRow>, AwsError> {
    let mut conn = call.state.pool.acquire().await?;
    Ok(store::connections::get_destination(&mut conn, name, false).await?)
}

/// The destination `input` describes, over `current` (UpdateApiDestination).
fn destination_of(
    call: &Call<'_>,
    input: DestinationIn,
    current: Option<&store::connections::DestinationRow>,
) -> Result<Destination, AwsError> {
    let connection = match input.connection_arn {
        Some(given) => {
            arn::connection_name(&given, call.region(), call.account()).ok_or_else(|| {
                AwsError::validation(
                    "connectionArn",
                    format!("{given:?} is not a connection ARN of this router"),
                )
            })?
        }
        None => current
            .map(|c| c.connection.clone())
            .ok_or_else(|| AwsError::validation("connectionArn", "Member must not be null"))?,
    };
    let mut body = json!({
        "connection": connection,
        "endpoint": input.invocation_endpoint.or_else(|| current.map(|c| c.endpoint.clone())),
        "method": input.http_method.or_else(|| current.map(|c| c.http_method.clone())),
        "description": input.description.or_else(|| current.map(|c| c.description.clone())).unwrap_or_default(),
    });
    let rate = input
        .invocation_rate_limit_per_second
        .or_else(|| current.and_then(|c| c.invocation_rate_limit_per_second.map(i64::from)));
    if let Some(rate) = rate {
        body["rate_limit_per_second"] = rate.into();
    }
    connections::parse_destination(&body.to_string()).map_err(first_problem)
}

pub(super) async fn create_destination(
    call: &Call<'_>,
    input: DestinationIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let name = name_field(input.name.clone())?;
    if current_destination(call, &name).await?.is_some() {
        return Err(AwsError::already_exists(format!(
            "An api-destination '{name}' already exists."
        )));
    }
    let destination = destination_of(call, input, None)?;
    save_destination(call, &name, &destination).await
}

pub(super) async fn update_destination(
    call: &Call<'_>,
    input: DestinationIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let name = name_field(input.name.clone())?;
    let current = current_destination(call, &name)
        .await?
        .ok_or_else(|| destination_not_found(&name))?;
    let destination = destination_of(call, input, Some(&current))?;
    save_destination(call, &name, &destination).await
}

async fn save_destination(
    call: &Call<'_>,
    name: &str,
    destination: &Destination,
) -> Result<Response, AwsError> {
    match api::save_destination(call.state, &call.actor(), name, destination).await? {
        Saved::Invalid(errors) => Err(first_problem(errors)),
        Saved::Done { row, .. } => Ok(output(&destination_summary(call, &row))),
    }
}

pub(super) async fn describe_destination(
    call: &Call<'_>,
    input: NameIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let name = name_field(input.name)?;
    match current_destination(call, &name).await? {
        Some(row) => Ok(output(&destination_description(call, &row))),
        None => Err(destination_not_found(&name)),
    }
}

pub(super) async fn list_destinations(
    call: &Call<'_>,
    input: ListIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let limit = super::actions::page_limit(input.limit)?;
    let after = super::actions::read_next_token(input.next_token.as_deref())?;
    let connection = match &input.connection_arn {
        Some(given) => Some(
            arn::connection_name(given, call.region(), call.account()).ok_or_else(|| {
                AwsError::validation(
                    "connectionArn",
                    format!("{given:?} is not a connection ARN of this router"),
                )
            })?,
        ),
        None => None,
    };
    let mut conn = call.state.pool.acquire().await?;
    let mut rows = store::connections::list_destinations(
        &mut conn,
        input.name_prefix.as_deref().unwrap_or(""),
        connection.as_deref(),
        after.as_deref(),
        limit + 1,
    )
    .await?;
    let next =
        store::page_end(&mut rows, limit as usize).map(|r| super::actions::next_token(&r.name));
    let items: Vec<Value> = rows
        .iter()
        .map(|row| destination_description(call, row))
        .collect();
    let mut answer = json!({ "ApiDestinations": items });
    if let Some(next) = next {
        answer["NextToken"] = next.into();
    }
    Ok(output(&answer))
}

pub(super) async fn delete_destination(
    call: &Call<'_>,
    input: NameIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let name = name_field(input.name)?;
    match api::remove_destination(call.state, &call.actor(), &name).await? {
        Deleted::Deleted => Ok(output(&json!({}))),
        Deleted::NotFound => Err(destination_not_found(&name)),
        Deleted::InUse { targets, .. } => Err(AwsError::invalid(format!(
            "The api-destination {name} is the target of {targets} rule target(s); remove them first."
        ))),
    }
}
