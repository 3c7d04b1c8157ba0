//! Input transformations: what a target receives instead of the whole event. Pure: no I/O.
//!
//! JSONPath is jsonpath-rust's (RFC 9535). EventBridge's rules for templates: a placeholder inside
//! a JSON string literal of the template (`"id: <id>"`) is replaced by the value's text, escaped
//! for that string; a placeholder outside strings (`{"id": <id>}`) by the value as JSON (strings
//! quoted). A path that selects nothing gives `null` (an empty string inside a string literal).
//! The reserved placeholders are `<aws.events.event>` and `<aws.events.event.json>` (the whole
//! event), `<aws.events.rule-name>` and `<aws.events.event.ingestion-time>` (RFC 3339).
//!
//! Numbers inside values selected by a path are re-serialised by serde_json (`1.50` becomes
//! `1.5`); the whole event and constants are sent byte for byte.

use std::collections::BTreeMap;

use jsonpath_rust::parser::model::JpQuery;
use serde_json::Value;

pub mod validate;

/// What a target receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputTransform {
    /// The whole event envelope.
    Event,
    /// A constant JSON document (compact text, numbers as written).
    Constant(String),
    /// The part of the event a JSONPath selects.
    Path(String),
    /// Values selected by JSONPath, placed into a template.
    Transformer {
        paths_map: BTreeMap<String, String>,
        template: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("the event is not valid JSON: {0}")]
    Event(String),
    #[error("JSONPath {path:?} is not valid: {reason}")]
    Path { path: String, reason: String },
    #[error("input_path {0:?} selects nothing in the event")]
    NothingSelected(String),
}

/// What a transformation needs besides the event text.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub rule_name: &'a str,
    /// RFC 3339.
    pub ingestion_time: &'a str,
}

/// The payload for a target: the bytes to send.
pub fn render(
    input: &InputTransform,
    event: &str,
    context: Context<'_>,
) -> Result<String, TransformError> {
    match input {
        InputTransform::Event => Ok(event.to_owned()),
        InputTransform::Constant(text) => Ok(text.clone()),
        InputTransform::Path(path) => {
            let value = parse_event(event)?;
            match select(path, &value)? {
                Some(selected) => Ok(selected.to_string()),
                None => Err(TransformError::NothingSelected(path.clone())),
            }
        }
        InputTransform::Transformer {
            paths_map,
            template,
        } => {
            let value = parse_event(event)?;
            let mut values: BTreeMap<&str, Value> = BTreeMap::new();
            for (name, path) in paths_map {
                values.insert(name, select(path, &value)?.unwrap_or(Value::Null));
            }
            Ok(fill(template, &|name| match name {
                "aws.events.event" | "aws.events.event.json" => Some(Slot::Json(event)),
                "aws.events.rule-name" => Some(Slot::Value(Value::from(context.rule_name))),
                "aws.events.event.ingestion-time" => {
                    Some(Slot::Value(Value::from(context.ingestion_time)))
                }
                other => values.get(other).cloned().map(Slot::Value),
            }))
        }
    }
}

fn parse_event(event: &str) -> Result<Value, TransformError> {
    serde_json::from_str(event).map_err(|e| TransformError::Event(e.to_string()))
}

/// Whether a path names one place (no wildcard, descendant, filter, slice or union).
fn is_definite(path: &str) -> bool {
    !path.contains(['*', '?', ':', ',']) && !path.contains("..")
}

