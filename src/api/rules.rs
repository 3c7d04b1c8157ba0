//! `/v1/buses/{bus}/rules…`: create or replace, read, list, delete rules with their targets.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::buses::bus_not_found;
use super::extract::{ApiPath, ApiQuery, JsonText};
use super::problem::ApiError;
use crate::audit::{self, Action, Actor};
use crate::auth::Principal;
use crate::delivery::signing;
use crate::domain::{self, InputTransform, RuleName, Target};
use crate::schema::rules::RuleWarning;
use crate::state::AppState;
use crate::store::{self, StoreError, rules::Put, rules::RuleRecord, rules::TargetState};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/buses/{bus}/rules", get(list))
        .route(
            "/buses/{bus}/rules/{rule}",
            get(read).put(put).delete(delete),
        )
        .route(
            "/buses/{bus}/rules/{rule}/targets/{target}/enable",
            post(enable_target),
        )
        .route(
            "/buses/{bus}/rules/{rule}/targets/{target}/rotate-secret",
            post(rotate_secret),
        )
}

/// A target on the wire, with what Switchyard keeps about it: its signing secret (for admins to
/// configure the receiver) and whether it is disabled. At most one of `input`, `input_path` and
/// `input_transformer` is present, as in requests.
#[derive(Serialize)]
struct TargetOut {
    id: String,
    url: String,
    method: String,
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_transformer: Option<TransformerOut>,
    retry_policy: RetryPolicyOut,
    timeout_ms: u32,
    max_concurrency: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ordering: Option<OrderingOut>,
    format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_destination: Option<DestinationOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_arn: Option<String>,
    secret: String,
    #[serde(with = "time::serde::rfc3339::option")]
    previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    disabled_at: Option<OffsetDateTime>,
    disabled_reason: Option<String>,
}

