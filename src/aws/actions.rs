//! The actions of EventBridge's API that Switchyard serves, each translated onto the REST API's
//! own functions. Member names, limits and error types follow AWS's API reference; where
//! Switchyard has no counterpart to a member (schedules, KMS keys, tags, global endpoints), the
//! call is refused with a `ValidationException` that says so, never accepted and dropped.

use std::collections::BTreeMap;

use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{AwsError, Call, archives, arn, connections, epoch_seconds, input, output, targets};
use crate::api::DEFAULT_BUS;
use crate::api::rules::Saved;
use crate::auth::Scope;
use crate::domain::{self, BusName, RuleName, RuleState};
use crate::ingest::{self, Entry, EntryOutcome, IngestError};
use crate::pattern::{self, TestOutcome};
use crate::store::{self, buses::BusRow, buses::Deleted};

/// `PutEvents` takes at most this many entries (AWS's limit).
pub const MAX_PUT_ENTRIES: usize = 10;
/// List actions answer at most this many items per page (AWS's `Limit` range is 1–100).
const MAX_LIMIT: i64 = 100;

macro_rules! actions {
    ($($name:ident),* $(,)?) => {
        /// An action named by `X-Amz-Target: AWSEvents.<Action>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action { $($name),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$name),*];

            pub fn parse(name: &str) -> Option<Action> {
                match name {
                    $(stringify!($name) => Some(Action::$name),)*
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$name => stringify!($name),)*
                }
            }
        }
    };
}

actions!(
    PutEvents,
    TestEventPattern,
    CreateEventBus,
    DescribeEventBus,
    ListEventBuses,
    DeleteEventBus,
    PutRule,
    DescribeRule,
    ListRules,
    DeleteRule,
    EnableRule,
    DisableRule,
    PutTargets,
    RemoveTargets,
    ListTargetsByRule,
    ListRuleNamesByTarget,
    CreateConnection,
    DescribeConnection,
    ListConnections,
    UpdateConnection,
    DeleteConnection,
    CreateApiDestination,
    DescribeApiDestination,
    ListApiDestinations,
    UpdateApiDestination,
    DeleteApiDestination,
    CreateArchive,
    DescribeArchive,
    ListArchives,
    DeleteArchive,
    StartReplay,
    DescribeReplay,
    ListReplays,
    CancelReplay,
);

impl Action {
    pub async fn run(self, call: &Call<'_>, body: &[u8]) -> Result<Response, AwsError> {
        match self {
            Action::PutEvents => put_events(call, input(body)?).await,
            Action::TestEventPattern => test_event_pattern(call, input(body)?),
            Action::CreateEventBus => create_event_bus(call, input(body)?).await,
            Action::DescribeEventBus => describe_event_bus(call, input(body)?).await,
            Action::ListEventBuses => list_event_buses(call, input(body)?).await,
            Action::DeleteEventBus => delete_event_bus(call, input(body)?).await,
            Action::PutRule => put_rule(call, input(body)?).await,
            Action::DescribeRule => describe_rule(call, input(body)?).await,
            Action::ListRules => list_rules(call, input(body)?).await,
            Action::DeleteRule => delete_rule(call, input(body)?).await,
            Action::EnableRule => set_state(call, input(body)?, RuleState::Enabled).await,
            Action::DisableRule => set_state(call, input(body)?, RuleState::Disabled).await,
            Action::PutTargets => targets::put_targets(call, input(body)?).await,
            Action::RemoveTargets => targets::remove_targets(call, input(body)?).await,
            Action::ListTargetsByRule => targets::list_targets_by_rule(call, input(body)?).await,
            Action::ListRuleNamesByTarget => {
                targets::list_rule_names_by_target(call, input(body)?).await
            }
            Action::CreateConnection => connections::create_connection(call, input(body)?).await,
            Action::DescribeConnection => {
                connections::describe_connection(call, input(body)?).await
            }
            Action::ListConnections => connections::list_connections(call, input(body)?).await,
            Action::UpdateConnection => connections::update_connection(call, input(body)?).await,
            Action::DeleteConnection => connections::delete_connection(call, input(body)?).await,
            Action::CreateApiDestination => {
                connections::create_destination(call, input(body)?).await
            }
            Action::DescribeApiDestination => {
                connections::describe_destination(call, input(body)?).await
            }
            Action::ListApiDestinations => connections::list_destinations(call, input(body)?).await,
            Action::UpdateApiDestination => {
                connections::update_destination(call, input(body)?).await
            }
            Action::DeleteApiDestination => {
                connections::delete_destination(call, input(body)?).await
            }
            Action::CreateArchive => archives::create_archive(call, input(body)?).await,
            Action::DescribeArchive => archives::describe_archive(call, input(body)?).await,
            Action::ListArchives => archives::list_archives(call, input(body)?).await,
            Action::DeleteArchive => archives::delete_archive(call, input(body)?).await,
            Action::StartReplay => archives::start_replay(call, input(body)?).await,
            Action::DescribeReplay => archives::describe_replay(call, input(body)?).await,
            Action::ListReplays => archives::list_replays(call, input(body)?).await,
            Action::CancelReplay => archives::cancel_replay(call, input(body)?).await,
        }
    }
}