fn compile(path: &str) -> Result<JpQuery, TransformError> {
    jsonpath_rust::parser::parse_json_path(path).map_err(|e| TransformError::Path {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The selected value: one value for a definite path, an array for the others; `None` if nothing.
fn select(path: &str, event: &Value) -> Result<Option<Value>, TransformError> {
    let query = compile(path)?;
    let found =
        jsonpath_rust::query::js_path_process(&query, event).map_err(|e| TransformError::Path {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let mut values: Vec<Value> = found.into_iter().map(|r| r.val().clone()).collect();
    Ok(match values.len() {
        0 => None,
        1 if is_definite(path) => values.pop(),
        _ => Some(Value::Array(values)),
    })
}

/// The longest group key stored as it is; a longer one (or one holding a NUL character, which
/// Postgres cannot store) is stored as `sha256:` and the hex digest of its text. Keys otherwise
/// start with `"`, a digit, `-`, `[`, `{`, `t`, `f` or `n`, or are plain strings, so a digest
/// can only share its text with a key of the same text: deliveries of two events may then wait
/// for each other, never overtake each other.
pub const MAX_GROUP_KEY: usize = 256;

/// A target's compiled `ordering.group_by`: what names an event's delivery group.
#[derive(Debug, Clone)]
pub struct GroupBy {
    path: String,
    query: std::sync::Arc<JpQuery>,
}

impl GroupBy {
    pub fn compile(path: &str) -> Result<GroupBy, TransformError> {
        Ok(GroupBy {
            path: path.to_owned(),
            query: std::sync::Arc::new(compile(path)?),
        })
    }

    /// The event's group key: a selected string as it is, any other selection as JSON text (an
    /// array when the path selects several values), the empty key when it selects nothing.
    pub fn key(&self, event: &Value) -> String {
        let found = jsonpath_rust::query::js_path_process(&self.query, event).unwrap_or_default();
        let mut values: Vec<&Value> = found.into_iter().map(|r| r.val()).collect();
        let key = match values.len() {
            0 => String::new(),
            1 if is_definite(&self.path) => match values.pop() {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            },
            _ => Value::Array(values.into_iter().cloned().collect()).to_string(),
        };
        if key.len() <= MAX_GROUP_KEY && !key.contains('\0') {
            return key;
        }
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

enum Slot<'a> {
    /// JSON text to insert as is.
    Json(&'a str),
    Value(Value),
}

/// Replaces `<name>` placeholders for which `lookup` has a value, minding string literals.
fn fill<'e>(template: &str, lookup: &dyn Fn(&str) -> Option<Slot<'e>>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<'
            && let Some(end) = rest.find('>')
        {
            let name = &rest[1..end];
            if let Some(slot) = validate::placeholder_name(name)
                .then(|| lookup(name))
                .flatten()
            {
                let json = match &slot {
                    Slot::Json(text) => (*text).to_owned(),
                    Slot::Value(value) => value.to_string(),
                };
                if in_string {
                    let text = match slot {
                        Slot::Value(Value::String(s)) => s,
                        Slot::Value(Value::Null) => String::new(),
                        _ => json,
                    };
                    let quoted = Value::String(text).to_string();
                    out.push_str(&quoted[1..quoted.len() - 1]);
                } else {
                    out.push_str(&json);
                }
                rest = &rest[end + 1..];
                escaped = false;
                continue;
            }
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"e1","detail-type":"Order","detail":{"order":{"id":"o-7","total":120,"lines":[{"sku":"a"},{"sku":"b"}]},"note":"say \"hi\""}}"#;
    const CONTEXT: Context<'static> = Context {
        rule_name: "big-orders",
        ingestion_time: "2026-01-02T03:04:05Z",
    };

    fn transformer(paths: &[(&str, &str)], template: &str) -> InputTransform {
        InputTransform::Transformer {
            paths_map: paths
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            template: template.to_owned(),
        }
    }

    #[test]
    fn the_whole_event_and_constants_are_sent_byte_for_byte() {
        assert_eq!(
            render(&InputTransform::Event, EVENT, CONTEXT).unwrap(),
            EVENT
        );
        let constant = InputTransform::Constant(r#"{"n":1.50}"#.into());
        assert_eq!(render(&constant, EVENT, CONTEXT).unwrap(), r#"{"n":1.50}"#);
    }

    #[test]
    fn input_path_selects_one_value_or_a_list() {
        let path = |p: &str| render(&InputTransform::Path(p.into()), EVENT, CONTEXT);
        assert_eq!(path("$.detail.order.id").unwrap(), r#""o-7""#);
        assert_eq!(path("$['detail-type']").unwrap(), r#""Order""#);
        assert_eq!(path("$.detail.order.lines[*].sku").unwrap(), r#"["a","b"]"#);
        assert_eq!(
            path("$.detail.nope").unwrap_err(),
            TransformError::NothingSelected("$.detail.nope".into())
        );
    }

    #[test]
    fn templates_insert_json_outside_strings_and_text_inside() {
        let t = transformer(
            &[
                ("id", "$.detail.order.id"),
                ("total", "$.detail.order.total"),
                ("note", "$.detail.note"),
                ("missing", "$.x"),
            ],
            r#"{"order": <id>, "total": <total>, "text": "order <id> of <total>: <note>", "m": <missing>, "ms": "<missing>", "rule": "<aws.events.rule-name>", "at": <aws.events.event.ingestion-time>, "literal": "<b>"}"#,
        );
        let out = render(&t, EVENT, CONTEXT).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(
            value,
            serde_json::json!({"order": "o-7", "total": 120, "text": "order o-7 of 120: say \"hi\"", "m": null, "ms": "", "rule": "big-orders", "at": "2026-01-02T03:04:05Z", "literal": "<b>"})
        );
    }

    #[test]
    fn the_whole_event_placeholder_embeds_the_event() {
        let t = transformer(
            &[],
            r#"{"wrapped": <aws.events.event.json>, "as_text": "<aws.events.event>"}"#,
        );
        let value: Value = serde_json::from_str(&render(&t, EVENT, CONTEXT).unwrap()).unwrap();
        assert_eq!(value["wrapped"]["detail"]["order"]["id"], "o-7");
        assert_eq!(value["as_text"], EVENT);
    }

    #[test]
    fn a_plain_text_template_stays_text() {
        let t = transformer(&[("id", "$.detail.order.id")], "Order <id> was placed");
        assert_eq!(
            render(&t, EVENT, CONTEXT).unwrap(),
            "Order \"o-7\" was placed"
        );
        let t = transformer(&[("id", "$.detail.order.id")], "\"Order <id> was placed\"");
        assert_eq!(
            render(&t, EVENT, CONTEXT).unwrap(),
            "\"Order o-7 was placed\""
        );
    }

    #[test]
    fn a_group_key_is_a_string_as_it_is_else_json_and_hashed_when_unstorable() {
        let event = serde_json::json!({"detail": {"id": "o-1", "n": 1.5, "tags": ["a", "b"], "nul": "a\u{0}b", "long": "x".repeat(300)}});
        let key = |path: &str| GroupBy::compile(path).unwrap().key(&event);
        assert_eq!(key("$.detail.id"), "o-1");
        assert_eq!(key("$.detail.n"), "1.5");
        assert_eq!(key("$.detail.tags"), r#"["a","b"]"#);
        assert_eq!(
            key("$.detail.tags[*]"),
            r#"["a","b"]"#,
            "several values: their array"
        );
        assert_eq!(
            key("$.detail.missing"),
            "",
            "nothing selected: the empty key"
        );
        for unstorable in [key("$.detail.nul"), key("$.detail.long")] {
            assert!(
                unstorable.starts_with("sha256:") && unstorable.len() == 71,
                "{unstorable}"
            );
        }
        assert_ne!(key("$.detail.nul"), key("$.detail.long"));
        assert!(GroupBy::compile("$.detail-type").is_err());
    }
}
