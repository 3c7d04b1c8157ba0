//! A rule and its targets as validated values, parsed from the JSON an operator sends (REST body
//! or a file under `rules/`). Every problem is reported, each with its JSON pointer.
//!
//! Limits follow EventBridge's where it has them: at most 5 targets, description up to 512
//! characters, `InputPath` up to 256, `InputTemplate` up to 8,192, up to 100 input paths,
//! `MaximumRetryAttempts` 0–185 (default 185), `MaximumEventAgeInSeconds` 60–86,400 (default 86,400).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use serde_json::value::RawValue;

use super::fields::{FieldError, Fields, ValidationErrors, pointer};
use super::{BusName, RuleName, TargetId};
use crate::pattern::{self, Json};
use crate::transform::{self, InputTransform};

pub const MAX_TARGETS: usize = 5;
pub const MAX_DESCRIPTION: usize = 512;
pub const MAX_URL: usize = 2048;
pub const MAX_HEADERS: usize = 50;
pub const DEFAULT_TIMEOUT_MS: u32 = 5000;
pub const TIMEOUT_MS_RANGE: (u32, u32) = (100, 60_000);
/// Deliveries in flight to one target at once, per process: generous by default; 1 sends one
/// at a time.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 100;
pub const MAX_CONCURRENCY_RANGE: (u32, u32) = (1, 1000);
/// Methods that carry the event as a body.
pub const METHODS: [&str; 3] = ["POST", "PUT", "PATCH"];
/// Headers Switchyard sets itself on every delivery.
pub const RESERVED_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "connection",
    "transfer-encoding",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "te",
];
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleState {
    Enabled,
    Disabled,
}

impl RuleState {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Enabled => "enabled",
            RuleState::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<RuleState> {
        match text {
            "enabled" => Some(RuleState::Enabled),
            "disabled" => Some(RuleState::Disabled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub maximum_retry_attempts: u32,
    pub maximum_event_age_seconds: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            maximum_retry_attempts: 185,
            maximum_event_age_seconds: 86_400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: TargetId,
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub input: InputTransform,
    pub retry_policy: RetryPolicy,
    pub timeout_ms: u32,
    pub max_concurrency: u32,
    /// Per-key FIFO: `None` sends deliveries as they come, concurrently.
    pub ordering: Option<Ordering>,
    /// What a delivery looks like on the wire.
    pub format: Format,
    /// The connection that authenticates its requests.
    pub connection: Option<String>,
    /// Deliveries per second across every router process; over it, deliveries wait.
    pub rate_limit_per_second: Option<u32>,
    /// The API destination its URL, method, connection and rate limit come from (filled in
    /// from the destination when the rule is saved, and whenever the destination changes).
    pub api_destination: Option<DestinationRef>,
    /// The role EventBridge's `PutTargets` named (kept; there are no IAM roles here).
    pub role_arn: Option<String>,
}

/// A target's API destination, with what fills its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRef {
    pub name: String,
    /// One per `*` of the endpoint, in order.
    pub path_parameters: Vec<String>,
    /// Appended to the endpoint as its query.
    pub query_parameters: BTreeMap<String, String>,
}

/// The longest `role_arn` (EventBridge's limit).
pub const MAX_ROLE_ARN: usize = 1600;

/// How a target receives an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// EventBridge's event as the JSON body (or what the input transformation renders).
    #[default]
    EventBridge,
    /// A CloudEvent in the JSON format, `Content-Type: application/cloudevents+json`.
    CloudEventsStructured,
    /// The data as the body, the attributes in `ce-` headers.
    CloudEventsBinary,
}

impl Format {
    pub const ALL: [Format; 3] = [
        Format::EventBridge,
        Format::CloudEventsStructured,
        Format::CloudEventsBinary,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::EventBridge => "eventbridge",
            Format::CloudEventsStructured => "cloudevents-structured",
            Format::CloudEventsBinary => "cloudevents-binary",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// A target's delivery order: deliveries whose events have the same group key (what `group_by`
/// selects) are sent one at a time, in the order their events were acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordering {
    /// A JSONPath over the event (`$.detail.order_id`); an event where it selects nothing goes
    /// to the group of the empty key.
    pub group_by: String,
    pub on_dead: OnDead,
}

/// What a group does when its head becomes a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDead {
    /// The next delivery of the group goes on (the default).
    Continue,
    /// The group waits until the dead letter is redriven (and delivered) or discarded.
    Block,
}

impl OnDead {
    pub fn as_str(self) -> &'static str {
        match self {
            OnDead::Continue => "continue",
            OnDead::Block => "block",
        }
    }

