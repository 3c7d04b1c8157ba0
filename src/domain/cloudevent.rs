//! CloudEvents 1.0 in: a structured-mode event (JSON format) or a binary-mode one (`ce-*`
//! headers and the body as data) becomes an [`Envelope`], by this mapping:
//!
//! | CloudEvents | the event |
//! |---|---|
//! | `type` | `detail-type` |
//! | `source` | `source` |
//! | `time` | `time` (the time of arrival when absent) |
//! | `data`, a JSON object | `detail`, as sent |
//! | `data`, any other JSON value | `detail` = `{"data": <value>}` |
//! | `data_base64` (or a binary body that is not JSON) | `detail` = `{"data_base64": "<base64>"}` |
//! | no data | `detail` = `{}` |
//! | `id`, `specversion`, `subject`, `dataschema`, `datacontenttype`, extensions | members of `cloudevent` |
//!
//! The event keeps EventBridge's members (its own `id` is Switchyard's, as for every event) and
//! gains one, `cloudevent`, that patterns match like any other (`{"cloudevent": {"subject":
//! [{"prefix": "orders/"}]}}`). Hand-written: the rules are the spec's few, and what must be
//! checked (names, types, lengths, NUL) is ours; the `cloudevents-sdk` crate reads and writes
//! the other side in the tests.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::envelope::{MAX_DETAIL_TYPE, MAX_SOURCE};
use super::fields::unstorable;
use super::{EntryError, Envelope, EnvelopeLimits};

/// The content type of one structured-mode event.
pub const STRUCTURED: &str = "application/cloudevents+json";
/// The content type of a batch of structured-mode events.
pub const BATCH: &str = "application/cloudevents-batch+json";

/// The longest `id`, `subject`, `dataschema`, `datacontenttype` or extension value accepted.
const MAX_ATTRIBUTE: usize = 2048;
/// The spec asks extension names to be at most 20 characters; more are refused here.
const MAX_EXTENSION_NAME: usize = 20;
/// Extensions one event may carry.
const MAX_EXTENSIONS: usize = 32;

/// The attributes every event has (context attributes the spec names); all others are
/// extensions.
const KNOWN: [&str; 9] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
];

/// A binary-mode event as it arrived: its `ce-` headers (names without the prefix,
/// lowercase; values as sent), its `Content-Type`, and its body.
#[derive(Debug)]
pub struct BinaryEvent {
    pub attributes: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

fn invalid(message: impl Into<String>) -> EntryError {
    EntryError::invalid(message)
}

/// One structured-mode event (its JSON text).
pub fn parse_structured(
    raw: &str,
    limits: &EnvelopeLimits,
    now: OffsetDateTime,
) -> Result<Envelope, EntryError> {
    too_large(raw.len(), limits)?;
    let mut members: BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(raw).map_err(|_| invalid("a CloudEvent must be a JSON object"))?;
    // The JSON format: an attribute whose value is null is absent.
    members.retain(|_, v| v.get() != "null");
    let data = members.remove("data");
    let data_base64 = members.remove("data_base64");
    let mut attributes = BTreeMap::new();
    for (name, value) in members {
        let value: Value = serde_json::from_str(value.get())
            .map_err(|_| invalid(format!("{name}: is not valid JSON")))?;
        attributes.insert(name, value);
    }
    let detail = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "data, data_base64: a CloudEvent carries one of them, not both",
            ));
        }
        (Some(data), None) if data.get().starts_with('{') => data.get().to_owned(),
        (Some(data), None) => format!("{{\"data\":{}}}", data.get()),
        (None, Some(encoded)) => {
            let text: String = serde_json::from_str(encoded.get())
                .map_err(|_| invalid("data_base64: must be a string"))?;
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|_| invalid("data_base64: is not base64"))?;
            format!("{{\"data_base64\":{}}}", Value::from(text))
        }
        (None, None) => "{}".to_owned(),
    };
    envelope(attributes, detail, now)
}

/// One binary-mode event.
pub fn parse_binary(
    event: BinaryEvent,
    limits: &EnvelopeLimits,
    now: OffsetDateTime,
) -> Result<Envelope, EntryError> {
    too_large(event.body.len(), limits)?;
    let mut attributes = BTreeMap::new();
    for (name, value) in event.attributes {
        // The HTTP binding percent-encodes header values.
        let decoded = percent_decode(&value)
            .ok_or_else(|| invalid(format!("ce-{name}: is not percent-encoded UTF-8")))?;
        if attributes
            .insert(name.clone(), Value::from(decoded))
            .is_some()
        {
            return Err(invalid(format!("ce-{name}: is sent twice")));
        }
    }
    for reserved in ["data", "data_base64", "datacontenttype"] {
        if attributes.contains_key(reserved) {
            return Err(invalid(format!(
                "ce-{reserved}: is not an attribute header (the body is the data, `Content-Type` its type)"
            )));
        }
    }
    let json = event.content_type.as_deref().is_none_or(is_json);
    if let Some(content_type) = event.content_type {
        attributes.insert("datacontenttype".to_owned(), Value::from(content_type));
    }
    let detail = if event.body.is_empty() {
        "{}".to_owned()
    } else if json {
        let text = std::str::from_utf8(&event.body)
            .map_err(|_| invalid("data: a JSON body must be UTF-8"))?;
        let data: &RawValue = serde_json::from_str(text).map_err(|e| {
            EntryError::malformed_detail(format!("data: the body is not valid JSON ({e})"))
        })?;
        if data.get().starts_with('{') {
            data.get().to_owned()
        } else {
            format!("{{\"data\":{}}}", data.get())
        }
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&event.body);
        format!("{{\"data_base64\":\"{encoded}\"}}")
    };
    envelope(attributes, detail, now)
}