/// Members Switchyard has no counterpart for: refused unless absent (or an empty list).
pub(super) fn unsupported(members: &[(&str, bool)]) -> Result<(), AwsError> {
    match members.iter().find(|(_, present)| *present) {
        Some((name, _)) => Err(AwsError::invalid(format!(
            "{name} is not supported by Switchyard (see README, \"Using Switchyard from an AWS SDK\")"
        ))),
        None => Ok(()),
    }
}

/// `Limit` of a list action: 1–100, 100 when absent.
pub(super) fn page_limit(limit: Option<i64>) -> Result<i64, AwsError> {
    match limit {
        None => Ok(MAX_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AwsError::validation(
            "limit",
            "Member must have value between 1 and 100",
        )),
    }
}

/// A `NextToken` this API gave out: the name the page ended at, base64.
pub(super) fn next_token(name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

/// One page of rows listed in memory: those named after the token's name, in name order (the
/// order the token compares by), and the token of the next page.
pub(super) fn page_by_name<T>(
    mut rows: Vec<T>,
    name: impl Fn(&T) -> &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    rows.retain(|row| after.is_none_or(|a| name(row) > a));
    rows.sort_by(|a, b| name(a).cmp(name(b)));
    let next = store::page_end(&mut rows, limit).map(|row| next_token(name(row)));
    (rows, next)
}

pub(super) fn read_next_token(token: Option<&str>) -> Result<Option<String>, AwsError> {
    use base64::Engine;
    token
        .map(|token| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| AwsError::invalid("The NextToken is not valid."))
        })
        .transpose()
}