    pub fn parse(text: &str) -> Option<OnDead> {
        match text {
            "continue" => Some(OnDead::Continue),
            "block" => Some(OnDead::Block),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub description: String,
    /// The pattern as compact JSON text with numbers as written; it parsed with the engine's
    /// default limits.
    pub event_pattern: String,
    pub state: RuleState,
    pub targets: Vec<Target>,
}

/// Parses a rule body (`PUT /v1/buses/{bus}/rules/{rule}`).
pub fn parse_rule(text: &str) -> Result<Rule, ValidationErrors> {
    let mut errors = Vec::new();
    let rule = Fields::parse(text, "", &mut errors)
        .and_then(|mut fields| parse_rule_fields(&mut fields, &mut errors));
    ValidationErrors::finish(rule, errors, "rule")
}

/// Parses a rule file entry: a rule body plus `name` and an optional `bus` (default `default`).
pub fn parse_rule_document(text: &str) -> Result<(BusName, RuleName, Rule), ValidationErrors> {
    let mut errors = Vec::new();
    let parsed = Fields::parse(text, "", &mut errors).and_then(|mut fields| {
        let bus = match fields.take_string("bus", &mut errors) {
            Some(bus) => BusName::parse(&bus)
                .map_err(|e| errors.push(FieldError::new("/bus", e.0)))
                .ok(),
            None if fields.had("bus") => None,
            None => BusName::parse("default").ok(),
        };
        let name = match fields.take_string("name", &mut errors) {
            Some(name) => RuleName::parse(&name)
                .map_err(|e| errors.push(FieldError::new("/name", e.0)))
                .ok(),
            None => {
                if !fields.had("name") {
                    errors.push(FieldError::new("/name", "is required"));
                }
                None
            }
        };
        let rule = parse_rule_fields(&mut fields, &mut errors);
        Some((bus?, name?, rule?))
    });
    ValidationErrors::finish(parsed, errors, "rule")
}

fn parse_rule_fields(fields: &mut Fields, errors: &mut Vec<FieldError>) -> Option<Rule> {
    let description = fields
        .take_string("description", errors)
        .unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new(
            "/description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    let event_pattern = match fields.take("event_pattern") {
        Some(raw) => parse_pattern(raw.get(), errors),
        None => {
            errors.push(FieldError::new("/event_pattern", "is required"));
            None
        }
    };
    let state = match fields.take_string("state", errors) {
        Some(text) => RuleState::parse(&text).or_else(|| {
            errors.push(FieldError::new(
                "/state",
                format!("must be \"enabled\" or \"disabled\", not {text:?}"),
            ));
            None
        }),
        None => Some(RuleState::Enabled),
    };
    let targets = match fields.take("targets") {
        Some(raw) => parse_targets(raw.get(), errors),
        None => Some(Vec::new()),
    };
    fields.refuse_unknown(errors);
    Some(Rule {
        description,
        event_pattern: event_pattern?,
        state: state?,
        targets: targets?,
    })
}

/// The pattern as an object, or (as EventBridge's API takes it) a string holding the JSON;
/// its compact text, numbers as written.
pub(crate) fn parse_pattern(raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let text = match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(inner)) => inner,
        Ok(Value::Object(_)) => raw.to_owned(),
        _ => {
            errors.push(FieldError::new(
                "/event_pattern",
                "must be a JSON object (or a string holding one)",
            ));
            return None;
        }
    };
    match pattern::parse_with(&text, &pattern::Limits::default()) {
        // It parsed, so it is JSON: keep its compact form, numbers as written.
        Ok(_) => Json::parse(&text).ok().map(|json| json.to_string()),
        Err(e) => {
            errors.push(FieldError::new(
                format!("/event_pattern{}", e.pointer),
                e.aws_message(),
            ));
            None
        }
    }
}