/// A `Content-Type`'s media type without its parameters, lowercase (`application/json` of
/// `Application/JSON; charset=utf-8`).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a media type is JSON (`application/json` or `…+json`), as the spec reads it.
pub fn is_json(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

fn too_large(bytes: usize, limits: &EnvelopeLimits) -> Result<(), EntryError> {
    if bytes > limits.max_entry_bytes {
        return Err(EntryError::new(
            "EntryTooLarge",
            format!(
                "the CloudEvent is {bytes} bytes; the limit is {} bytes",
                limits.max_entry_bytes
            ),
        ));
    }
    Ok(())
}

/// The envelope from the context attributes and the detail's text.
fn envelope(
    mut attributes: BTreeMap<String, Value>,
    detail: String,
    now: OffsetDateTime,
) -> Result<Envelope, EntryError> {
    let mut take_string = |name: &str, required: bool| -> Result<Option<String>, EntryError> {
        match attributes.remove(name) {
            None if required => Err(invalid(format!("{name}: is required"))),
            None => Ok(None),
            Some(Value::String(text)) if text.is_empty() => {
                Err(invalid(format!("{name}: must not be empty")))
            }
            Some(Value::String(text)) => match unstorable(&text) {
                Some(why) => Err(invalid(format!("{name}: {why}"))),
                None => Ok(Some(text)),
            },
            Some(_) => Err(invalid(format!("{name}: must be a string"))),
        }
    };
    let specversion = take_string("specversion", true)?.unwrap_or_default();
    if specversion != "1.0" {
        return Err(invalid(format!(
            "specversion: {specversion:?} is not supported (only \"1.0\")"
        )));
    }
    let id = take_string("id", true)?.unwrap_or_default();
    let source = take_string("source", true)?.unwrap_or_default();
    let event_type = take_string("type", true)?.unwrap_or_default();
    let time = take_string("time", false)?;
    let mut context = serde_json::Map::new();
    context.insert("specversion".into(), Value::from(specversion));
    context.insert("id".into(), Value::from(id));
    for name in ["subject", "dataschema", "datacontenttype"] {
        if let Some(value) = take_string(name, false)? {
            context.insert(name.into(), Value::from(value));
        }
    }
    if source.chars().count() > MAX_SOURCE {
        return Err(invalid(format!(
            "source: must be at most {MAX_SOURCE} characters"
        )));
    }
    if event_type.chars().count() > MAX_DETAIL_TYPE {
        return Err(invalid(format!(
            "type: must be at most {MAX_DETAIL_TYPE} characters (it becomes the detail-type)"
        )));
    }
    let time = match time {
        Some(text) => OffsetDateTime::parse(&text, &Rfc3339)
            .map_err(|e| invalid(format!("time: {text:?} is not an RFC 3339 timestamp ({e})")))?,
        None => now,
    };
    if attributes.len() > MAX_EXTENSIONS {
        return Err(invalid(format!(
            "at most {MAX_EXTENSIONS} extension attributes; found {}",
            attributes.len()
        )));
    }
    for (name, value) in attributes {
        debug_assert!(!KNOWN.contains(&name.as_str()));
        if name.is_empty()
            || name.len() > MAX_EXTENSION_NAME
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(invalid(format!(
                "{name}: is not an attribute name (lowercase letters and digits, at most {MAX_EXTENSION_NAME})"
            )));
        }
        match &value {
            Value::String(_) | Value::Bool(_) => {}
            Value::Number(n) if n.is_i64() => {}
            _ => {
                return Err(invalid(format!(
                    "{name}: an extension is a string, an integer or a boolean"
                )));
            }
        }
        context.insert(name, value);
    }
    for (name, value) in &context {
        if let Value::String(text) = value
            && text.chars().count() > MAX_ATTRIBUTE
        {
            return Err(invalid(format!(
                "{name}: must be at most {MAX_ATTRIBUTE} characters"
            )));
        }
    }
    Ok(Envelope {
        source,
        detail_type: event_type,
        detail,
        time: time.to_offset(time::UtcOffset::UTC),
        resources: Vec::new(),
        idempotency_key: None,
        trace_header: None,
        cloudevent: Some(Value::Object(context).to_string()),
    })
}

