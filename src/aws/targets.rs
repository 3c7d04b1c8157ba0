//! EventBridge's target actions: `PutTargets`, `RemoveTargets`, `ListTargetsByRule`,
//! `ListRuleNamesByTarget`. A target's `Arn` is an API destination of this router; its
//! `HttpParameters` fill the destination's path parameters and add headers and query
//! parameters; `Input`, `InputPath`, `InputTransformer` and `RetryPolicy` are the REST API's own;
//! `RoleArn` is kept (there are no IAM roles here). The rule is saved through the REST API's
//! `save_in` with its other targets as they were, so one set of checks serves both APIs.

use std::collections::BTreeMap;

use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::actions::{first_problem, locked_rule, rule_not_found, rule_of, save_rule};
use super::{AwsError, Call, arn, output};
use crate::auth::Scope;
use crate::domain::{self, InputTransform, Target};
use crate::store;

/// The most targets a rule has (AWS's limit, and Switchyard's).
const MAX_TARGETS: usize = domain::MAX_TARGETS;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct HttpParametersIn {
    path_parameter_values: Option<Vec<String>>,
    header_parameters: Option<BTreeMap<String, String>>,
    query_string_parameters: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransformerIn {
    input_paths_map: Option<BTreeMap<String, String>>,
    input_template: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RetryPolicyIn {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetIn {
    id: Option<String>,
    arn: Option<String>,
    role_arn: Option<String>,
    input: Option<String>,
    input_path: Option<String>,
    input_transformer: Option<TransformerIn>,
    retry_policy: Option<RetryPolicyIn>,
    http_parameters: Option<HttpParametersIn>,
    dead_letter_config: Option<Value>,
    /// Every other service's parameters (SQS, ECS, Kinesis, …): none is served here.
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PutTargetsIn {
    rule: Option<String>,
    event_bus_name: Option<String>,
    targets: Option<Vec<TargetIn>>,
}

/// A `PutTargets` entry as the REST API's target body.
fn rest_target(call: &Call<'_>, index: usize, target: TargetIn) -> Result<Value, AwsError> {
    let at = |field: &str| format!("targets.{}.member.{field}", index + 1);
    let id = target
        .id
        .ok_or_else(|| AwsError::validation(&at("id"), "Member must not be null"))?;
    let given = target
        .arn
        .ok_or_else(|| AwsError::validation(&at("arn"), "Member must not be null"))?;
    let Some(destination) = arn::api_destination_name(&given, call.region(), call.account()) else {
        return Err(AwsError::invalid(format!(
            "Target {id}: {given} is not a valid target here. Switchyard delivers to API destinations of this router (arn:aws:events:{}:{}:api-destination/<name>); other AWS services are not served.",
            call.region(),
            call.account()
        )));
    };
    if let Some(name) = target.other.keys().next() {
        return Err(AwsError::invalid(format!(
            "Target {id}: {name} is not supported for API destination targets"
        )));
    }
    if target.dead_letter_config.is_some() {
        return Err(AwsError::invalid(format!(
            "Target {id}: DeadLetterConfig is not supported: Switchyard keeps dead letters itself (GET /v1/dead-letters, the UI)"
        )));
    }
    let http = target.http_parameters.unwrap_or_default();
    let mut body = json!({
        "id": id,
        "api_destination": {
            "name": destination,
            "path_parameters": http.path_parameter_values.unwrap_or_default(),
            "query_parameters": http.query_string_parameters.unwrap_or_default(),
        },
    });
    if let Some(headers) = http.header_parameters {
        body["headers"] = json!(headers);
    }
    if let Some(role) = target.role_arn {
        body["role_arn"] = role.into();
    }
    if let Some(input) = target.input {
        // A constant JSON document as text: kept as written.
        let raw = serde_json::value::RawValue::from_string(input)
            .map_err(|_| AwsError::invalid(format!("Target {id}: Input is not valid JSON")))?;
        body["input"] =
            serde_json::from_str(raw.get()).map_err(|e| AwsError::invalid(e.to_string()))?;
    }
    if let Some(path) = target.input_path {
        body["input_path"] = path.into();
    }
    if let Some(transformer) = target.input_transformer {
        body["input_transformer"] = json!({
            "input_paths_map": transformer.input_paths_map.unwrap_or_default(),
            "input_template": transformer.input_template,
        });
    }
    if let Some(policy) = target.retry_policy {
        let mut out = serde_json::Map::new();
        if let Some(n) = policy.maximum_retry_attempts {
            out.insert("maximum_retry_attempts".into(), n.into());
        }
        if let Some(n) = policy.maximum_event_age_in_seconds {
            out.insert("maximum_event_age_seconds".into(), n.into());
        }
        body["retry_policy"] = Value::Object(out);
    }
    Ok(body)
}

pub(super) async fn put_targets(
    call: &Call<'_>,
    input: PutTargetsIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let (bus, name) = rule_of(call, input.rule.as_deref(), input.event_bus_name.as_deref())?;
    let targets = input
        .targets
        .ok_or_else(|| AwsError::validation("targets", "Member must not be null"))?;
    if targets.is_empty() || targets.len() > 100 {
        return Err(AwsError::validation(
            "targets",
            "Member must have length less than or equal to 100 and greater than or equal to 1",
        ));
    }
    let mut given = Vec::with_capacity(targets.len());
    for (i, target) in targets.into_iter().enumerate() {
        given.push(rest_target(call, i, target)?);
    }
    let mut tx = call.state.pool.begin().await?;
    let record = locked_rule(&mut tx, &bus, &name)
        .await?
        .ok_or_else(|| rule_not_found(&bus, &name))?;
    // The rule's targets as the REST API takes them, those with a given Id replaced.
    let mut merged: Vec<Value> = crate::api::rules::targets_as_input(record.clone())
        .map_err(|_| AwsError::invalid("the rule's targets cannot be read"))?
        .as_array()
        .cloned()
        .unwrap_or_default();
    for target in given {
        match merged.iter_mut().find(|t| t["id"] == target["id"]) {
            Some(existing) => *existing = target,
            None => merged.push(target),
        }
    }
    if merged.len() > MAX_TARGETS {
        return Err(AwsError::new(
            "LimitExceededException",
            axum::http::StatusCode::BAD_REQUEST,
            format!(
                "The requested resource exceeds the maximum number allowed: a rule has at most {MAX_TARGETS} targets"
            ),
        ));
    }
    let body = json!({
        "description": record.rule.description,
        "event_pattern": record.rule.event_pattern,
        "state": record.rule.state.as_str(),
        "targets": merged,
    });
    let rule = domain::parse_rule(&body.to_string()).map_err(first_problem)?;
    save_rule(call, tx, &bus, &name, &rule).await?;
    Ok(output(
        &json!({ "FailedEntryCount": 0, "FailedEntries": [] }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RemoveTargetsIn {
    rule: Option<String>,
    event_bus_name: Option<String>,
    ids: Option<Vec<String>>,
    #[serde(default)]
    force: bool,
}

pub(super) async fn remove_targets(
    call: &Call<'_>,
    input: RemoveTargetsIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let _ = input.force;
    let (bus, name) = rule_of(call, input.rule.as_deref(), input.event_bus_name.as_deref())?;
    let ids = input.ids.filter(|ids| !ids.is_empty()).ok_or_else(|| {
        AwsError::validation("ids", "Member must have length greater than or equal to 1")
    })?;
    let mut tx = call.state.pool.begin().await?;
    let record = locked_rule(&mut tx, &bus, &name)
        .await?
        .ok_or_else(|| rule_not_found(&bus, &name))?;
    let failed: Vec<Value> = ids
        .iter()
        .filter(|id| {
            !record
                .rule
                .targets
                .iter()
                .any(|t| t.id.as_str() == id.as_str())
        })
        .map(|id| {
            json!({"TargetId": id, "ErrorCode": "ResourceNotFoundException",
                   "ErrorMessage": format!("Rule {name} has no target {id}.")})
        })
        .collect();
    let rule = domain::Rule {
        targets: record
            .rule
            .targets
            .iter()
            .filter(|t| !ids.iter().any(|id| id == t.id.as_str()))
            .cloned()
            .collect(),
        ..record.rule.clone()
    };
    if rule.targets.len() != record.rule.targets.len() {
        save_rule(call, tx, &bus, &name, &rule).await?;
    }
    Ok(output(
        &json!({ "FailedEntryCount": failed.len(), "FailedEntries": failed }),
    ))
}

/// A target as EventBridge lists it. A webhook target made in the REST API (no API
/// destination) lists its URL as its `Arn`.
fn aws_target(call: &Call<'_>, target: &Target) -> Value {
    let arn = match &target.api_destination {
        Some(destination) => arn::api_destination(call.region(), call.account(), &destination.name),
        None => target.url.clone(),
    };
    let mut out = json!({ "Id": target.id.as_str(), "Arn": arn });
    if let Some(role) = &target.role_arn {
        out["RoleArn"] = role.clone().into();
    }
    match &target.input {
        InputTransform::Event => {}
        InputTransform::Constant(text) => out["Input"] = text.clone().into(),
        InputTransform::Path(path) => out["InputPath"] = path.clone().into(),
        InputTransform::Transformer {
            paths_map,
            template,
        } => {
            out["InputTransformer"] =
                json!({"InputPathsMap": paths_map, "InputTemplate": template});
        }
    }
    out["RetryPolicy"] = json!({
        "MaximumRetryAttempts": target.retry_policy.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": target.retry_policy.maximum_event_age_seconds,
    });
    if let Some(destination) = &target.api_destination {
        let mut http = json!({});
        if !destination.path_parameters.is_empty() {
            http["PathParameterValues"] = json!(destination.path_parameters);
        }
        if !destination.query_parameters.is_empty() {
            http["QueryStringParameters"] = json!(destination.query_parameters);
        }
        if !target.headers.is_empty() {
            http["HeaderParameters"] = json!(target.headers);
        }
        if http.as_object().is_some_and(|o| !o.is_empty()) {
            out["HttpParameters"] = http;
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListTargetsIn {
    rule: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_targets_by_rule(
    call: &Call<'_>,
    input: ListTargetsIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let (bus, name) = rule_of(call, input.rule.as_deref(), input.event_bus_name.as_deref())?;
    let limit = super::actions::page_limit(input.limit)? as usize;
    let after = super::actions::read_next_token(input.next_token.as_deref())?;
    let mut conn = call.state.pool.acquire().await?;
    let record = store::rules::get(&mut conn, &bus, name.as_str())
        .await?
        .ok_or_else(|| rule_not_found(&bus, &name))?;
    // In the rule's order, from after the last one given.
    let start = match &after {
        Some(id) => record
            .rule
            .targets
            .iter()
            .position(|t| t.id.as_str() == id)
            .map_or(record.rule.targets.len(), |i| i + 1),
        None => 0,
    };
    let mut page: Vec<&Target> = record.rule.targets[start..].iter().collect();
    let next = store::page_end(&mut page, limit).map(|t| super::actions::next_token(t.id.as_str()));
    let targets: Vec<Value> = page.into_iter().map(|t| aws_target(call, t)).collect();
    let mut out = json!({ "Targets": targets });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(output(&out))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct RuleNamesIn {
    target_arn: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_rule_names_by_target(
    call: &Call<'_>,
    input: RuleNamesIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let target = input
        .target_arn
        .ok_or_else(|| AwsError::validation("targetArn", "Member must not be null"))?;
    let bus = arn::bus_name(
        input.event_bus_name.as_deref(),
        "eventBusName",
        call.region(),
        call.account(),
    )?;
    call.may_use(&bus)?;
    let limit = super::actions::page_limit(input.limit)? as usize;
    let after = super::actions::read_next_token(input.next_token.as_deref())?;
    let destination = arn::api_destination_name(&target, call.region(), call.account());
    let mut conn = call.state.pool.acquire().await?;
    let mut names: Vec<String> =
        store::rules::list(&mut conn, &bus, "", after.as_deref(), i64::MAX)
            .await?
            .into_iter()
            .filter(|record| {
                record
                    .rule
                    .targets
                    .iter()
                    .any(|t| match (&destination, &t.api_destination) {
                        (Some(name), Some(d)) => &d.name == name,
                        (None, None) => t.url == target,
                        _ => false,
                    })
            })
            .map(|record| record.name)
            .collect();
    let next = store::page_end(&mut names, limit).map(|n| super::actions::next_token(n));
    let mut out = json!({ "RuleNames": names });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(output(&out))
}
