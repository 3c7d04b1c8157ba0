//! Input transformers checked when a rule is saved: at most one of `input`, `input_path` and
//! `input_transformer`; JSONPath that jsonpath-rust parses; placeholder names and the reserved
//! ones; EventBridge's size limits. Every problem with its JSON pointer. [`super::render`] then
//! only meets transformations that passed here.

use std::collections::BTreeMap;

use serde_json::Value;

use super::InputTransform;
use crate::domain::fields::{FieldError, Fields, pointer, unstorable};
use crate::pattern::Json;

pub const MAX_INPUT_BYTES: usize = 8192;
pub const MAX_INPUT_PATH: usize = 256;
pub const MAX_INPUT_PATHS: usize = 100;
pub const MAX_INPUT_TEMPLATE: usize = 8192;
/// Placeholders an input template may use without defining them, EventBridge's names.
pub const RESERVED_PLACEHOLDERS: [&str; 4] = [
    "aws.events.event",
    "aws.events.event.json",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
];

/// The input of the target whose fields these are (`base` is its pointer).
pub fn parse_input(
    fields: &mut Fields,
    base: &str,
    errors: &mut Vec<FieldError>,
) -> Option<InputTransform> {
    let at = |field: &str| format!("{base}/{field}");
    let given: Vec<&str> = ["input", "input_path", "input_transformer"]
        .into_iter()
        .filter(|f| fields.has(f))
        .collect();
    if given.len() > 1 {
        errors.push(FieldError::new(
            at(given[1]),
            format!(
                "a target takes at most one of input, input_path and input_transformer; found {}",
                given.join(" and ")
            ),
        ));
        for field in given {
            fields.take(field);
        }
        return None;
    }
    if let Some(raw) = fields.take("input") {
        return match Json::parse(raw.get()) {
            Ok(json) => {
                let text = json.to_string();
                if text.len() > MAX_INPUT_BYTES {
                    errors.push(FieldError::new(
                        at("input"),
                        format!("must be at most {MAX_INPUT_BYTES} bytes of JSON"),
                    ));
                    return None;
                }
                Some(InputTransform::Constant(text))
            }
            Err(e) => {
                errors.push(FieldError::new(at("input"), e.message));
                None
            }
        };
    }
    if fields.has("input_path") {
        let path = fields.take_string("input_path", errors)?;
        return check_json_path(&path, MAX_INPUT_PATH, &at("input_path"), errors)
            .then_some(InputTransform::Path(path));
    }
    if let Some(raw) = fields.take("input_transformer") {
        return parse_transformer(raw.get(), &at("input_transformer"), errors);
    }
    Some(InputTransform::Event)
}

fn parse_transformer(
    raw: &str,
    base: &str,
    errors: &mut Vec<FieldError>,
) -> Option<InputTransform> {
    let mut fields = Fields::parse(raw, base, errors)?;
    let at = |field: &str| format!("{base}/{field}");
    let paths_map = match fields.take("input_paths_map") {
        Some(raw) => match serde_json::from_str::<BTreeMap<String, Value>>(raw.get()) {
            Ok(map) if map.len() > MAX_INPUT_PATHS => {
                errors.push(FieldError::new(
                    at("input_paths_map"),
                    format!("at most {MAX_INPUT_PATHS} entries"),
                ));
                None
            }
            Ok(map) => {
                let mut paths = BTreeMap::new();
                let mut ok = true;
                for (name, value) in map {
                    let here = pointer(&at("input_paths_map"), &name);
                    let valid_name = !name.is_empty()
                        && name.len() <= 256
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !valid_name || name.starts_with("aws.") {
                        errors.push(FieldError::new(
                            here.clone(),
                            format!(
                                "{name:?} is not a valid placeholder name: use 1 to 256 letters, digits, `_` or `-`"
                            ),
                        ));
                        ok = false;
                    }
                    match value {
                        Value::String(path) => {
                            ok &= check_json_path(&path, MAX_INPUT_PATH, &here, errors);
                            paths.insert(name, path);
                        }
                        _ => {
                            errors.push(FieldError::new(here, "must be a JSONPath string"));
                            ok = false;
                        }
                    }
                }
                ok.then_some(paths)
            }
            Err(_) => {
                errors.push(FieldError::new(
                    at("input_paths_map"),
                    "must be an object of placeholder names to JSONPath strings",
                ));
                None
            }
        },
        None => Some(BTreeMap::new()),
    };
    let template = match fields.take_string("input_template", errors) {
        Some(template) if template.len() > MAX_INPUT_TEMPLATE => {
            errors.push(FieldError::new(
                at("input_template"),
                format!("must be at most {MAX_INPUT_TEMPLATE} bytes"),
            ));
            None
        }
        Some(template) => Some(template),
        None => {
            if !fields.had("input_template") {
                errors.push(FieldError::new(at("input_template"), "is required"));
            }
            None
        }
    };
    fields.refuse_unknown(errors);
    let (paths_map, template) = (paths_map?, template?);
    let mut ok = true;
    for name in placeholders(&template) {
        if name.starts_with("aws.") && !RESERVED_PLACEHOLDERS.contains(&name) {
            errors.push(FieldError::new(
                at("input_template"),
                format!(
                    "<{name}> is not a known reserved placeholder (known: {})",
                    RESERVED_PLACEHOLDERS.map(|p| format!("<{p}>")).join(", ")
                ),
            ));
            ok = false;
        }
    }
    ok.then_some(InputTransform::Transformer {
        paths_map,
        template,
    })
}

/// Whether `<name>` in a template is a placeholder: a non-empty run of letters, digits, `_`, `-`
/// and `.`. Anything else between angle brackets (`<b>`, `< 5 >`) is text.
pub fn placeholder_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The placeholders of a template.
pub fn placeholders(template: &str) -> impl Iterator<Item = &str> {
    template.split('<').skip(1).filter_map(|rest| {
        let name = &rest[..rest.find('>')?];
        placeholder_name(name).then_some(name)
    })
}

/// Whether `path` is a storable JSONPath of at most `max` characters; each problem is reported at
/// `at`.
pub(crate) fn check_json_path(
    path: &str,
    max: usize,
    at: &str,
    errors: &mut Vec<FieldError>,
) -> bool {
    if path.len() > max {
        errors.push(FieldError::new(
            at,
            format!("must be at most {max} characters"),
        ));
        return false;
    }
    if let Some(why) = unstorable(path) {
        errors.push(FieldError::new(at, why));
        return false;
    }
    match jsonpath_rust::parser::parse_json_path(path) {
        Ok(_) => true,
        Err(e) => {
            let hint = if path.contains('-') {
                " (write a name with `-` in brackets: $['detail-type'])"
            } else {
                ""
            };
            errors.push(FieldError::new(
                at,
                format!("is not a valid JSONPath{hint}: {e}"),
            ));
            false
        }
    }
}