/// `%XX` escapes decoded; `None` when an escape is broken or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: EnvelopeLimits = EnvelopeLimits {
        max_entry_bytes: 4096,
    };

    fn structured(raw: &str) -> Result<Envelope, EntryError> {
        parse_structured(raw, &LIMITS, OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn the_mapping_keeps_the_data_and_every_attribute() {
        let envelope = structured(
            r#"{"specversion": "1.0", "id": "A-1", "source": "/shop", "type": "order.placed",
                "subject": "orders/7", "time": "2026-01-02T03:04:05Z", "partitionkey": "7",
                "sequence": 3, "datacontenttype": "application/json", "data": {"n": 1.50}}"#,
        )
        .unwrap();
        assert_eq!(envelope.source, "/shop");
        assert_eq!(envelope.detail_type, "order.placed");
        assert_eq!(envelope.detail, r#"{"n": 1.50}"#);
        assert_eq!(
            envelope.cloudevent.as_deref(),
            Some(
                r#"{"datacontenttype":"application/json","id":"A-1","partitionkey":"7","sequence":3,"specversion":"1.0","subject":"orders/7"}"#
            )
        );
        let id = super::super::EventId(uuid::Uuid::nil());
        let json = envelope.to_event_json(id, "000000000000", "local");
        assert!(
            json.ends_with(r#""detail":{"n": 1.50},"cloudevent":{"datacontenttype":"application/json","id":"A-1","partitionkey":"7","sequence":3,"specversion":"1.0","subject":"orders/7"}}"#),
            "{json}"
        );
    }

    #[test]
    fn data_that_is_not_an_object_is_wrapped() {
        let text =
            structured(r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":"hi"}"#)
                .unwrap();
        assert_eq!(text.detail, r#"{"data":"hi"}"#);
        let none = structured(r#"{"specversion":"1.0","id":"1","source":"s","type":"t"}"#).unwrap();
        assert_eq!(none.detail, "{}");
        let b64 = structured(
            r#"{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"aGk="}"#,
        )
        .unwrap();
        assert_eq!(b64.detail, r#"{"data_base64":"aGk="}"#);
    }

    #[test]
    fn what_breaks_the_spec_is_refused_by_name() {
        let base = r#""id":"1","source":"s","type":"t""#;
        let cases = [
            (format!(r#"{{{base}}}"#), "specversion: is required"),
            (
                format!(r#"{{"specversion":"0.3",{base}}}"#),
                "specversion: \"0.3\" is not supported",
            ),
            (
                r#"{"specversion":"1.0","source":"s","type":"t"}"#.to_owned(),
                "id: is required",
            ),
            (
                r#"{"specversion":"1.0","id":"","source":"s","type":"t"}"#.to_owned(),
                "id: must not be empty",
            ),
            (
                format!(r#"{{"specversion":"1.0",{base},"time":"now"}}"#),
                "time: \"now\" is not an RFC 3339 timestamp",
            ),
            (
                format!(r#"{{"specversion":"1.0",{base},"Bad-Name":"x"}}"#),
                "Bad-Name: is not an attribute name",
            ),
            (
                format!(r#"{{"specversion":"1.0",{base},"ext":{{"a":1}}}}"#),
                "ext: an extension is a string, an integer or a boolean",
            ),
            (
                format!(r#"{{"specversion":"1.0",{base},"data":1,"data_base64":"aGk="}}"#),
                "data, data_base64: a CloudEvent carries one of them, not both",
            ),
            (
                format!(r#"{{"specversion":"1.0",{base},"subject":"a\u0000b"}}"#),
                "subject: must not contain a NUL character",
            ),
            (
                format!(r#"{{"specversion":"1.0",{base},"data_base64":"***"}}"#),
                "data_base64: is not base64",
            ),
        ];
        for (raw, expected) in cases {
            let error = structured(&raw).unwrap_err();
            assert!(
                error.message.starts_with(expected),
                "{raw}: {}",
                error.message
            );
        }
    }

    #[test]
    fn binary_mode_reads_headers_and_the_body() {
        let event = BinaryEvent {
            attributes: vec![
                ("specversion".into(), "1.0".into()),
                ("id".into(), "b-1".into()),
                ("source".into(), "/sensors/7".into()),
                ("type".into(), "reading".into()),
                ("subject".into(), "caf%C3%A9".into()),
            ],
            content_type: Some("application/json; charset=utf-8".into()),
            body: br#"{"celsius": 21.5}"#.to_vec(),
        };
        let envelope = parse_binary(event, &LIMITS, OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(envelope.detail, r#"{"celsius": 21.5}"#);
        assert!(
            envelope
                .cloudevent
                .as_deref()
                .unwrap()
                .contains(r#""subject":"café""#)
        );
        let opaque = BinaryEvent {
            attributes: vec![
                ("specversion".into(), "1.0".into()),
                ("id".into(), "b-2".into()),
                ("source".into(), "s".into()),
                ("type".into(), "t".into()),
            ],
            content_type: Some("application/octet-stream".into()),
            body: vec![0, 1, 2],
        };
        let envelope = parse_binary(opaque, &LIMITS, OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(envelope.detail, r#"{"data_base64":"AAEC"}"#);
    }
}