fn parse_targets(raw: &str, errors: &mut Vec<FieldError>) -> Option<Vec<Target>> {
    let Ok(items) = serde_json::from_str::<Vec<Box<RawValue>>>(raw) else {
        errors.push(FieldError::new("/targets", "must be an array of targets"));
        return None;
    };
    if items.len() > MAX_TARGETS {
        errors.push(FieldError::new(
            "/targets",
            format!(
                "a rule has at most {MAX_TARGETS} targets; found {}",
                items.len()
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut targets = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let base = format!("/targets/{i}");
        match parse_target(item.get(), &base, errors) {
            Some(target) => {
                if !seen.insert(target.id.clone()) {
                    errors.push(FieldError::new(
                        format!("{base}/id"),
                        format!(
                            "target id {:?} is used twice in this rule",
                            target.id.as_str()
                        ),
                    ));
                }
                targets.push(target);
            }
            None => ok = false,
        }
    }
    ok.then_some(targets)
}

fn parse_target(raw: &str, base: &str, errors: &mut Vec<FieldError>) -> Option<Target> {
    let mut fields = Fields::parse(raw, base, errors)?;
    let at = |field: &str| format!("{base}/{field}");
    let id = match fields.take_string("id", errors) {
        Some(id) => TargetId::parse(&id)
            .map_err(|e| errors.push(FieldError::new(at("id"), e.0)))
            .ok(),
        None => {
            if !fields.had("id") {
                errors.push(FieldError::new(at("id"), "is required"));
            }
            None
        }
    };
    let api_destination = match fields.take("api_destination") {
        Some(raw) => parse_destination_ref(raw.get(), &at("api_destination"), errors).map(Some),
        None => Some(None),
    };
    let from_destination = matches!(api_destination, Some(Some(_)));
    // A destination's target takes these from the destination: each given one is refused.
    if from_destination {
        for field in ["url", "method", "connection", "rate_limit_per_second"] {
            if fields.take(field).is_some() {
                errors.push(FieldError::new(
                    at(field),
                    "comes from the target's api_destination; leave it out",
                ));
            }
        }
    }
    let url = match fields.take_string("url", errors) {
        Some(url) => check_url(&url)
            .map_err(|reason| errors.push(FieldError::new(at("url"), reason)))
            .ok()
            .map(|()| url),
        None if from_destination => Some(String::new()),
        None => {
            if !fields.had("url") {
                errors.push(FieldError::new(
                    at("url"),
                    "is required (or an api_destination)",
                ));
            }
            None
        }
    };
    let connection = match fields.take_string("connection", errors) {
        Some(name) => match crate::connections::check_name(&name) {
            Ok(()) => Some(Some(name)),
            Err(why) => {
                errors.push(FieldError::new(at("connection"), why));
                None
            }
        },
        None if fields.had("connection") => None,
        None => Some(None),
    };
    let rate_limit_per_second = match fields.take("rate_limit_per_second") {
        Some(raw) => integer_in(
            raw.get(),
            1,
            crate::connections::MAX_RATE,
            &at("rate_limit_per_second"),
            errors,
        )
        .map(Some),
        None => Some(None),
    };
    let role_arn = match fields.take_string("role_arn", errors) {
        Some(arn) => match crate::domain::fields::check_text(&arn, MAX_ROLE_ARN) {
            Ok(()) if !arn.is_empty() => Some(Some(arn)),
            Ok(()) => {
                errors.push(FieldError::new(at("role_arn"), "must not be empty"));
                None
            }
            Err(why) => {
                errors.push(FieldError::new(at("role_arn"), why));
                None
            }
        },
        None if fields.had("role_arn") => None,
        None => Some(None),
    };
    let method = match fields.take_string("method", errors) {
        Some(method) => {
            let upper = method.to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                Some(upper)
            } else {
                errors.push(FieldError::new(
                    at("method"),
                    format!(
                        "must be one of {} (the event travels as the request body); found {method:?}",
                        METHODS.join(", ")
                    ),
                ));
                None
            }
        }
        None if fields.had("method") => None,
        None => Some("POST".to_owned()),
    };
    let headers = match fields.take("headers") {
        Some(raw) => parse_headers(raw.get(), &at("headers"), errors),
        None => Some(BTreeMap::new()),
    };
    let input = transform::validate::parse_input(&mut fields, base, errors);
    let retry_policy = match fields.take("retry_policy") {
        Some(raw) => parse_retry_policy(raw.get(), &at("retry_policy"), errors),
        None => Some(RetryPolicy::default()),
    };
    let timeout_ms = match fields.take("timeout_ms") {
        Some(raw) => {
            let (min, max) = TIMEOUT_MS_RANGE;
            integer_in(raw.get(), min, max, &at("timeout_ms"), errors)
        }
        None => Some(DEFAULT_TIMEOUT_MS),
    };
    let max_concurrency = match fields.take("max_concurrency") {
        Some(raw) => {
            let (min, max) = MAX_CONCURRENCY_RANGE;
            integer_in(raw.get(), min, max, &at("max_concurrency"), errors)
        }
        None => Some(DEFAULT_MAX_CONCURRENCY),
    };
    let ordering = match fields.take("ordering") {
        Some(raw) => parse_ordering(raw.get(), &at("ordering"), errors).map(Some),
        None => Some(None),
    };
    let format = match fields.take_string("format", errors) {
        Some(text) => Format::parse(&text).or_else(|| {
            let known: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
            errors.push(FieldError::new(
                at("format"),
                format!("must be one of {}; found {text:?}", known.join(", ")),
            ));
            None
        }),
        None if fields.had("format") => None,
        None => Some(Format::EventBridge),
    };
    fields.refuse_unknown(errors);
    Some(Target {
        id: id?,
        url: url?,
        method: method?,
        headers: headers?,
        input: input?,
        retry_policy: retry_policy?,
        timeout_ms: timeout_ms?,
        max_concurrency: max_concurrency?,
        ordering: ordering?,
        format: format?,
        connection: connection?,
        rate_limit_per_second: rate_limit_per_second?,
        api_destination: api_destination?,
        role_arn: role_arn?,
    })
}

fn parse_destination_ref(
    raw: &str,
    base: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DestinationRef> {
    let mut fields = Fields::parse(raw, base, errors)?;
    let name = match fields.take_string("name", errors) {
        Some(name) => match crate::connections::check_name(&name) {
            Ok(()) => Some(name),
            Err(why) => {
                errors.push(FieldError::new(format!("{base}/name"), why));
                None
            }
        },
        None => {
            if !fields.had("name") {
                errors.push(FieldError::new(format!("{base}/name"), "is required"));
            }
            None
        }
    };
    let path_parameters = match fields.take("path_parameters") {
        Some(raw) => match serde_json::from_str::<Vec<String>>(raw.get()) {
            Ok(values)
                if values.len() <= 20
                    && values
                        .iter()
                        .all(|v| crate::domain::fields::check_text(v, 512).is_ok()) =>
            {
                Some(values)
            }
            _ => {
                errors.push(FieldError::new(
                    format!("{base}/path_parameters"),
                    "must be an array of at most 20 texts (512 characters each, no NUL)",
                ));
                None
            }
        },
        None => Some(Vec::new()),
    };
    let query_parameters = match fields.take("query_parameters") {
        Some(raw) => match serde_json::from_str::<BTreeMap<String, String>>(raw.get()) {
            Ok(values)
                if values.len() <= MAX_HEADERS
                    && values.iter().all(|(k, v)| {
                        !k.is_empty()
                            && crate::domain::fields::check_text(k, 512).is_ok()
                            && crate::domain::fields::check_text(v, 512).is_ok()
                    }) =>
            {
                Some(values)
            }
            _ => {
                errors.push(FieldError::new(
                    format!("{base}/query_parameters"),
                    format!("must be an object of at most {MAX_HEADERS} texts (512 characters each, no NUL)"),
                ));
                None
            }
        },
        None => Some(BTreeMap::new()),
    };
    fields.refuse_unknown(errors);
    Some(DestinationRef {
        name: name?,
        path_parameters: path_parameters?,
        query_parameters: query_parameters?,
    })
}

fn parse_ordering(raw: &str, base: &str, errors: &mut Vec<FieldError>) -> Option<Ordering> {
    let mut fields = Fields::parse(raw, base, errors)?;
    let group_by = match fields.take_string("group_by", errors) {
        Some(path) => transform::validate::check_json_path(
            &path,
            transform::validate::MAX_INPUT_PATH,
            &format!("{base}/group_by"),
            errors,
        )
        .then_some(path),
        None => {
            if !fields.had("group_by") {
                errors.push(FieldError::new(format!("{base}/group_by"), "is required"));
            }
            None
        }
    };
    let on_dead = match fields.take_string("on_dead", errors) {
        Some(text) => OnDead::parse(&text).or_else(|| {
            errors.push(FieldError::new(
                format!("{base}/on_dead"),
                format!("must be \"continue\" or \"block\", not {text:?}"),
            ));
            None
        }),
        None if fields.had("on_dead") => None,
        None => Some(OnDead::Continue),
    };
    fields.refuse_unknown(errors);
    Some(Ordering {
        group_by: group_by?,
        on_dead: on_dead?,
    })
}

pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} characters"));
    }

    // The parser the delivery client sends with (reqwest's), so what is saved can be sent.
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    match parsed.scheme() {
        "http" | "https" => {}
        _ => return Err("must be an absolute http:// or https:// URL".to_owned()),
    }
    match parsed.host_str() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err("must name a host".to_owned()),
    }
}

