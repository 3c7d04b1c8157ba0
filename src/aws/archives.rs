//! EventBridge's archive and replay actions, onto the REST API's [`crate::api::archives`] and
//! [`crate::api::replays`] functions. EventBridge names archives per account and region, where
//! Switchyard names them per bus: an archive name used on two buses is refused here as
//! ambiguous (the REST API reaches both), and `CreateArchive` refuses a name any bus uses.

use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::actions::{first_problem, page_by_name, page_limit, read_next_token, unsupported};
use super::{AwsError, Call, arn, epoch_seconds, output};
use crate::api::replays::Started;
use crate::auth::Scope;
use crate::domain::ArchiveName;
use crate::store::{self, archives::ArchiveRow, replays::ReplayRow};

fn archive_not_found(name: &str) -> AwsError {
    AwsError::not_found(format!("Archive {name} does not exist."))
}

fn replay_not_found(name: &str) -> AwsError {
    AwsError::not_found(format!("Replay {name} does not exist."))
}

fn archive_name(name: Option<String>) -> Result<String, AwsError> {
    let name =
        name.ok_or_else(|| AwsError::validation("archiveName", "Member must not be null"))?;
    ArchiveName::parse(&name).map_err(|e| AwsError::validation("archiveName", e))?;
    Ok(name)
}

