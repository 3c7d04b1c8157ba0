//! The EventBridge envelope of one ingested entry: validated, then written out as the event
//! that rules match and targets receive.
//!
//! A producer sends `source`, `detail-type`, `detail` (a JSON object, or as EventBridge's API
//! takes it a string holding one), and optionally `time` (RFC 3339) and `resources`; Switchyard
//! assigns `id`, `version`, `account` and `region`. The detail is kept exactly as sent. An
//! optional `idempotency_key` de-duplicates the entry on its bus (`ingest`); it is not part of the
//! event.

use std::collections::BTreeMap;

use super::EventId;
use super::fields::unstorable;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const MAX_SOURCE: usize = 256;
pub const MAX_DETAIL_TYPE: usize = 128;
pub const MAX_RESOURCES: usize = 100;
pub const MAX_RESOURCE: usize = 2048;
/// The longest `idempotency_key`, in characters.
pub const MAX_IDEMPOTENCY_KEY: usize = 256;
/// EventBridge's limit for an entry's `TraceHeader`.
pub const MAX_TRACE_HEADER: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeLimits {
    /// The largest entry accepted, counted as the entry's JSON text in the request.
    pub max_entry_bytes: usize,
}

/// Why one entry was refused: an EventBridge-style code and a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EntryError {
    pub code: &'static str,
    pub message: String,
    /// For a detail its schema refused (`SchemaViolation`), each violation.
    pub violations: Vec<crate::schema::Violation>,
}