fn parse_headers(
    raw: &str,
    base: &str,
    errors: &mut Vec<FieldError>,
) -> Option<BTreeMap<String, String>> {
    let Ok(map) = serde_json::from_str::<BTreeMap<String, Value>>(raw) else {
        errors.push(FieldError::new(
            base,
            "must be an object of header names to string values",
        ));
        return None;
    };
    if map.len() > MAX_HEADERS {
        errors.push(FieldError::new(
            base,
            format!("at most {MAX_HEADERS} headers"),
        ));
        return None;
    }
    let mut headers = BTreeMap::new();
    let mut ok = true;
    for (name, value) in map {
        let at = pointer(base, &name);
        let lower = name.to_ascii_lowercase();
        let mut fail = |reason: String| {
            errors.push(FieldError::new(at.clone(), reason));
            ok = false;
        };
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            fail(format!("{name:?} is not a valid header name"));
            continue;
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            fail(format!(
                "{name:?} is set by Switchyard and cannot be overridden"
            ));
            continue;
        }
        match value {
            Value::String(text) if http::HeaderValue::from_str(&text).is_ok() => {
                headers.insert(name, text);
            }
            Value::String(_) => fail("is not a valid header value".to_owned()),
            _ => fail("must be a string".to_owned()),
        }
    }
    ok.then_some(headers)
}

