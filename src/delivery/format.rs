//! What a delivery looks like on the wire, by the target's [`Format`]:
//!
//! - `eventbridge`: the payload (the event, or what the input transformation renders) as the
//!   body, `Content-Type: application/json`.
//! - `cloudevents-structured`: a CloudEvent in the JSON format (`application/cloudevents+json`).
//! - `cloudevents-binary`: the data as the body, the attributes in `ce-` headers
//!   (percent-encoded as the HTTP binding asks).
//!
//! The CloudEvent is made from the stored event: `specversion` 1.0, `id` the producer's
//! CloudEvent id when the event came as one (else the event's id), `source`, `type` (the
//! detail-type), `time`, and every other attribute the event arrived with (`subject`,
//! `dataschema`, extensions; `crate::domain::cloudevent` has the mapping in). Its data is the
//! event's `detail` as stored, or, when the target transforms its input, what the
//! transformation renders (JSON, else text).

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::domain::Format;

/// The body and the headers that say what it is.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Wire {
    pub body: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum FormatError {
    #[error("the stored event is not a JSON object: {0}")]
    Event(serde_json::Error),
    #[error("the stored event has no {0}")]
    Missing(&'static str),
}

/// The wire form of `payload` (already rendered from `event`, the stored event's text);
/// `transformed`: the target's input transformation made the payload (it is not the event).
pub(super) fn wire(
    format: Format,
    event: &str,
    payload: String,
    transformed: bool,
) -> Result<Wire, FormatError> {
    if format == Format::EventBridge {
        return Ok(Wire {
            body: payload,
            headers: vec![("content-type".into(), "application/json".into())],
        });
    }
    let members: BTreeMap<&str, &RawValue> =
        serde_json::from_str(event).map_err(FormatError::Event)?;
    let string = |name: &'static str| -> Result<Value, FormatError> {
        let raw = members.get(name).ok_or(FormatError::Missing(name))?;
        serde_json::from_str::<String>(raw.get())
            .map(Value::from)
            .map_err(|_| FormatError::Missing(name))
    };
    let mut attributes: Map<String, Value> = match members.get("cloudevent") {
        Some(raw) => serde_json::from_str(raw.get()).map_err(FormatError::Event)?,
        None => Map::new(),
    };
    // The data sent is JSON (or the transformation's text): its own type says so below.
    attributes.remove("datacontenttype");
    attributes.insert("specversion".into(), Value::from("1.0"));
    if !attributes.contains_key("id") {
        attributes.insert("id".into(), string("id")?);
    }
    attributes.insert("source".into(), string("source")?);
    attributes.insert("type".into(), string("detail-type")?);
    attributes.insert("time".into(), string("time")?);
    // The data as JSON text, and whether it is JSON.
    let (data, json) = if transformed {
        let json = serde_json::from_str::<&RawValue>(&payload).is_ok();
        (payload, json)
    } else {
        let detail = members
            .get("detail")
            .ok_or(FormatError::Missing("detail"))?;
        (detail.get().to_owned(), true)
    };
    let content_type = if json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    match format {
        Format::CloudEventsStructured => {
            attributes.insert("datacontenttype".into(), Value::from(content_type));
            // The attributes, then `data` as the detail's own text (numbers as stored).
            let mut body = Value::Object(attributes).to_string();
            body.pop();
            body.push_str(",\"data\":");
            if json {
                body.push_str(&data);
            } else {
                body.push_str(&Value::from(data).to_string());
            }
            body.push('}');
            Ok(Wire {
                body,
                headers: vec![(
                    "content-type".into(),
                    "application/cloudevents+json; charset=utf-8".into(),
                )],
            })
        }
        Format::CloudEventsBinary | Format::EventBridge => {
            let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
            for (name, value) in attributes {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                headers.push((format!("ce-{name}"), percent_encode(&text)));
            }
            Ok(Wire {
                body: data,
                headers,
            })
        }
    }
}

/// The HTTP binding's header encoding: space, `"`, `%` and anything outside printable ASCII
/// as `%XX` of its UTF-8 bytes.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'"' && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"version":"0","id":"01a2","detail-type":"order.placed","source":"/shop","account":"0","time":"2026-01-02T03:04:05Z","region":"local","resources":[],"detail":{"n": 1.50},"cloudevent":{"id":"A-1","partitionkey":"7","sequence":3,"specversion":"1.0","subject":"a b","datacontenttype":"text/xml"}}"#;

    fn header<'a>(wire: &'a Wire, name: &str) -> Option<&'a str> {
        wire.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn structured_keeps_the_producers_attributes_and_the_detail_as_stored() {
        let wire = wire(Format::CloudEventsStructured, EVENT, EVENT.into(), false).unwrap();
        assert_eq!(
            wire.body,
            r#"{"datacontenttype":"application/json","id":"A-1","partitionkey":"7","sequence":3,"source":"/shop","specversion":"1.0","subject":"a b","time":"2026-01-02T03:04:05Z","type":"order.placed","data":{"n": 1.50}}"#
        );
        assert_eq!(
            header(&wire, "content-type"),
            Some("application/cloudevents+json; charset=utf-8")
        );
    }

    #[test]
    fn binary_sends_the_data_with_percent_encoded_headers() {
        let wire = wire(Format::CloudEventsBinary, EVENT, EVENT.into(), false).unwrap();
        assert_eq!(wire.body, r#"{"n": 1.50}"#);
        assert_eq!(header(&wire, "ce-subject"), Some("a%20b"));
        assert_eq!(header(&wire, "ce-sequence"), Some("3"));
        assert_eq!(header(&wire, "ce-type"), Some("order.placed"));
        assert_eq!(header(&wire, "content-type"), Some("application/json"));
    }

    #[test]
    fn an_eventbridge_event_gets_its_own_id_and_a_transformed_text_is_text() {
        let plain = r#"{"version":"0","id":"01a2","detail-type":"t","source":"s","account":"0","time":"2026-01-02T03:04:05Z","region":"local","resources":[],"detail":{}}"#;
        let wire = wire(
            Format::CloudEventsStructured,
            plain,
            "order 7 paid".into(),
            true,
        )
        .unwrap();
        assert_eq!(
            wire.body,
            r#"{"datacontenttype":"text/plain; charset=utf-8","id":"01a2","source":"s","specversion":"1.0","time":"2026-01-02T03:04:05Z","type":"t","data":"order 7 paid"}"#
        );
    }
}