#[derive(Serialize)]
struct DestinationOut {
    name: String,
    path_parameters: Vec<String>,
    query_parameters: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct TransformerOut {
    input_paths_map: BTreeMap<String, String>,
    input_template: String,
}

#[derive(Serialize)]
struct OrderingOut {
    group_by: String,
    on_dead: &'static str,
}

#[derive(Serialize)]
struct RetryPolicyOut {
    maximum_retry_attempts: u32,
    maximum_event_age_seconds: u32,
}

impl TargetOut {
    fn new(target: Target, state: TargetState) -> Result<Self, ApiError> {
        let (mut input, mut input_path, mut input_transformer) = (None, None, None);
        match target.input {
            InputTransform::Event => {}
            InputTransform::Constant(text) => {
                input = Some(RawValue::from_string(text).map_err(|e| ApiError::internal(&e))?)
            }
            InputTransform::Path(path) => input_path = Some(path),
            InputTransform::Transformer {
                paths_map,
                template,
            } => {
                input_transformer = Some(TransformerOut {
                    input_paths_map: paths_map,
                    input_template: template,
                })
            }
        }
        Ok(TargetOut {
            id: target.id.to_string(),
            url: target.url,
            method: target.method,
            headers: target.headers,
            input,
            input_path,
            input_transformer,
            retry_policy: RetryPolicyOut {
                maximum_retry_attempts: target.retry_policy.maximum_retry_attempts,
                maximum_event_age_seconds: target.retry_policy.maximum_event_age_seconds,
            },
            timeout_ms: target.timeout_ms,
            max_concurrency: target.max_concurrency,
            ordering: target.ordering.map(|o| OrderingOut {
                group_by: o.group_by,
                on_dead: o.on_dead.as_str(),
            }),
            format: target.format.as_str(),
            connection: target.connection,
            rate_limit_per_second: target.rate_limit_per_second,
            api_destination: target.api_destination.map(|d| DestinationOut {
                name: d.name,
                path_parameters: d.path_parameters,
                query_parameters: d.query_parameters,
            }),
            role_arn: target.role_arn,
            secret: state.secret,
            previous_secret_expires_at: state.previous_secret_expires_at,
            disabled_at: state.disabled_at,
            disabled_reason: state.disabled_reason,
        })
    }
}

/// A rule as the API shows it.
#[derive(Serialize)]
pub struct RuleOut {
    bus: String,
    name: String,
    description: String,
    event_pattern: Box<RawValue>,
    /// `enabled` or `disabled`.
    state: &'static str,
    targets: Vec<TargetOut>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl TryFrom<RuleRecord> for RuleOut {
    type Error = ApiError;

    fn try_from(record: RuleRecord) -> Result<Self, ApiError> {
        let event_pattern =
            RawValue::from_string(record.rule.event_pattern).map_err(|e| ApiError::internal(&e))?;
        Ok(RuleOut {
            bus: record.bus,
            name: record.name,
            description: record.rule.description,
            event_pattern,
            state: record.rule.state.as_str(),
            targets: record
                .rule
                .targets
                .into_iter()
                .zip(record.target_states)
                .map(|(target, state)| TargetOut::new(target, state))
                .collect::<Result<_, _>>()?,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    limit: Option<i64>,
    next_token: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    ApiPath(bus): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = super::page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    // A prefix of a rule name is a rule name itself (or nothing).
    if !query.prefix.is_empty() {
        RuleName::parse(&query.prefix).map_err(|e| ApiError::parameter("prefix", e))?;
    }
    if let Some(token) = &query.next_token {
        RuleName::parse(token).map_err(|_| {
            ApiError::parameter("next_token", "is not a next_token this API gave out")
        })?;
    }
    let mut conn = state.pool.acquire().await?;
    if store::buses::get(&mut conn, &bus).await?.is_none() {
        return Err(bus_not_found(&bus));
    }
    // One more than asked tells whether another page exists.
    let mut records = store::rules::list(
        &mut conn,
        &bus,
        &query.prefix,
        query.next_token.as_deref(),
        limit + 1,
    )
    .await?;
    let next_token = store::page_end(&mut records, limit as usize).map(|r| r.name.clone());
    let rules = records
        .into_iter()
        .map(RuleOut::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(serde_json::json!({ "rules": rules, "next_token": next_token })).into_response())
}

async fn read(
    State(state): State<AppState>,
    ApiPath((bus, rule)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let mut conn = state.pool.acquire().await?;
    match store::rules::get(&mut conn, &bus, &rule).await? {
        Some(record) => Ok(Json(RuleOut::try_from(record)?).into_response()),
        None => Err(rule_not_found(&mut conn, &bus, &rule).await),
    }
}

async fn put(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, rule)): ApiPath<(String, String)>,
    JsonText(body): JsonText,
) -> Result<Response, ApiError> {
    let name = RuleName::parse(&rule).map_err(|e| ApiError::parameter("rule", e))?;
    let parsed = domain::parse_rule(&body)?;
    let (created, record, warnings) =
        match save(&state, &Actor::of(&principal), &bus, &name, &parsed).await? {
            Saved::BusNotFound => return Err(bus_not_found(&bus)),
            Saved::Invalid(errors) => return Err(ApiError::validation(errors.0)),
            Saved::Done {
                created,
                record,
                warnings,
            } => (created, record, warnings),
        };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut out =
        serde_json::to_value(RuleOut::try_from(*record)?).map_err(|e| ApiError::internal(&e))?;
    if !warnings.is_empty() {
        out["schema_warnings"] = json!(warnings);
    }
    Ok((status, Json(out)).into_response())
}

/// What saving a rule did.
pub(crate) enum Saved {
    BusNotFound,
    /// A target names a connection or an API destination that is not there (or cannot fill
    /// the destination's endpoint), or sets a header its connection sets.
    Invalid(domain::ValidationErrors),
    Done {
        created: bool,
        record: Box<RuleRecord>,
        /// What the schemas of the event types it selects say against its pattern.
        warnings: Vec<RuleWarning>,
    },
}

/// Creates or replaces a rule with its targets (new targets get new secrets), records it in the
/// audit log in the same transaction, and answers once this process matches with it: the one
/// way the API and the UI save a rule.
pub(crate) async fn save(
    state: &AppState,
    actor: &Actor,
    bus: &str,
    name: &RuleName,
    parsed: &domain::Rule,
) -> Result<Saved, StoreError> {
    let mut tx = state.pool.begin().await?;
    let saved = save_in(&mut tx, actor, bus, name, parsed).await?;
    if !matches!(saved, Saved::Done { .. }) {
        return Ok(saved);
    }
    tx.commit().await?;
    // Read your writes: this process matches with the new rule before it answers.
    state.snapshots.refresh().await?;
    Ok(saved)
}

/// [`save`]'s work inside the caller's transaction (EventBridge's API reads the rule it
/// changes in the same one); the caller commits and refreshes the snapshot.
pub(crate) async fn save_in(
    tx: &mut store::PgConnection,
    actor: &Actor,
    bus: &str,
    name: &RuleName,
    parsed: &domain::Rule,
) -> Result<Saved, StoreError> {
    // Destination targets take their endpoint from the destination as it is now.
    let mut resolved = parsed.clone();
    let problems = crate::connections::resolve_targets(tx, &mut resolved).await?;
    if !problems.is_empty() {
        return Ok(Saved::Invalid(domain::ValidationErrors(problems)));
    }
    let parsed = &resolved;
    let secrets = signing::generate_secrets(parsed.targets.len());
    let created = match store::rules::put(tx, bus, name.as_str(), parsed, &secrets).await? {
        Put::BusNotFound => return Ok(Saved::BusNotFound),
        Put::Created => true,
        Put::Replaced => false,
    };
    let record = store::rules::get(tx, bus, name.as_str())
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("rule {name:?} vanished while saved")))?;
    let detail = json!({ "created": created, "state": parsed.state.as_str() });
    let resource = audit::rule_resource(bus, name.as_str());
    audit::record(tx, actor, Action::RulePut, &resource, detail).await?;
    // The rule keeps its pattern as text (validated when the body was read): parsed once more.
    let warnings = match crate::pattern::parse(&parsed.event_pattern) {
        Ok(pattern) => super::schemas::rule_warnings(tx, bus, &pattern).await?,
        Err(_) => Vec::new(),
    };
    tracing::info!(
        bus,
        rule = name.as_str(),
        created,
        warnings = warnings.len(),
        "rule saved"
    );
    Ok(Saved::Done {
        created,
        record: Box::new(record),
        warnings,
    })
}

async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, rule)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    if !remove(&state, &Actor::of(&principal), &bus, &rule).await? {
        let mut conn = state.pool.acquire().await?;
        return Err(rule_not_found(&mut conn, &bus, &rule).await);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes a rule (audited in the same transaction); `false` when there was none. The API's and
/// the UI's one way.
pub(crate) async fn remove(
    state: &AppState,
    actor: &Actor,
    bus: &str,
    rule: &str,
) -> Result<bool, StoreError> {
    let mut tx = state.pool.begin().await?;
    if !remove_in(&mut tx, actor, bus, rule).await? {
        return Ok(false);
    }
    tx.commit().await?;
    state.snapshots.refresh().await?;
    tracing::info!(bus, rule, "rule deleted");
    Ok(true)
}

/// [`remove`]'s work inside the caller's transaction; the caller commits and refreshes.
pub(crate) async fn remove_in(
    tx: &mut store::PgConnection,
    actor: &Actor,
    bus: &str,
    rule: &str,
) -> Result<bool, StoreError> {
    if !store::rules::delete(tx, bus, rule).await? {
        return Ok(false);
    }
    let resource = audit::rule_resource(bus, rule);
    audit::record(tx, actor, Action::RuleDelete, &resource, Value::Null).await?;
    Ok(true)
}

/// Says whether the bus or the rule is missing.
async fn rule_not_found(conn: &mut store::PgConnection, bus: &str, rule: &str) -> ApiError {
    match store::buses::get(conn, bus).await {
        Ok(None) => bus_not_found(bus),
        Ok(Some(_)) => ApiError::not_found(format!("no rule named {rule:?} on bus {bus:?}")),
        Err(error) => ApiError::from(error),
    }
}

pub(super) async fn find_target(
    conn: &mut store::PgConnection,
    bus: &str,
    rule: &str,
    target: &str,
) -> Result<domain::TargetRef, ApiError> {
    match store::rules::target_ref(conn, bus, rule, target).await? {
        Some(id) => Ok(id),
        None => match store::rules::get(conn, bus, rule).await? {
            Some(_) => Err(ApiError::not_found(format!(
                "rule {rule:?} on bus {bus:?} has no target {target:?}"
            ))),
            None => Err(rule_not_found(conn, bus, rule).await),
        },
    }
}

/// Re-enables a target (disabled after it answered 410 Gone) and releases its held deliveries.
async fn enable_target(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, rule, target)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let mut tx = state.pool.begin().await?;
    let id = find_target(&mut tx, &bus, &rule, &target).await?;
    let released = store::deliveries::enable_target(&mut tx, id).await?;
    let resource = audit::target_resource(&bus, &rule, &target);
    let detail = json!({ "released": released });
    audit::record(
        &mut tx,
        &Actor::of(&principal),
        Action::TargetEnable,
        &resource,
        detail,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(bus, rule, target, released, "target enabled");
    Ok(Json(serde_json::json!({ "enabled": true, "released": released })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateIn {
    /// How long the previous secret keeps signing, in seconds (default a day).
    #[serde(default, deserialize_with = "super::extract::not_null")]
    overlap_seconds: Option<Value>,
}

const DEFAULT_OVERLAP_SECONDS: u64 = 86_400;
const MAX_OVERLAP_SECONDS: u64 = 7 * 86_400;

/// Gives a target a new signing secret; both sign until the overlap ends.
async fn rotate_secret(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath((bus, rule, target)): ApiPath<(String, String, String)>,
    body: Option<JsonText>,
) -> Result<Response, ApiError> {
    let input: RotateIn = match body {
        Some(JsonText(text)) => super::extract::parse_body(&text)?,
        None => RotateIn::default(),
    };
    let overlap = match &input.overlap_seconds {
        None => Some(DEFAULT_OVERLAP_SECONDS),
        Some(value) => crate::domain::fields::whole_number(value),
    };
    let Some(overlap) = overlap.filter(|o| *o <= MAX_OVERLAP_SECONDS) else {
        return Err(ApiError::validation(vec![crate::domain::FieldError::new(
            "/overlap_seconds",
            format!("must be an integer from 0 to {MAX_OVERLAP_SECONDS}"),
        )]));
    };
    let mut tx = state.pool.begin().await?;
    let id = find_target(&mut tx, &bus, &rule, &target).await?;
    let secret = signing::generate_secret();
    let overlap_for = std::time::Duration::from_secs(overlap);
    let expires = store::rules::rotate_secret(&mut tx, id, &secret, overlap_for).await?;
    let resource = audit::target_resource(&bus, &rule, &target);
    let detail = json!({ "overlap_seconds": overlap });
    audit::record(
        &mut tx,
        &Actor::of(&principal),
        Action::TargetRotateSecret,
        &resource,
        detail,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(bus, rule, target, overlap, "target secret rotated");
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(
        Json(serde_json::json!({ "secret": secret, "previous_secret_expires_at": expires }))
            .into_response(),
    )
}

/// A rule's targets as a rule body takes them (what `GET` shows, without secrets and health):
/// what the UI's editor starts from.
pub(crate) fn targets_as_input(record: RuleRecord) -> Result<Value, ApiError> {
    let mut out =
        serde_json::to_value(RuleOut::try_from(record)?).map_err(|e| ApiError::internal(&e))?;
    let mut targets = out["targets"].take();
    for target in targets.as_array_mut().into_iter().flatten() {
        if let Some(members) = target.as_object_mut() {
            for shown_only in [
                "secret",
                "previous_secret_expires_at",
                "disabled_at",
                "disabled_reason",
            ] {
                members.remove(shown_only);
            }
            // A destination's target: these come from the destination.
            if members.contains_key("api_destination") {
                for derived in ["url", "method", "connection", "rate_limit_per_second"] {
                    members.remove(derived);
                }
            }
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TargetState {
        TargetState {
            id: crate::domain::TargetRef::new(),
            secret: "whsec_x".into(),
            previous_secret_expires_at: None,
            disabled_at: None,
            disabled_reason: None,
        }
    }

    #[test]
    fn a_target_shows_exactly_the_input_it_was_given() {
        let rule = domain::parse_rule(
            r#"{"event_pattern": {"source": ["a"]},
                "targets": [{"id": "t", "url": "https://example.com/a",
                             "input_transformer": {"input_paths_map": {"n": "$.detail.n"}, "input_template": "{\"n\": <n>}"}},
                            {"id": "c", "url": "https://example.com/b", "input": {"total": 1.50}},
                            {"id": "e", "url": "https://example.com/c"}]}"#,
        )
        .unwrap();
        let wire: Vec<serde_json::Value> = rule
            .targets
            .into_iter()
            .map(|t| serde_json::to_value(TargetOut::new(t, state()).unwrap()).unwrap())
            .collect();
        assert_eq!(
            wire[0]["input_transformer"]["input_paths_map"]["n"],
            "$.detail.n"
        );
        assert!(wire[0].get("input").is_none() && wire[0].get("input_path").is_none());
        // The constant keeps its numbers as written.
        assert_eq!(
            serde_json::to_string(&TargetOut::new(
                domain::parse_rule(
                    r#"{"event_pattern": {"a": [1]}, "targets": [{"id": "c", "url": "https://x.example", "input": {"total": 1.50}}]}"#
                )
                .unwrap()
                .targets
                .remove(0),
                state()
            )
            .unwrap()
            .input)
            .unwrap(),
            r#"{"total":1.50}"#
        );
        assert_eq!(wire[1]["input"]["total"], 1.5);
        for absent in ["input", "input_path", "input_transformer"] {
            assert!(wire[2].get(absent).is_none(), "{absent}: {}", wire[2]);
        }
        assert_eq!(wire[2]["retry_policy"]["maximum_retry_attempts"], 185);
        assert_eq!(wire[2]["secret"], "whsec_x");
    }
}