/// The one archive of that name, on a bus the key may use.
async fn the_archive(call: &Call<'_>, name: &str) -> Result<ArchiveRow, AwsError> {
    let mut conn = call.state.pool.acquire().await?;
    let mut found = store::archives::by_name(&mut conn, name, false).await?;
    match found.len() {
        0 => Err(archive_not_found(name)),
        1 => {
            let row = found.remove(0);
            call.may_use(&row.bus)?;
            Ok(row)
        }
        _ => Err(AwsError::invalid(format!(
            "Archive {name} exists on several buses ({}): name it through the REST API (/v1/buses/{{bus}}/archives/{name})",
            found
                .iter()
                .map(|a| a.bus.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn archive_out(call: &Call<'_>, row: &ArchiveRow, whole: bool) -> Value {
    let mut out = json!({
        "ArchiveName": row.name,
        "EventSourceArn": arn::bus(call.region(), call.account(), &row.bus),
        "State": "ENABLED",
        "RetentionDays": row.retention_days,
        "EventCount": row.event_count,
        "SizeBytes": 0,
        "CreationTime": epoch_seconds(row.created_at),
    });
    if whole {
        out["ArchiveArn"] = arn::archive(call.region(), call.account(), &row.name).into();
        if !row.description.is_empty() {
            out["Description"] = row.description.clone().into();
        }
        if let Some(pattern) = &row.event_pattern {
            out["EventPattern"] = pattern.clone().into();
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateArchiveIn {
    archive_name: Option<String>,
    event_source_arn: Option<String>,
    description: Option<String>,
    event_pattern: Option<String>,
    retention_days: Option<i64>,
    kms_key_identifier: Option<String>,
}

pub(super) async fn create_archive(
    call: &Call<'_>,
    input: CreateArchiveIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    unsupported(&[("KmsKeyIdentifier", input.kms_key_identifier.is_some())])?;
    let name = archive_name(input.archive_name)?;
    let source = input
        .event_source_arn
        .ok_or_else(|| AwsError::validation("eventSourceArn", "Member must not be null"))?;
    let bus = arn::bus_name(
        Some(&source),
        "eventSourceArn",
        call.region(),
        call.account(),
    )?;
    if !source.starts_with("arn:") {
        return Err(AwsError::validation(
            "eventSourceArn",
            "must be an event bus ARN",
        ));
    }
    call.may_use(&bus)?;
    {
        let mut conn = call.state.pool.acquire().await?;
        if !store::archives::by_name(&mut conn, &name, false)
            .await?
            .is_empty()
        {
            return Err(AwsError::already_exists(format!(
                "Archive {name} already exists."
            )));
        }
    }
    // Through the REST API's parser: one set of checks.
    let mut body = json!({ "description": input.description.unwrap_or_default() });
    if let Some(pattern) = input.event_pattern {
        if let Err(e) = crate::pattern::parse(&pattern) {
            return Err(AwsError::new(
                "InvalidEventPatternException",
                axum::http::StatusCode::BAD_REQUEST,
                e.aws_message(),
            ));
        }
        body["event_pattern"] = pattern.into();
    }
    if let Some(days) = input.retention_days {
        body["retention_days"] = days.into();
    }
    let archive =
        crate::domain::archive::parse_archive(&body.to_string()).map_err(first_problem)?;
    let Some((_, row)) =
        crate::api::archives::save(call.state, &call.actor(), &bus, &name, &archive).await?
    else {
        return Err(AwsError::not_found(format!(
            "Event bus {bus} does not exist."
        )));
    };
    Ok(output(&json!({
        "ArchiveArn": arn::archive(call.region(), call.account(), &row.name),
        "State": "ENABLED",
        "CreationTime": epoch_seconds(row.created_at),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ArchiveNameIn {
    archive_name: Option<String>,
}

pub(super) async fn describe_archive(
    call: &Call<'_>,
    input: ArchiveNameIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let name = archive_name(input.archive_name)?;
    let row = the_archive(call, &name).await?;
    Ok(output(&archive_out(call, &row, true)))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListArchivesIn {
    name_prefix: Option<String>,
    event_source_arn: Option<String>,
    state: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_archives(
    call: &Call<'_>,
    input: ListArchivesIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let limit = page_limit(input.limit)? as usize;
    let after = read_next_token(input.next_token.as_deref())?;
    let bus = match &input.event_source_arn {
        Some(source) => Some(arn::bus_name(
            Some(source),
            "eventSourceArn",
            call.region(),
            call.account(),
        )?),
        None => None,
    };
    let mut conn = call.state.pool.acquire().await?;
    let rows: Vec<ArchiveRow> =
        store::archives::by_name(&mut conn, input.name_prefix.as_deref().unwrap_or(""), true)
            .await?
            .into_iter()
            .filter(|row| bus.as_ref().is_none_or(|b| &row.bus == b))
            .filter(|row| call.principal.may_use_bus(&row.bus))
            .filter(|_| input.state.as_deref().is_none_or(|s| s == "ENABLED"))
            .collect();
    let (rows, next) = page_by_name(rows, |row| &row.name, after.as_deref(), limit);
    let archives: Vec<Value> = rows
        .iter()
        .map(|row| archive_out(call, row, false))
        .collect();
    let mut out = json!({ "Archives": archives });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(output(&out))
}

pub(super) async fn delete_archive(
    call: &Call<'_>,
    input: ArchiveNameIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let name = archive_name(input.archive_name)?;
    let row = the_archive(call, &name).await?;
    if !crate::api::archives::remove(call.state, &call.actor(), &row.bus, &name).await? {
        return Err(archive_not_found(&name));
    }
    Ok(output(&json!({})))
}

/// EventBridge's replay states from Switchyard's.
fn aws_replay_state(state: &str) -> &'static str {
    match state {
        "starting" => "STARTING",
        "running" => "RUNNING",
        "completed" => "COMPLETED",
        "cancelled" => "CANCELLED",
        _ => "FAILED",
    }
}

fn replay_out(call: &Call<'_>, row: &ReplayRow, whole: bool) -> Value {
    let (region, account) = (call.region(), call.account());
    let mut out = json!({
        "ReplayName": row.name,
        "EventSourceArn": arn::archive(region, account, &row.archive),
        "State": aws_replay_state(&row.state),
        "EventStartTime": epoch_seconds(row.window_from),
        "EventEndTime": epoch_seconds(row.window_to),
        "ReplayStartTime": epoch_seconds(row.started_at.unwrap_or(row.created_at)),
    });
    if let Some(reason) = &row.reason {
        out["StateReason"] = reason.clone().into();
    }
    if let Some(at) = row.cursor_received_at {
        out["EventLastReplayedTime"] = epoch_seconds(at).into();
    }
    if let Some(at) = row.finished_at {
        out["ReplayEndTime"] = epoch_seconds(at).into();
    }
    if whole {
        out["ReplayArn"] = arn::replay(region, account, &row.name).into();
        let mut destination = json!({ "Arn": arn::bus(region, account, &row.destination_bus) });
        if let Some(rules) = &row.rules {
            destination["FilterArns"] = rules
                .iter()
                .map(|r| arn::rule(region, account, &row.destination_bus, r))
                .collect::<Vec<_>>()
                .into();
        }
        out["Destination"] = destination;
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DestinationIn {
    arn: Option<String>,
    filter_arns: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct StartReplayIn {
    replay_name: Option<String>,
    description: Option<String>,
    event_source_arn: Option<String>,
    event_start_time: Option<f64>,
    event_end_time: Option<f64>,
    destination: Option<DestinationIn>,
}

fn time_of(seconds: Option<f64>, field: &str) -> Result<String, AwsError> {
    let seconds = seconds.ok_or_else(|| AwsError::validation(field, "Member must not be null"))?;
    super::from_epoch_seconds(seconds)
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| AwsError::validation(field, "is not a valid time"))
}

pub(super) async fn start_replay(
    call: &Call<'_>,
    input: StartReplayIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let (region, account) = (call.region(), call.account());
    let name = input
        .replay_name
        .ok_or_else(|| AwsError::validation("replayName", "Member must not be null"))?;
    let source = input
        .event_source_arn
        .ok_or_else(|| AwsError::validation("eventSourceArn", "Member must not be null"))?;
    let archive = arn::archive_name(&source, region, account).ok_or_else(|| {
        AwsError::validation(
            "eventSourceArn",
            format!("{source:?} is not an archive ARN of this router"),
        )
    })?;
    let archive = the_archive(call, &archive).await?;
    let destination = input
        .destination
        .ok_or_else(|| AwsError::validation("destination", "Member must not be null"))?;
    let destination_bus = arn::bus_name(
        destination.arn.as_deref(),
        "destination.arn",
        region,
        account,
    )?;
    call.may_use(&destination_bus)?;
    let rules = match destination.filter_arns {
        Some(arns) if !arns.is_empty() => {
            let mut names = Vec::with_capacity(arns.len());
            for given in &arns {
                let name =
                    arn::rule_name(given, region, account, &destination_bus).ok_or_else(|| {
                        AwsError::validation(
                            "destination.filterArns",
                            format!("{given:?} is not a rule ARN of the destination bus"),
                        )
                    })?;
                names.push(name);
            }
            Some(names)
        }
        _ => None,
    };
    let _ = input.description;
    let mut body = json!({
        "name": name,
        "bus": archive.bus,
        "archive": archive.name,
        "from": time_of(input.event_start_time, "eventStartTime")?,
        "to": time_of(input.event_end_time, "eventEndTime")?,
        "destination_bus": destination_bus,
    });
    if let Some(rules) = rules {
        body["rules"] = rules.into();
    }
    let parsed = crate::api::replays::parse(&body.to_string(), OffsetDateTime::now_utc())
        .map_err(first_problem)?;
    match crate::api::replays::begin(call.state, &call.actor(), &parsed).await? {
        Started::Invalid(errors) => Err(first_problem(errors)),
        Started::NameTaken => Err(AwsError::already_exists(format!(
            "Replay {name} already exists."
        ))),
        Started::Done(row) => Ok(output(&json!({
            "ReplayArn": arn::replay(region, account, &row.name),
            "State": aws_replay_state(&row.state),
            "ReplayStartTime": epoch_seconds(row.created_at),
        }))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ReplayNameIn {
    replay_name: Option<String>,
}

async fn the_replay(call: &Call<'_>, name: Option<String>) -> Result<ReplayRow, AwsError> {
    let name = name.ok_or_else(|| AwsError::validation("replayName", "Member must not be null"))?;
    let mut conn = call.state.pool.acquire().await?;
    let row = store::replays::get(&mut conn, &name)
        .await?
        .ok_or_else(|| replay_not_found(&name))?;
    call.may_use(&row.bus)?;
    Ok(row)
}

pub(super) async fn describe_replay(
    call: &Call<'_>,
    input: ReplayNameIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let row = the_replay(call, input.replay_name).await?;
    Ok(output(&replay_out(call, &row, true)))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ListReplaysIn {
    name_prefix: Option<String>,
    state: Option<String>,
    event_source_arn: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_replays(
    call: &Call<'_>,
    input: ListReplaysIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Read)?;
    let limit = page_limit(input.limit)? as usize;
    let after = read_next_token(input.next_token.as_deref())?;
    let archive = match &input.event_source_arn {
        Some(source) => Some(
            arn::archive_name(source, call.region(), call.account()).ok_or_else(|| {
                AwsError::validation(
                    "eventSourceArn",
                    format!("{source:?} is not an archive ARN of this router"),
                )
            })?,
        ),
        None => None,
    };
    let prefix = input.name_prefix.unwrap_or_default();
    let mut conn = call.state.pool.acquire().await?;
    // Replays are few (each is an operator's action): filtered here, in name order.
    let rows: Vec<ReplayRow> = store::replays::list(&mut conn, None, None, i64::MAX)
        .await?
        .into_iter()
        .filter(|row| row.name.starts_with(&prefix))
        .filter(|row| archive.as_ref().is_none_or(|a| &row.archive == a))
        .filter(|row| {
            input
                .state
                .as_deref()
                .is_none_or(|s| s == aws_replay_state(&row.state))
        })
        .filter(|row| call.principal.may_use_bus(&row.bus))
        .collect();
    let (rows, next) = page_by_name(rows, |row| &row.name, after.as_deref(), limit);
    let replays: Vec<Value> = rows
        .iter()
        .map(|row| replay_out(call, row, false))
        .collect();
    let mut out = json!({ "Replays": replays });
    if let Some(next) = next {
        out["NextToken"] = next.into();
    }
    Ok(output(&out))
}

pub(super) async fn cancel_replay(
    call: &Call<'_>,
    input: ReplayNameIn,
) -> Result<Response, AwsError> {
    call.need(Scope::Admin)?;
    let row = the_replay(call, input.replay_name).await?;
    match crate::replay::cancel(&call.state.pool, &call.actor(), &row.name).await? {
        Ok(row) => Ok(output(&json!({
            "ReplayArn": arn::replay(call.region(), call.account(), &row.name),
            "State": "CANCELLING",
        }))),
        Err(Some(row)) => Err(AwsError::new(
            "IllegalStatusException",
            axum::http::StatusCode::BAD_REQUEST,
            format!(
                "Replay {} is in state {} and cannot be cancelled.",
                row.name,
                aws_replay_state(&row.state)
            ),
        )),
        Err(None) => Err(replay_not_found(&row.name)),
    }
}