fn parse_retry_policy(raw: &str, base: &str, errors: &mut Vec<FieldError>) -> Option<RetryPolicy> {
    let mut fields = Fields::parse(raw, base, errors)?;
    let defaults = RetryPolicy::default();
    let attempts = match fields.take("maximum_retry_attempts") {
        Some(raw) => integer_in(
            raw.get(),
            0,
            185,
            &format!("{base}/maximum_retry_attempts"),
            errors,
        ),
        None => Some(defaults.maximum_retry_attempts),
    };
    let age = match fields.take("maximum_event_age_seconds") {
        Some(raw) => integer_in(
            raw.get(),
            60,
            86_400,
            &format!("{base}/maximum_event_age_seconds"),
            errors,
        ),
        None => Some(defaults.maximum_event_age_seconds),
    };
    fields.refuse_unknown(errors);
    Some(RetryPolicy {
        maximum_retry_attempts: attempts?,
        maximum_event_age_seconds: age?,
    })
}

pub(crate) fn integer_in(
    raw: &str,
    min: u32,
    max: u32,
    at: &str,
    errors: &mut Vec<FieldError>,
) -> Option<u32> {
    match serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| crate::domain::fields::whole_number(&v))
    {
        Some(n) if (u64::from(min)..=u64::from(max)).contains(&n) => u32::try_from(n).ok(),
        _ => {
            errors.push(FieldError::new(
                at,
                format!("must be an integer from {min} to {max}"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<(String, String)> {
        parse_rule(text)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.pointer, e.detail))
            .collect()
    }

    #[test]
    fn a_full_rule_is_read_with_its_defaults() {
        let rule = parse_rule(
            r#"{"description": "d", "event_pattern": {"source": ["a"], "detail": {"n": [{"numeric": [">", 1.50]}]}},
                "targets": [{"id": "t1", "url": "https://example.com/hook", "method": "put",
                             "headers": {"Authorization": "Bearer x"},
                             "input_transformer": {"input_paths_map": {"n": "$.detail.n"}, "input_template": "{\"n\": <n>}"},
                             "retry_policy": {"maximum_retry_attempts": 0}, "timeout_ms": 250}]}"#,
        )
        .unwrap();
        assert_eq!(
            rule.event_pattern,
            r#"{"source":["a"],"detail":{"n":[{"numeric":[">",1.50]}]}}"#
        );
        assert_eq!(rule.state, RuleState::Enabled);
        let target = &rule.targets[0];
        assert_eq!(target.method, "PUT");
        assert_eq!(target.retry_policy.maximum_retry_attempts, 0);
        assert_eq!(target.retry_policy.maximum_event_age_seconds, 86_400);
        let InputTransform::Transformer { paths_map, .. } = &target.input else {
            panic!("an input transformer: {:?}", target.input);
        };
        assert_eq!(paths_map["n"], "$.detail.n");
    }

    #[test]
    fn every_bad_field_is_reported_with_its_pointer() {
        let got = errors(
            r#"{"event_pattern": {"source": "x"}, "state": "on", "colour": 1,
                "targets": [{"id": "a b", "url": "ftp://x", "timeout_ms": 5,
                             "input": 1, "input_path": "$.a",
                             "headers": {"Content-Type": "x"}},
                            {"url": "http://x"}]}"#,
        );
        let pointers: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/event_pattern/source",
                "/state",
                "/targets/0/id",
                "/targets/0/url",
                "/targets/0/headers/Content-Type",
                "/targets/0/input_path",
                "/targets/0/timeout_ms",
                "/targets/1/id",
                "/colour",
            ],
            "{got:#?}"
        );
        assert!(got[0].1.starts_with(pattern::INVALID_PATTERN));
    }

    #[test]
    fn pattern_may_be_a_string_like_eventbridge_takes_it() {
        let rule = parse_rule(r#"{"event_pattern": "{\"source\": [\"a\"]}"}"#).unwrap();
        assert_eq!(rule.event_pattern, r#"{"source":["a"]}"#);
    }

    #[test]
    fn limits_of_targets_and_retry_policy() {
        let six: Vec<String> = (0..6)
            .map(|i| format!(r#"{{"id": "t{i}", "url": "http://x"}}"#))
            .collect();
        let got = errors(&format!(
            r#"{{"event_pattern": {{"source": ["x"]}}, "targets": [{}]}}"#,
            six.join(",")
        ));
        assert_eq!(got[0].0, "/targets");
        let got = errors(
            r#"{"event_pattern": {"source": ["x"]}, "targets": [{"id": "t", "url": "http://x", "retry_policy": {"maximum_retry_attempts": 186, "maximum_event_age_seconds": 59}}, {"id": "u", "url": "http://x"}, {"id": "u", "url": "http://y"}]}"#,
        );
        let pointers: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/targets/0/retry_policy/maximum_retry_attempts",
                "/targets/0/retry_policy/maximum_event_age_seconds",
                "/targets/2/id"
            ]
        );
    }

    #[test]
    fn json_paths_are_checked_when_the_rule_is_saved() {
        let got = errors(
            r#"{"event_pattern": {"source": ["x"]}, "targets": [{"id": "t", "url": "http://x", "input_path": "$.detail-type"}]}"#,
        );
        assert_eq!(got[0].0, "/targets/0/input_path");
        assert!(got[0].1.contains("$['detail-type']"), "{}", got[0].1);
        let got = errors(
            r#"{"event_pattern": {"source": ["x"]}, "targets": [{"id": "t", "url": "http://x", "input_transformer": {"input_paths_map": {"a": "nope"}, "input_template": "<aws.events.nope>"}}]}"#,
        );
        let pointers: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            ["/targets/0/input_transformer/input_paths_map/a",]
        );
    }

    #[test]
    fn documents_carry_bus_and_name() {
        let (bus, name, _) =
            parse_rule_document(r#"{"name": "r1", "event_pattern": {"source": ["x"]}}"#).unwrap();
        assert_eq!((bus.as_str(), name.as_str()), ("default", "r1"));
        let err = parse_rule_document(r#"{"bus": "a b", "event_pattern": {"source": ["x"]}}"#)
            .unwrap_err();
        let pointers: Vec<&str> = err.0.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/bus", "/name"]);
    }
}