impl EntryError {
    /// An entry refused with this code, for a reason that is not a schema's.
    pub fn new(code: &'static str, message: impl Into<String>) -> EntryError {
        EntryError {
            code,
            message: message.into(),
            violations: Vec::new(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> EntryError {
        EntryError::new("InvalidArgument", message)
    }

    pub fn malformed_detail(message: impl Into<String>) -> EntryError {
        EntryError::new("MalformedDetail", message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub source: String,
    pub detail_type: String,
    /// The detail object's JSON text as sent.
    pub detail: String,
    pub time: OffsetDateTime,
    pub resources: Vec<String>,
    /// The producer's key for de-duplication (not part of the event).
    pub idempotency_key: Option<String>,
    /// The producer's span, from the entry's `TraceHeader` (not part of the event).
    pub trace_header: Option<super::trace::Incoming>,
    /// For a CloudEvent, its attributes without an EventBridge counterpart (a JSON object's
    /// text), kept as the event's `cloudevent` member ([`super::cloudevent`]).
    pub cloudevent: Option<String>,
}

impl Envelope {
    /// Validates one entry (its JSON text); `now` is the time used when the entry has none.
    pub fn parse(
        raw: &str,
        limits: &EnvelopeLimits,
        now: OffsetDateTime,
    ) -> Result<Envelope, EntryError> {
        if raw.len() > limits.max_entry_bytes {
            return Err(EntryError::new(
                "EntryTooLarge",
                format!(
                    "the entry is {} bytes; the limit is {} bytes",
                    raw.len(),
                    limits.max_entry_bytes
                ),
            ));
        }
        let mut members: BTreeMap<String, Box<RawValue>> = serde_json::from_str(raw)
            .map_err(|_| EntryError::invalid("an entry must be a JSON object"))?;
        let mut take = |name: &str| members.remove(name).filter(|raw| raw.get() != "null");

        let source = required_string(take("source"), "source", MAX_SOURCE)?;
        let detail_type = required_string(take("detail-type"), "detail-type", MAX_DETAIL_TYPE)?;
        let detail = match take("detail") {
            Some(raw) => detail_text(&raw)?,
            None => return Err(EntryError::invalid("detail: is required")),
        };
        let time = match take("time") {
            Some(raw) => {
                let text: String = serde_json::from_str(raw.get()).map_err(|_| {
                    EntryError::invalid("time: must be an RFC 3339 timestamp string")
                })?;
                OffsetDateTime::parse(&text, &Rfc3339).map_err(|e| {
                    EntryError::invalid(format!(
                        "time: {text:?} is not an RFC 3339 timestamp ({e})"
                    ))
                })?
            }
            None => now,
        };
        let resources = match take("resources") {
            Some(raw) => {
                let items: Vec<String> = serde_json::from_str(raw.get())
                    .map_err(|_| EntryError::invalid("resources: must be an array of strings"))?;
                if items.len() > MAX_RESOURCES {
                    return Err(EntryError::invalid(format!(
                        "resources: at most {MAX_RESOURCES} items"
                    )));
                }
                if let Some(i) = items
                    .iter()
                    .position(|r| r.is_empty() || r.len() > MAX_RESOURCE)
                {
                    return Err(EntryError::invalid(format!(
                        "resources/{i}: must be 1 to {MAX_RESOURCE} characters"
                    )));
                }
                items
            }
            None => Vec::new(),
        };
        let idempotency_key = match take("idempotency_key") {
            Some(raw) => Some(
                serde_json::from_str::<String>(raw.get())
                    .ok()
                    .filter(|key| {
                        !key.is_empty()
                            && key.chars().count() <= MAX_IDEMPOTENCY_KEY
                            && unstorable(key).is_none()
                    })
                    .ok_or_else(|| {
                        EntryError::invalid(format!(
                            "idempotency_key: must be a string of 1 to {MAX_IDEMPOTENCY_KEY} \
                             characters without NUL"
                        ))
                    })?,
            ),
            None => None,
        };
        let trace_header = match take("TraceHeader") {
            Some(raw) => Some(
                serde_json::from_str::<String>(raw.get())
                    .ok()
                    .filter(|text| text.len() <= MAX_TRACE_HEADER)
                    .and_then(|text| {
                        super::trace::parse_traceparent(&text)
                            .or_else(|| super::trace::parse_xray(&text))
                    })
                    .ok_or_else(|| {
                        EntryError::invalid(
                            "TraceHeader: must be a W3C traceparent or an X-Ray trace header \
                             (Root=1-…;Parent=…), at most 500 characters",
                        )
                    })?,
            ),
            None => None,
        };
        if let Some(name) = members.keys().next() {
            return Err(EntryError::invalid(
                if ["id", "version", "account", "region"].contains(&name.as_str()) {
                    format!("{name}: is assigned by Switchyard and cannot be sent")
                } else {
                    format!(
                        "{name}: is not a known field (an entry has source, detail-type, detail, time, resources, idempotency_key and TraceHeader)"
                    )
                },
            ));
        }
        Ok(Envelope {
            source,
            detail_type,
            detail,
            time: time.to_offset(time::UtcOffset::UTC),
            resources,
            idempotency_key,
            trace_header,
            cloudevent: None,
        })
    }

    /// The event as rules see it and targets receive it, in EventBridge's member order.
    pub fn to_event_json(&self, id: EventId, account: &str, region: &str) -> String {
        let quote = |s: &str| serde_json::Value::from(s).to_string();
        let resources = serde_json::Value::from(self.resources.clone()).to_string();
        let cloudevent = match &self.cloudevent {
            Some(attributes) => format!(r#","cloudevent":{attributes}"#),
            None => String::new(),
        };
        format!(
            r#"{{"version":"0","id":"{id}","detail-type":{},"source":{},"account":{},"time":"{}","region":{},"resources":{resources},"detail":{}{cloudevent}}}"#,
            quote(&self.detail_type),
            quote(&self.source),
            quote(account),
            event_time(self.time),
            quote(region),
            self.detail,
        )
    }
}

/// EventBridge's `time` format: UTC to the second, `Z` suffix.
pub fn event_time(time: OffsetDateTime) -> String {
    let t = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn required_string(
    raw: Option<Box<RawValue>>,
    name: &str,
    max: usize,
) -> Result<String, EntryError> {
    let raw = raw.ok_or_else(|| EntryError::invalid(format!("{name}: is required")))?;
    let text: String = serde_json::from_str(raw.get())
        .map_err(|_| EntryError::invalid(format!("{name}: must be a string")))?;
    if text.is_empty() || text.chars().count() > max {
        return Err(EntryError::invalid(format!(
            "{name}: must be 1 to {max} characters"
        )));
    }
    if let Some(why) = unstorable(&text) {
        return Err(EntryError::invalid(format!("{name}: {why}")));
    }
    Ok(text)
}

fn detail_text(raw: &RawValue) -> Result<String, EntryError> {
    let text = raw.get();
    if text.starts_with('{') {
        return Ok(text.to_owned());
    }
    if text.starts_with('"') {
        let inner: String = serde_json::from_str(text)
            .map_err(|_| EntryError::malformed_detail("detail: is not a valid string"))?;
        let parsed: &RawValue = serde_json::from_str(&inner).map_err(|e| {
            EntryError::malformed_detail(format!("detail: the string is not valid JSON ({e})"))
        })?;
        if parsed.get().starts_with('{') {
            return Ok(parsed.get().to_owned());
        }
    }
    Err(EntryError::malformed_detail(
        "detail: must be a JSON object (or a string holding one)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: EnvelopeLimits = EnvelopeLimits {
        max_entry_bytes: 1024,
    };

    fn parse(raw: &str) -> Result<Envelope, EntryError> {
        Envelope::parse(raw, &LIMITS, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn the_event_keeps_the_detail_as_sent_and_eventbridge_member_order() {
        let envelope = parse(
            r#"{"source": "shop", "detail-type": "Order \"Placed\"", "detail": {"n": 1.50, "x": [1e3]},
                "time": "2026-01-02T03:04:05.678+01:00", "resources": ["arn:1"]}"#,
        )
        .unwrap();
        let id = EventId(uuid::Uuid::nil());
        assert_eq!(
            envelope.to_event_json(id, "123456789012", "local"),
            r#"{"version":"0","id":"00000000-0000-0000-0000-000000000000","detail-type":"Order \"Placed\"","source":"shop","account":"123456789012","time":"2026-01-02T02:04:05Z","region":"local","resources":["arn:1"],"detail":{"n": 1.50, "x": [1e3]}}"#
        );
    }

    #[test]
    fn detail_may_be_a_string_holding_an_object() {
        let envelope =
            parse(r#"{"source": "s", "detail-type": "t", "detail": "{\"a\": 1}"}"#).unwrap();
        assert_eq!(envelope.detail, r#"{"a": 1}"#);
        assert_eq!(envelope.time, OffsetDateTime::UNIX_EPOCH);
    }

    #[test]
    fn each_refusal_names_its_field() {
        let cases = [
            (r#"[]"#, "InvalidArgument", "an entry must be a JSON object"),
            (
                r#"{"detail-type": "t", "detail": {}}"#,
                "InvalidArgument",
                "source: is required",
            ),
            (
                r#"{"source": 1, "detail-type": "t", "detail": {}}"#,
                "InvalidArgument",
                "source: must be a string",
            ),
            (
                r#"{"source": "s", "detail-type": "", "detail": {}}"#,
                "InvalidArgument",
                "detail-type: must be 1 to 128 characters",
            ),
            (
                r#"{"source": "s", "detail-type": "t"}"#,
                "InvalidArgument",
                "detail: is required",
            ),
            (
                r#"{"source": "s", "detail-type": "t", "detail": [1]}"#,
                "MalformedDetail",
                "detail: must be a JSON object (or a string holding one)",
            ),
            (
                r#"{"source": "s", "detail-type": "t", "detail": "{nope"}"#,
                "MalformedDetail",
                "detail: the string is not valid JSON",
            ),
            (
                r#"{"source": "s", "detail-type": "t", "detail": {}, "time": "yesterday"}"#,
                "InvalidArgument",
                "time: \"yesterday\" is not an RFC 3339 timestamp",
            ),
            (
                r#"{"source": "s", "detail-type": "t", "detail": {}, "resources": [""]}"#,
                "InvalidArgument",
                "resources/0: must be 1 to 2048 characters",
            ),
            (
                r#"{"source": "s", "detail-type": "t", "detail": {}, "id": "x"}"#,
                "InvalidArgument",
                "id: is assigned by Switchyard",
            ),
            (
                r#"{"source": "s", "detail-type": "t", "detail": {}, "detail_type": "x"}"#,
                "InvalidArgument",
                "detail_type: is not a known field",
            ),
        ];
        for (raw, code, message) in cases {
            let err = parse(raw).unwrap_err();
            assert_eq!(err.code, code, "{raw}");
            assert!(err.message.starts_with(message), "{raw}: {}", err.message);
        }
        let big = format!(
            r#"{{"source": "s", "detail-type": "t", "detail": {{"x": "{}"}}}}"#,
            "a".repeat(1024)
        );
        assert_eq!(parse(&big).unwrap_err().code, "EntryTooLarge");
    }
}