// ---------------------------------------------------------------------------------------------
// Events

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsIn {
    entries: Option<Vec<PutEventsEntry>>,
    endpoint_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsEntry {
    /// Seconds since the epoch, as the JSON 1.1 protocol sends timestamps.
    time: Option<f64>,
    source: Option<String>,
    resources: Option<Vec<String>>,
    detail_type: Option<String>,
    detail: Option<String>,
    event_bus_name: Option<String>,
    trace_header: Option<String>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PutEventsResultEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

impl PutEventsResultEntry {
    fn failed(code: &str, message: impl Into<String>) -> Self {
        PutEventsResultEntry {
            error_code: Some(code.to_owned()),
            error_message: Some(message.into()),
            ..Default::default()
        }
    }
}

/// The entry as Switchyard's ingest reads one (`source`, `detail-type`, …): the one envelope
/// parser checks both APIs' entries.
fn native_entry(entry: &PutEventsEntry) -> Result<Box<RawValue>, PutEventsResultEntry> {
    let mut native = serde_json::Map::new();
    let mut put = |name: &str, value: Option<serde_json::Value>| {
        if let Some(value) = value {
            native.insert(name.to_owned(), value);
        }
    };
    put("source", entry.source.clone().map(Into::into));
    put("detail-type", entry.detail_type.clone().map(Into::into));
    put("detail", entry.detail.clone().map(Into::into));
    put("resources", entry.resources.clone().map(Into::into));
    put("TraceHeader", entry.trace_header.clone().map(Into::into));
    if let Some(seconds) = entry.time {
        let time = super::from_epoch_seconds(seconds).ok_or_else(|| {
            PutEventsResultEntry::failed("InvalidArgument", "Parameter Time is not valid.")
        })?;
        put("time", Some(domain::event_time(time).into()));
    }
    serde_json::value::to_raw_value(&native)
        .map_err(|e| PutEventsResultEntry::failed("InvalidArgument", e.to_string()))
}

async fn put_events(call: &Call<'_>, input: PutEventsIn) -> Result<Response, AwsError> {
    call.need(Scope::Publish)?;
    unsupported(&[("EndpointId (global endpoints)", input.endpoint_id.is_some())])?;
    let entries = input
        .entries
        .ok_or_else(|| AwsError::validation("entries", "Member must not be null"))?;
    if entries.is_empty() || entries.len() > MAX_PUT_ENTRIES {
        return Err(AwsError::validation(
            "entries",
            format!(
                "Member must have length less than or equal to {MAX_PUT_ENTRIES} and greater than or equal to 1; it has {}",
                entries.len()
            ),
        ));
    }
    let state = call.state;
    let mut results: Vec<Option<PutEventsResultEntry>> = (0..entries.len()).map(|_| None).collect();
    // Entries by bus, in request order: each bus's go through ingest together.
    let mut by_bus: BTreeMap<String, Vec<(usize, Box<RawValue>)>> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let bus = match arn::bus_name(
            entry.event_bus_name.as_deref(),
            &format!("entries.{}.member.eventBusName", i + 1),
            call.region(),
            call.account(),
        ) {
            Ok(bus) => bus,
            Err(error) => {
                results[i] = Some(PutEventsResultEntry::failed(
                    "InvalidArgument",
                    error.message,
                ));
                continue;
            }
        };
        if call.may_use(&bus).is_err() {
            results[i] = Some(PutEventsResultEntry::failed(
                "AccessDeniedException",
                format!("this access key may not put events on the event bus {bus:?}"),
            ));
            continue;
        }
        match native_entry(entry) {
            Ok(raw) => by_bus.entry(bus).or_default().push((i, raw)),
            Err(failed) => results[i] = Some(failed),
        }
    }
    for (bus, group) in &by_bus {
        let outcomes = ingest::ingest(
            &state.writer,
            &state.snapshots,
            &state.ingest,
            bus,
            group
                .iter()
                .map(|(_, raw)| Entry::EventBridge(raw))
                .collect(),
            None,
            &state.metrics,
        )
        .await;
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(IngestError::BusNotFound(_)) => {
                for (i, _) in group {
                    results[*i] = Some(PutEventsResultEntry::failed(
                        "ResourceNotFoundException",
                        format!("Event bus {bus} does not exist."),
                    ));
                }
                continue;
            }
            Err(IngestError::Store(error)) => return Err(error.into()),
            Err(error @ (IngestError::Write(_) | IngestError::WriterStopped)) => {
                return Err(AwsError::from_failure(&error));
            }
        };
        crate::api::events::count_outcomes(&state.metrics, bus, &outcomes);
        for ((i, _), outcome) in group.iter().zip(outcomes) {
            results[*i] = Some(match outcome {
                EntryOutcome::Accepted(id) | EntryOutcome::Duplicate(id) => PutEventsResultEntry {
                    event_id: Some(id.to_string()),
                    ..Default::default()
                },
                EntryOutcome::Failed(error) => {
                    PutEventsResultEntry::failed(error.code, error.message)
                }
            });
        }
    }
    let entries: Vec<PutEventsResultEntry> = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| PutEventsResultEntry::failed("InternalFailure", "not processed"))
        })
        .collect();
    let failed = entries.iter().filter(|e| e.error_code.is_some()).count();
    Ok(output(
        &serde_json::json!({ "FailedEntryCount": failed, "Entries": entries }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TestEventPatternIn {
    event_pattern: Option<String>,
    event: Option<String>,
}

fn test_event_pattern(call: &Call<'_>, input: TestEventPatternIn) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let pattern_text = input
        .event_pattern
        .ok_or_else(|| AwsError::validation("eventPattern", "Member must not be null"))?;
    let event = input
        .event
        .ok_or_else(|| AwsError::validation("event", "Member must not be null"))?;
    let result = match pattern::test(&pattern_text, event.as_bytes()) {
        TestOutcome::Match => true,
        TestOutcome::NoMatch => false,
        TestOutcome::InvalidPattern(e) => return Err(invalid_pattern(&e)),
        TestOutcome::InvalidEvent(e) => {
            return Err(AwsError::invalid(format!(
                "Parameter Event is not valid. {e}"
            )));
        }
    };
    Ok(output(&serde_json::json!({ "Result": result })))
}

fn invalid_pattern(error: &crate::pattern::PatternError) -> AwsError {
    AwsError::new(
        "InvalidEventPatternException",
        axum::http::StatusCode::BAD_REQUEST,
        error.aws_message(),
    )
}

// ---------------------------------------------------------------------------------------------
// Event buses

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventBusOut {
    name: String,
    arn: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    creation_time: f64,
    last_modified_time: f64,
}

fn bus_out(call: &Call<'_>, row: BusRow) -> EventBusOut {
    EventBusOut {
        arn: arn::bus(call.region(), call.account(), &row.name),
        name: row.name,
        description: row.description,
        creation_time: epoch_seconds(row.created_at),
        last_modified_time: epoch_seconds(row.updated_at),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateEventBusIn {
    name: Option<String>,
    event_source_name: Option<String>,
    description: Option<String>,
    kms_key_identifier: Option<String>,
    dead_letter_config: Option<serde_json::Value>,
    tags: Option<Vec<serde_json::Value>>,
}

async fn create_event_bus(call: &Call<'_>, input: CreateEventBusIn) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    unsupported(&[
        (
            "EventSourceName (partner event sources)",
            input.event_source_name.is_some(),
        ),
        ("KmsKeyIdentifier", input.kms_key_identifier.is_some()),
        (
            "DeadLetterConfig (dead letters are kept per target)",
            input.dead_letter_config.is_some(),
        ),
        ("Tags", input.tags.as_ref().is_some_and(|t| !t.is_empty())),
    ])?;
    let name = input
        .name
        .ok_or_else(|| AwsError::validation("name", "Member must not be null"))?;
    let name = BusName::parse(&name).map_err(|e| AwsError::validation("name", e))?;
    call.may_use(name.as_str())?;
    let description = input.description.unwrap_or_default();
    crate::domain::fields::check_text(&description, crate::api::buses::MAX_DESCRIPTION)
        .map_err(|why| AwsError::validation("description", why))?;
    let mut tx = call.state.pool.begin().await?;
    if !store::buses::create(&mut tx, name.as_str(), &description).await? {
        return Err(AwsError::already_exists(format!(
            "Event bus {name} already exists."
        )));
    }
    let detail = serde_json::json!({ "created": true, "description": description, "via": "aws" });
    let resource = crate::audit::bus_resource(name.as_str());
    crate::audit::record(
        &mut tx,
        &call.actor(),
        crate::audit::Action::BusPut,
        &resource,
        detail,
    )
    .await?;
    tx.commit().await?;
    call.state.snapshots.refresh().await?;
    let mut out = serde_json::json!({
        "EventBusArn": arn::bus(call.region(), call.account(), name.as_str()),
    });
    if !description.is_empty() {
        out["Description"] = description.into();
    }
    Ok(output(&out))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BusNameIn {
    name: Option<String>,
}

async fn describe_event_bus(call: &Call<'_>, input: BusNameIn) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let bus = arn::bus_name(input.name.as_deref(), "name", call.region(), call.account())?;
    call.may_use(&bus)?;
    let mut conn = call.state.pool.acquire().await?;
    match store::buses::get(&mut conn, &bus).await? {
        Some(row) => Ok(output(&bus_out(call, row))),
        None => Err(AwsError::not_found(format!(
            "Event bus {bus} does not exist."
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListEventBusesIn {
    name_prefix: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

async fn list_event_buses(call: &Call<'_>, input: ListEventBusesIn) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let limit = page_limit(input.limit)? as usize;
    let after = read_next_token(input.next_token.as_deref())?;
    let prefix = input.name_prefix.unwrap_or_default();
    let mut conn = call.state.pool.acquire().await?;
    // Buses are few (each is a configuration object): filtered here, in name order.
    let rows: Vec<BusRow> = store::buses::list(&mut conn)
        .await?
        .into_iter()
        .filter(|row| row.name.starts_with(&prefix))
        .filter(|row| call.principal.may_use_bus(&row.name))
        .collect();
    let (rows, next) = page_by_name(rows, |row| &row.name, after.as_deref(), limit);
    let buses: Vec<EventBusOut> = rows.into_iter().map(|row| bus_out(call, row)).collect();
    let mut out = serde_json::json!({ "EventBuses": buses });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(output(&out))
}

async fn delete_event_bus(call: &Call<'_>, input: BusNameIn) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let name = input
        .name
        .ok_or_else(|| AwsError::validation("name", "Member must not be null"))?;
    let bus = BusName::parse(&name).map_err(|e| AwsError::validation("name", e))?;
    call.may_use(bus.as_str())?;
    if bus.as_str() == DEFAULT_BUS {
        return Err(AwsError::invalid("Cannot delete event bus default."));
    }
    match crate::api::buses::remove(call.state, &call.actor(), bus.as_str(), false).await? {
        // As AWS: deleting a bus that is not there succeeds.
        Deleted::Deleted | Deleted::NotFound => Ok(output(&serde_json::json!({}))),
        Deleted::HasRules(n) => Err(AwsError::invalid(format!(
            "Event bus {bus} still has {n} rule(s); delete them first."
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Rules

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuleOut {
    name: String,
    arn: String,
    event_pattern: String,
    state: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    event_bus_name: String,
    created_by: String,
}

fn aws_state(state: RuleState) -> &'static str {
    match state {
        RuleState::Enabled => "ENABLED",
        RuleState::Disabled => "DISABLED",
    }
}

fn rule_out(call: &Call<'_>, record: store::rules::RuleRecord) -> RuleOut {
    RuleOut {
        arn: arn::rule(call.region(), call.account(), &record.bus, &record.name),
        name: record.name,
        event_pattern: record.rule.event_pattern,
        state: aws_state(record.rule.state),
        description: record.rule.description,
        event_bus_name: record.bus,
        created_by: call.account().to_owned(),
    }
}

/// The rule an action names: `Name` and `EventBusName`, checked, and the key allowed on the bus.
pub(super) fn rule_of(
    call: &Call<'_>,
    name: Option<&str>,
    bus: Option<&str>,
) -> Result<(String, RuleName), AwsError> {
    let name = name.ok_or_else(|| AwsError::validation("name", "Member must not be null"))?;
    let name = RuleName::parse(name).map_err(|e| AwsError::validation("name", e))?;
    let bus = arn::bus_name(bus, "eventBusName", call.region(), call.account())?;
    call.may_use(&bus)?;
    Ok((bus, name))
}

/// The first of a REST check's problems, as AWS reports a member's (`targets/0/url` →
/// `targets.1.member.url`-like paths are not worth imitating: the pointer is given as is).
pub(super) fn first_problem(errors: crate::domain::ValidationErrors) -> AwsError {
    match errors.0.into_iter().next() {
        Some(error) => AwsError::validation(&error.pointer, error.detail),
        None => AwsError::invalid("the request is not valid"),
    }
}

pub(super) fn rule_not_found(bus: &str, rule: &RuleName) -> AwsError {
    AwsError::not_found(format!("Rule {rule} does not exist on EventBus {bus}."))
}

pub(super) fn bus_not_found(bus: &str) -> AwsError {
    AwsError::not_found(format!("Event bus {bus} does not exist."))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRuleIn {
    name: Option<String>,
    schedule_expression: Option<String>,
    event_pattern: Option<String>,
    state: Option<String>,
    description: Option<String>,
    role_arn: Option<String>,
    tags: Option<Vec<serde_json::Value>>,
    event_bus_name: Option<String>,
}

async fn put_rule(call: &Call<'_>, input: PutRuleIn) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    unsupported(&[
        (
            "ScheduleExpression (Switchyard routes events; a scheduler can post them)",
            input.schedule_expression.is_some(),
        ),
        ("RoleArn on a rule", input.role_arn.is_some()),
        ("Tags", input.tags.as_ref().is_some_and(|t| !t.is_empty())),
    ])?;
    let (bus, name) = rule_of(call, input.name.as_deref(), input.event_bus_name.as_deref())?;
    let pattern_text = input.event_pattern.ok_or_else(|| {
        AwsError::invalid("Parameter(s) EventPattern or ScheduleExpression must be specified.")
    })?;
    // The REST body's own checks (pattern, description, state), reported as AWS reports them.
    let mut body = serde_json::json!({ "event_pattern": pattern_text });
    if let Some(description) = &input.description {
        body["description"] = description.clone().into();
    }
    let state = match input.state.as_deref() {
        None | Some("ENABLED") => RuleState::Enabled,
        Some("DISABLED") => RuleState::Disabled,
        Some(other) => {
            return Err(AwsError::validation(
                "state",
                format!("Member must satisfy enum value set: [ENABLED, DISABLED]; got {other:?}"),
            ));
        }
    };
    if let Err(errors) = pattern::parse(&pattern_text) {
        return Err(invalid_pattern(&errors));
    }
    let parsed = domain::parse_rule(&body.to_string()).map_err(first_problem)?;
    let mut tx = call.state.pool.begin().await?;
    // Targets are PutTargets's: a rule that exists keeps its own.
    let targets = locked_rule(&mut tx, &bus, &name)
        .await?
        .map(|record| record.rule.targets)
        .unwrap_or_default();
    let rule = domain::Rule {
        state,
        targets,
        ..parsed
    };
    save_rule(call, tx, &bus, &name, &rule).await?;
    Ok(output(&serde_json::json!({
        "RuleArn": arn::rule(call.region(), call.account(), &bus, name.as_str()),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuleNameIn {
    name: Option<String>,
    event_bus_name: Option<String>,
    /// DeleteRule's (for rules managed by AWS services; there are none here).
    #[serde(default)]
    force: bool,
}

async fn describe_rule(call: &Call<'_>, input: RuleNameIn) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let (bus, name) = rule_of(call, input.name.as_deref(), input.event_bus_name.as_deref())?;
    let mut conn = call.state.pool.acquire().await?;
    match store::rules::get(&mut conn, &bus, name.as_str()).await? {
        Some(record) => Ok(output(&rule_out(call, record))),
        None if store::buses::get(&mut conn, &bus).await?.is_none() => Err(bus_not_found(&bus)),
        None => Err(rule_not_found(&bus, &name)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRulesIn {
    name_prefix: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

async fn list_rules(call: &Call<'_>, input: ListRulesIn) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let bus = arn::bus_name(
        input.event_bus_name.as_deref(),
        "eventBusName",
        call.region(),
        call.account(),
    )?;
    call.may_use(&bus)?;
    let limit = page_limit(input.limit)?;
    let after = read_next_token(input.next_token.as_deref())?;
    let prefix = input.name_prefix.unwrap_or_default();
    let mut conn = call.state.pool.acquire().await?;
    if store::buses::get(&mut conn, &bus).await?.is_none() {
        return Err(bus_not_found(&bus));
    }
    let mut records =
        store::rules::list(&mut conn, &bus, &prefix, after.as_deref(), limit + 1).await?;
    let next = store::page_end(&mut records, limit as usize).map(|r| next_token(&r.name));
    let rules: Vec<RuleOut> = records.into_iter().map(|r| rule_out(call, r)).collect();
    let mut out = serde_json::json!({ "Rules": rules });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(output(&out))
}

async fn delete_rule(call: &Call<'_>, input: RuleNameIn) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let _ = input.force;
    let (bus, name) = rule_of(call, input.name.as_deref(), input.event_bus_name.as_deref())?;
    let mut tx = call.state.pool.begin().await?;
    let Some(record) = locked_rule(&mut tx, &bus, &name).await? else {
        // As AWS: deleting a rule that is not there succeeds.
        return Ok(output(&serde_json::json!({})));
    };
    if !record.rule.targets.is_empty() {
        return Err(AwsError::invalid(
            "Rule can't be deleted since it has targets.",
        ));
    }
    crate::api::rules::remove_in(&mut tx, &call.actor(), &bus, name.as_str()).await?;
    tx.commit().await?;
    call.state.snapshots.refresh().await?;
    Ok(output(&serde_json::json!({})))
}

async fn set_state(
    call: &Call<'_>,
    input: RuleNameIn,
    state: RuleState,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let (bus, name) = rule_of(call, input.name.as_deref(), input.event_bus_name.as_deref())?;
    let mut tx = call.state.pool.begin().await?;
    let record = locked_rule(&mut tx, &bus, &name)
        .await?
        .ok_or_else(|| rule_not_found(&bus, &name))?;
    if record.rule.state != state {
        let rule = domain::Rule {
            state,
            ..record.rule
        };
        save_rule(call, tx, &bus, &name, &rule).await?;
    }
    Ok(output(&serde_json::json!({})))
}

/// The rule, locked until the transaction ends (a read-modify-write of it).
pub(super) async fn locked_rule(
    tx: &mut store::PgConnection,
    bus: &str,
    name: &RuleName,
) -> Result<Option<store::rules::RuleRecord>, AwsError> {
    if !store::rules::lock(tx, bus, name.as_str()).await? {
        return Ok(None);
    }
    Ok(store::rules::get(tx, bus, name.as_str()).await?)
}

/// Saves `rule` through the REST API's `save_in` in `tx`, commits, and answers once this process
/// matches with it: every EventBridge action that changes a rule ends here.
pub(super) async fn save_rule(
    call: &Call<'_>,
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    bus: &str,
    name: &RuleName,
    rule: &domain::Rule,
) -> Result<(), AwsError> {
    match crate::api::rules::save_in(&mut tx, &call.actor(), bus, name, rule).await? {
        Saved::BusNotFound => return Err(bus_not_found(bus)),
        Saved::Invalid(errors) => return Err(first_problem(errors)),
        Saved::Done { .. } => {}
    }
    tx.commit().await?;
    call.state.snapshots.refresh().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_named_as_aws_names_it() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.name()), Some(*action));
        }
        assert_eq!(Action::parse("putEvents"), None);
    }

    #[test]
    fn next_tokens_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(
            read_next_token(Some(&next_token("orders/a"))).unwrap(),
            Some("orders/a".to_owned())
        );
        assert!(read_next_token(Some("!!")).is_err());
    }

    #[test]
    fn entry_times_are_epoch_seconds() {
        let entry = PutEventsEntry {
            time: Some(1_700_000_000.5),
            source: Some("s".into()),
            resources: None,
            detail_type: Some("t".into()),
            detail: Some("{}".into()),
            event_bus_name: None,
            trace_header: None,
        };
        let raw = native_entry(&entry).unwrap_or_else(|_| panic!("converts"));
        assert!(
            raw.get().contains(r#""time":"2023-11-14T22:13:20Z""#),
            "{}",
            raw.get()
        );
        let bad = PutEventsEntry {
            time: Some(f64::MAX),
            ..entry
        };
        assert!(native_entry(&bad).is_err());
    }
}
