//! Whether a new schema version is compatible with earlier ones, as Confluent's Schema Registry
//! defines the modes: `BACKWARD` — the new version accepts every detail the latest one accepted
//! (consumers validating with the new schema read what producers wrote before); `FORWARD` — the
//! latest accepts every detail the new one accepts; `FULL` — both; `_TRANSITIVE` — against every
//! earlier version; `NONE` — no check.
//!
//! Both directions are one question, [`differences`]: is every value valid under the *writer*
//! schema valid under the *reader*? It is answered structurally, keyword by keyword, and a
//! difference that may let the reader refuse a value the writer allowed is reported with
//! Confluent's name for it where it has one (`TYPE_CHANGED`, `REQUIRED_ATTRIBUTE_ADDED`,
//! `PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL`, `ENUM_ARRAY_NARROWED`, …). As in Confluent's registry,
//! an open content model (no `additionalProperties: false`) is taken at its word: a writer that
//! allowed any extra property may have written one, so a reader that declares a new property
//! with a type cannot be proven to accept it (close the model, or see what the events say: the
//! registry also validates stored events against the new version).
//!
//! Checked: `type`, `enum`/`const`, `required`, `properties`, `additionalProperties`,
//! `min`/`maxProperties`, `items`, `min`/`maxItems`, `uniqueItems`, `min`/`maxLength`, `pattern`,
//! `format`, `minimum`/`maximum` and their exclusive forms, `multipleOf`. Annotations (`title`,
//! `description`, `default`, `examples`, …) never matter. Any other assertion or applicator
//! (`anyOf`, `oneOf`, `allOf`, `not`, `if`, `$ref`, `patternProperties`, …) is compatible when it
//! is the same in both schemas and otherwise reported as `KEYWORD_NOT_CHECKED`: the registry
//! cannot prove the change safe, and says so rather than guess.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use super::Compatibility;
use crate::domain::fields::pointer as join;

/// One way the reader may refuse a value the writer allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Confluent's name for the difference where it has one.
    pub kind: &'static str,
    /// Where, in the schema (RFC 6901 pointer).
    pub pointer: String,
    pub message: String,
}

/// Why a new version is not compatible with an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The earlier version it was compared with.
    pub version: i32,
    /// `backward`: the new version may refuse details the earlier one accepted; `forward`: the
    /// earlier version may refuse details the new one accepts.
    pub direction: &'static str,
    #[serde(flatten)]
    pub difference: Difference,
}

/// The reasons `new` is incompatible under `mode` with the `earlier` versions (oldest first,
/// each with its number); empty when compatible.
pub fn check(mode: Compatibility, new: &Value, earlier: &[(i32, &Value)]) -> Vec<Reason> {
    let compared = match (mode.transitive(), earlier.split_last()) {
        (_, None) => return Vec::new(),
        (true, Some(_)) => earlier,
        (false, Some((last, _))) => std::slice::from_ref(last),
    };
    let mut reasons = Vec::new();
    for &(version, old) in compared {
        if mode.backward() {
            reasons.extend(differences(new, old).into_iter().map(|difference| Reason {
                version,
                direction: "backward",
                difference,
            }));
        }
        if mode.forward() {
            reasons.extend(differences(old, new).into_iter().map(|difference| Reason {
                version,
                direction: "forward",
                difference,
            }));
        }
    }
    reasons
}

/// The differences that may let `reader` refuse a value `writer` accepts; empty when every
/// value valid under `writer` is valid under `reader`.
pub fn differences(reader: &Value, writer: &Value) -> Vec<Difference> {
    let mut found = Vec::new();
    covers(reader, writer, "", &mut found);
    found
}

/// Keywords that never change which values are valid.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$comment",
    "$vocabulary",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Keywords compared structurally below.
const CHECKED: &[&str] = &[
    "type",
    "enum",
    "const",
    "required",
    "properties",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

pub(super) const NULL: u8 = 1;
pub(super) const BOOLEAN: u8 = 2;
pub(super) const OBJECT: u8 = 4;
pub(super) const ARRAY: u8 = 8;
/// Numbers with a fraction.
pub(super) const FRACTION: u8 = 16;
pub(super) const INTEGER: u8 = 32;
pub(super) const STRING: u8 = 64;
pub(super) const ANY: u8 = 127;
pub(super) const NUMBERS: u8 = FRACTION | INTEGER;

fn type_bits(name: &str) -> u8 {
    match name {
        "null" => NULL,
        "boolean" => BOOLEAN,
        "object" => OBJECT,
        "array" => ARRAY,
        "number" => NUMBERS,
        "integer" => INTEGER,
        "string" => STRING,
        _ => ANY,
    }
}

pub(super) fn type_names(bits: u8) -> String {
    let mut names = Vec::new();
    for (bit, name) in [
        (NULL, "null"),
        (BOOLEAN, "boolean"),
        (OBJECT, "object"),
        (ARRAY, "array"),
        (STRING, "string"),
    ] {
        if bits & bit != 0 {
            names.push(name);
        }
    }
    match bits & NUMBERS {
        NUMBERS => names.push("number"),
        INTEGER => names.push("integer"),
        FRACTION => names.push("number with a fraction"),
        _ => {}
    }
    names.join(" or ")
}

/// The types a schema admits by its `type` keyword.
pub(super) fn declared_types(schema: &Map<String, Value>) -> u8 {
    match schema.get("type") {
        Some(Value::String(name)) => type_bits(name),
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .fold(0, |bits, name| bits | type_bits(name)),
        _ => ANY,
    }
}

/// The type of one value.
pub(super) fn value_type(value: &Value) -> u8 {
    match value {
        Value::Null => NULL,
        Value::Bool(_) => BOOLEAN,
        Value::Object(_) => OBJECT,
        Value::Array(_) => ARRAY,
        Value::String(_) => STRING,
        Value::Number(n) if n.is_i64() || n.is_u64() => INTEGER,
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => INTEGER,
        Value::Number(_) => FRACTION,
    }
}

/// Whether a schema accepts every value (`true`, or an object of annotations only).
fn accepts_all(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(members) => members.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

fn refuses_all(schema: &Value) -> bool {
    matches!(schema, Value::Bool(false))
}

fn push(found: &mut Vec<Difference>, kind: &'static str, pointer: &str, message: String) {
    found.push(Difference {
        kind,
        pointer: pointer.to_owned(),
        message,
    });
}

fn covers(reader: &Value, writer: &Value, at: &str, found: &mut Vec<Difference>) {
    if reader == writer || accepts_all(reader) || refuses_all(writer) {
        return;
    }
    if refuses_all(reader) {
        return push(
            found,
            "SCHEMA_REMOVED",
            at,
            "refuses every value; the writer allowed some".into(),
        );
    }
    let empty = Map::new();
    let r = reader.as_object().unwrap_or(&empty);
    let w = writer.as_object().unwrap_or(&empty);

    // Keywords compared only for equality.
    for (keyword, value) in r {
        let keyword = keyword.as_str();
        if ANNOTATIONS.contains(&keyword) || CHECKED.contains(&keyword) {
            continue;
        }
        if w.get(keyword) != Some(value) {
            push(
                found,
                "KEYWORD_NOT_CHECKED",
                &join(at, keyword),
                format!(
                    "`{keyword}` differs and Switchyard cannot prove the change compatible; the \
                     check of stored events shows its effect"
                ),
            );
        }
    }

    // A writer with `enum` or `const` writes only those values.
    let listed: Option<Vec<&Value>> = match (w.get("const"), w.get("enum")) {
        (Some(one), _) => Some(vec![one]),
        (None, Some(Value::Array(values))) => Some(values.iter().collect()),
        _ => None,
    };
    let mut writer_types = declared_types(w);
    if let Some(values) = &listed {
        writer_types &= values.iter().fold(0, |bits, v| bits | value_type(v));
        if let Ok(validator) = super::compile(reader) {
            for value in values {
                if !validator.is_valid(value) {
                    push(
                        found,
                        "ENUM_ARRAY_NARROWED",
                        at,
                        format!("refuses {value}, which the writer allows"),
                    );
                }
            }
            return;
        }
    }
    let reader_list: Option<Vec<&Value>> = match (r.get("const"), r.get("enum")) {
        (Some(one), _) => Some(vec![one]),
        (None, Some(Value::Array(values))) => Some(values.iter().collect()),
        _ => None,
    };
    if let Some(allowed) = reader_list {
        match &listed {
            Some(values) => {
                for value in values.iter().filter(|v| !allowed.contains(v)) {
                    push(
                        found,
                        "ENUM_ARRAY_NARROWED",
                        at,
                        format!("refuses {value}, which the writer allows"),
                    );
                }
            }
            None => push(
                found,
                "ENUM_ARRAY_ADDED",
                at,
                "allows only listed values; the writer allowed any".into(),
            ),
        }
    }

    let reader_types = declared_types(r);
    let missing = writer_types & !reader_types;
    if missing != 0 {
        let kind = if writer_types & reader_types == 0 {
            "TYPE_CHANGED"
        } else {
            "TYPE_NARROWED"
        };
        push(
            found,
            kind,
            &join(at, "type"),
            format!(
                "refuses {} values, which the writer allows",
                type_names(missing)
            ),
        );
    }
    let both = writer_types & reader_types;
    if both & NUMBERS != 0 {
        numbers(r, w, both, at, found);
    }
    if both & STRING != 0 {
        strings(r, w, at, found);
    }
    if both & ARRAY != 0 {
        arrays(r, w, at, found);
    }
    if both & OBJECT != 0 {
        objects(r, w, at, found);
    }
}

/// A bound of a schema: the number, whether it is exclusive, and the keyword that set it.
type Bound = (f64, bool, &'static str);

fn bound(
    schema: &Map<String, Value>,
    inclusive: &'static str,
    exclusive: &'static str,
    lower: bool,
) -> Option<Bound> {
    let a = schema
        .get(inclusive)
        .and_then(Value::as_f64)
        .map(|v| (v, false, inclusive));
    let b = schema
        .get(exclusive)
        .and_then(Value::as_f64)
        .map(|v| (v, true, exclusive));
    match (a, b) {
        (Some(a), Some(b)) => {
            let tighter = if lower { b.0 >= a.0 } else { b.0 <= a.0 };
            Some(if tighter { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

/// Whether the reader's lower (or upper) bound admits every value the writer's does.
fn within(
    reader: Option<Bound>,
    writer: Option<Bound>,
    lower: bool,
) -> Result<(), (&'static str, bool)> {
    let Some((r, r_exclusive, keyword)) = reader else {
        return Ok(());
    };
    let Some((w, w_exclusive, _)) = writer else {
        return Err((keyword, true));
    };
    let looser = if lower { r < w } else { r > w };
    if looser || (r == w && (!r_exclusive || w_exclusive)) {
        Ok(())
    } else {
        Err((keyword, false))
    }
}

fn numbers(
    r: &Map<String, Value>,
    w: &Map<String, Value>,
    types: u8,
    at: &str,
    found: &mut Vec<Difference>,
) {
    let lower = within(
        bound(r, "minimum", "exclusiveMinimum", true),
        bound(w, "minimum", "exclusiveMinimum", true),
        true,
    );
    if let Err((keyword, added)) = lower {
        let kind = match (keyword, added) {
            ("minimum", true) => "MINIMUM_ADDED",
            ("minimum", false) => "MINIMUM_INCREASED",
            (_, true) => "EXCLUSIVE_MINIMUM_ADDED",
            (_, false) => "EXCLUSIVE_MINIMUM_INCREASED",
        };
        push(
            found,
            kind,
            &join(at, keyword),
            "refuses small numbers the writer allows".into(),
        );
    }
    let upper = within(
        bound(r, "maximum", "exclusiveMaximum", false),
        bound(w, "maximum", "exclusiveMaximum", false),
        false,
    );
    if let Err((keyword, added)) = upper {
        let kind = match (keyword, added) {
            ("maximum", true) => "MAXIMUM_ADDED",
            ("maximum", false) => "MAXIMUM_DECREASED",
            (_, true) => "EXCLUSIVE_MAXIMUM_ADDED",
            (_, false) => "EXCLUSIVE_MAXIMUM_DECREASED",
        };
        push(
            found,
            kind,
            &join(at, keyword),
            "refuses large numbers the writer allows".into(),
        );
    }
    if let Some(m) = r.get("multipleOf").and_then(Value::as_f64) {
        let integers_only = types & FRACTION == 0;
        let divides = |n: f64| {
            let q = n / m;
            (q - q.round()).abs() < 1e-9
        };
        match w.get("multipleOf").and_then(Value::as_f64) {
            _ if m == 1.0 && integers_only => {}
            Some(n) if divides(n) => {}
            Some(_) => push(
                found,
                "MULTIPLE_OF_CHANGED",
                &join(at, "multipleOf"),
                format!("refuses numbers the writer allows that are not multiples of {m}"),
            ),
            None => push(
                found,
                "MULTIPLE_OF_ADDED",
                &join(at, "multipleOf"),
                format!("refuses numbers that are not multiples of {m}"),
            ),
        }
    }
}

/// Counts (`minLength`, `minItems`, `minProperties` and their maxima): the reader's range must
/// hold the writer's.
fn counts(
    r: &Map<String, Value>,
    w: &Map<String, Value>,
    (min, max): (&'static str, &'static str),
    kinds: [&'static str; 4],
    at: &str,
    found: &mut Vec<Difference>,
) {
    let get = |schema: &Map<String, Value>, keyword| schema.get(keyword).and_then(Value::as_f64);
    if let Some(rm) = get(r, min).filter(|m| *m > 0.0) {
        match get(w, min) {
            None => push(
                found,
                kinds[0],
                &join(at, min),
                format!("requires at least {rm}; the writer did not"),
            ),
            Some(wm) if wm < rm => push(
                found,
                kinds[1],
                &join(at, min),
                format!("requires at least {rm}; the writer allowed {wm}"),
            ),
            Some(_) => {}
        }
    }
    if let Some(rm) = get(r, max) {
        match get(w, max) {
            None => push(
                found,
                kinds[2],
                &join(at, max),
                format!("allows at most {rm}; the writer allowed more"),
            ),
            Some(wm) if wm > rm => push(
                found,
                kinds[3],
                &join(at, max),
                format!("allows at most {rm}; the writer allowed {wm}"),
            ),
            Some(_) => {}
        }
    }
}

fn strings(r: &Map<String, Value>, w: &Map<String, Value>, at: &str, found: &mut Vec<Difference>) {
    counts(
        r,
        w,
        ("minLength", "maxLength"),
        [
            "MIN_LENGTH_ADDED",
            "MIN_LENGTH_INCREASED",
            "MAX_LENGTH_ADDED",
            "MAX_LENGTH_DECREASED",
        ],
        at,
        found,
    );
    for (keyword, added, changed) in [
        ("pattern", "PATTERN_ADDED", "PATTERN_CHANGED"),
        ("format", "FORMAT_ADDED", "FORMAT_CHANGED"),
    ] {
        if let Some(value) = r.get(keyword) {
            match w.get(keyword) {
                Some(same) if same == value => {}
                Some(other) => push(
                    found,
                    changed,
                    &join(at, keyword),
                    format!("requires {keyword} {value}; the writer's was {other}"),
                ),
                None => push(
                    found,
                    added,
                    &join(at, keyword),
                    format!("requires {keyword} {value}; the writer had none"),
                ),
            }
        }
    }
}

fn arrays(r: &Map<String, Value>, w: &Map<String, Value>, at: &str, found: &mut Vec<Difference>) {
    counts(
        r,
        w,
        ("minItems", "maxItems"),
        [
            "MIN_ITEMS_ADDED",
            "MIN_ITEMS_INCREASED",
            "MAX_ITEMS_ADDED",
            "MAX_ITEMS_DECREASED",
        ],
        at,
        found,
    );
    if r.get("uniqueItems") == Some(&Value::Bool(true))
        && w.get("uniqueItems") != Some(&Value::Bool(true))
    {
        push(
            found,
            "UNIQUE_ITEMS_ADDED",
            &join(at, "uniqueItems"),
            "requires unique items; the writer did not".into(),
        );
    }
    let any = Value::Bool(true);
    covers(
        r.get("items").unwrap_or(&any),
        w.get("items").unwrap_or(&any),
        &join(at, "items"),
        found,
    );
}

fn objects(r: &Map<String, Value>, w: &Map<String, Value>, at: &str, found: &mut Vec<Difference>) {
    let required = |schema: &Map<String, Value>| -> BTreeSet<String> {
        match schema.get("required") {
            Some(Value::Array(names)) => names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => BTreeSet::new(),
        }
    };
    let writer_required = required(w);
    for name in required(r).difference(&writer_required) {
        push(
            found,
            "REQUIRED_ATTRIBUTE_ADDED",
            &join(at, "required"),
            format!("requires {name:?}; the writer did not"),
        );
    }
    counts(
        r,
        w,
        ("minProperties", "maxProperties"),
        [
            "MIN_PROPERTIES_ADDED",
            "MIN_PROPERTIES_INCREASED",
            "MAX_PROPERTIES_ADDED",
            "MAX_PROPERTIES_DECREASED",
        ],
        at,
        found,
    );
    let any = Value::Bool(true);
    let empty = Map::new();
    let properties = |schema: &Map<String, Value>| match schema.get("properties") {
        Some(Value::Object(p)) => p.clone(),
        _ => empty.clone(),
    };
    let (rp, wp) = (properties(r), properties(w));
    let r_extra = r.get("additionalProperties").unwrap_or(&any);
    let w_extra = w.get("additionalProperties").unwrap_or(&any);
    let names: BTreeSet<&String> = rp.keys().chain(wp.keys()).collect();
    let here = join(at, "properties");
    for name in names {
        let path = join(&here, name);
        match (rp.get(name), wp.get(name)) {
            (Some(reader), Some(writer)) => covers(reader, writer, &path, found),
            (Some(reader), None) => {
                if accepts_all(w_extra) {
                    if !accepts_all(reader) {
                        push(
                            found,
                            "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                            &path,
                            format!(
                                "constrains {name:?}, which the writer's open content model \
                                 allowed with any value"
                            ),
                        );
                    }
                } else {
                    covers(reader, w_extra, &path, found);
                }
            }
            (None, Some(writer)) => {
                if refuses_all(r_extra) {
                    if !refuses_all(writer) {
                        push(
                            found,
                            "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                            &path,
                            format!("is no longer allowed; the writer allowed {name:?}"),
                        );
                    }
                } else {
                    covers(r_extra, writer, &join(at, "additionalProperties"), found);
                }
            }
            (None, None) => {}
        }
    }
    if refuses_all(r_extra) && !refuses_all(w_extra) {
        push(
            found,
            "ADDITIONAL_PROPERTIES_REMOVED",
            &join(at, "additionalProperties"),
            "closes the content model; the writer allowed other properties".into(),
        );
    } else {
        covers(r_extra, w_extra, &join(at, "additionalProperties"), found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The kinds of difference found going from `old` to `new` under `mode`.
    fn kinds(mode: Compatibility, old: Value, new: Value) -> Vec<&'static str> {
        check(mode, &new, &[(1, &old)])
            .into_iter()
            .map(|r| r.difference.kind)
            .collect()
    }

    fn backward(old: Value, new: Value) -> Vec<&'static str> {
        kinds(Compatibility::Backward, old, new)
    }

    fn forward(old: Value, new: Value) -> Vec<&'static str> {
        kinds(Compatibility::Forward, old, new)
    }

    fn closed(properties: Value, required: &[&str]) -> Value {
        json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
    }

    #[test]
    fn adding_an_optional_property_to_a_closed_model_is_backward_but_not_forward() {
        let old = closed(json!({"id": {"type": "string"}}), &["id"]);
        let new = closed(
            json!({"id": {"type": "string"}, "note": {"type": "string"}}),
            &["id"],
        );
        assert_eq!(backward(old.clone(), new.clone()), Vec::<&str>::new());
        assert_eq!(
            forward(old, new),
            ["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"]
        );
    }

    #[test]
    fn adding_a_property_to_an_open_model_is_not_backward() {
        let old = json!({"type": "object", "properties": {"id": {"type": "string"}}});
        let new = json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}});
        assert_eq!(
            backward(old.clone(), new.clone()),
            ["PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"]
        );
        // The other way round an open reader takes anything.
        assert_eq!(forward(old, new), Vec::<&str>::new());
    }

    #[test]
    fn adding_a_required_property_is_not_backward_removing_one_is() {
        let old = closed(
            json!({"id": {"type": "string"}, "n": {"type": "integer"}}),
            &["id"],
        );
        let new = closed(
            json!({"id": {"type": "string"}, "n": {"type": "integer"}}),
            &["id", "n"],
        );
        assert_eq!(
            backward(old.clone(), new.clone()),
            ["REQUIRED_ATTRIBUTE_ADDED"]
        );
        assert_eq!(backward(new.clone(), old.clone()), Vec::<&str>::new());
        assert_eq!(forward(new, old), ["REQUIRED_ATTRIBUTE_ADDED"]);
    }

    #[test]
    fn removing_a_property_from_a_closed_model_is_not_backward() {
        let old = closed(
            json!({"id": {"type": "string"}, "n": {"type": "integer"}}),
            &["id"],
        );
        let new = closed(json!({"id": {"type": "string"}}), &["id"]);
        assert_eq!(
            backward(old.clone(), new.clone()),
            ["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"]
        );
        assert_eq!(forward(old, new), Vec::<&str>::new());
    }

    #[test]
    fn changing_a_type_is_incompatible_both_ways_widening_only_forward() {
        let with = |t: Value| closed(json!({"n": {"type": t}}), &[]);
        assert_eq!(
            backward(with(json!("string")), with(json!("integer"))),
            ["TYPE_CHANGED"]
        );
        assert_eq!(
            forward(with(json!("string")), with(json!("integer"))),
            ["TYPE_CHANGED"]
        );
        // integer → number widens: backward yes, forward no (a fraction is now allowed).
        assert_eq!(
            backward(with(json!("integer")), with(json!("number"))),
            Vec::<&str>::new()
        );
        assert_eq!(
            forward(with(json!("integer")), with(json!("number"))),
            ["TYPE_NARROWED"]
        );
        assert_eq!(
            backward(with(json!(["string", "null"])), with(json!("string"))),
            ["TYPE_NARROWED"]
        );
    }

    #[test]
    fn narrowing_an_enum_is_not_backward_widening_is() {
        let with = |values: Value| closed(json!({"state": {"enum": values}}), &["state"]);
        let (old, new) = (with(json!(["open", "closed"])), with(json!(["open"])));
        assert_eq!(backward(old.clone(), new.clone()), ["ENUM_ARRAY_NARROWED"]);
        assert_eq!(backward(new.clone(), old.clone()), Vec::<&str>::new());
        assert_eq!(forward(new, old), ["ENUM_ARRAY_NARROWED"]);
        let free = closed(json!({"state": {"type": "string"}}), &["state"]);
        assert_eq!(backward(free, with(json!(["open"]))), ["ENUM_ARRAY_ADDED"]);
    }

    #[test]
    fn closing_additional_properties_is_not_backward() {
        let old = json!({"type": "object", "properties": {"id": {"type": "string"}}});
        let new = closed(json!({"id": {"type": "string"}}), &[]);
        assert_eq!(
            backward(old.clone(), new.clone()),
            ["ADDITIONAL_PROPERTIES_REMOVED"]
        );
        assert_eq!(forward(old, new), Vec::<&str>::new());
    }

    #[test]
    fn bounds_lengths_and_formats_are_compared() {
        let with = |s: Value| closed(json!({"v": s}), &[]);
        assert_eq!(
            backward(
                with(json!({"type": "integer", "minimum": 0})),
                with(json!({"type": "integer", "minimum": 1}))
            ),
            ["MINIMUM_INCREASED"]
        );
        assert_eq!(
            backward(
                with(json!({"type": "integer", "minimum": 1})),
                with(json!({"type": "integer", "exclusiveMinimum": 0}))
            ),
            Vec::<&str>::new()
        );
        assert_eq!(
            backward(
                with(json!({"type": "string"})),
                with(json!({"type": "string", "maxLength": 5}))
            ),
            ["MAX_LENGTH_ADDED"]
        );
        assert_eq!(
            backward(
                with(json!({"type": "string", "maxLength": 9})),
                with(json!({"type": "string", "maxLength": 5}))
            ),
            ["MAX_LENGTH_DECREASED"]
        );
        assert_eq!(
            backward(
                with(json!({"type": "string"})),
                with(json!({"type": "string", "format": "uuid"}))
            ),
            ["FORMAT_ADDED"]
        );
        assert_eq!(
            backward(
                with(json!({"type": "array", "items": {"type": "integer"}})),
                with(json!({"type": "array", "items": {"type": "string"}}))
            ),
            ["TYPE_CHANGED"]
        );
        assert_eq!(
            backward(
                with(json!({"type": "number", "multipleOf": 0.5})),
                with(json!({"type": "number", "multipleOf": 0.25}))
            ),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn nested_objects_are_compared_at_their_pointer() {
        let old = closed(
            json!({"customer": closed(json!({"id": {"type": "string"}}), &["id"])}),
            &["customer"],
        );
        let new = closed(
            json!({"customer": closed(json!({"id": {"type": "integer"}}), &["id"])}),
            &["customer"],
        );
        let reasons = check(Compatibility::Backward, &new, &[(1, &old)]);
        assert_eq!(reasons.len(), 1);
        assert_eq!(
            reasons[0].difference.pointer,
            "/properties/customer/properties/id/type"
        );
        assert_eq!(reasons[0].direction, "backward");
    }

    #[test]
    fn unknown_applicators_are_compatible_only_when_unchanged() {
        let old = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
        assert_eq!(backward(old.clone(), old.clone()), Vec::<&str>::new());
        let new = json!({"anyOf": [{"type": "string"}], "title": "narrower"});
        assert_eq!(backward(old.clone(), new), ["KEYWORD_NOT_CHECKED"]);
        // Dropping it from the reader only widens it.
        assert_eq!(backward(old, json!({})), Vec::<&str>::new());
    }

    /// Every mode with a version history it accepts a new version after and one it refuses it
    /// after (NONE refuses nothing).
    #[test]
    fn every_mode_has_a_passing_and_a_failing_case() {
        let v = |props: &[&str], required: &[&str]| {
            let properties: serde_json::Map<String, Value> = props
                .iter()
                .map(|p| ((*p).to_owned(), json!({"type": "string"})))
                .collect();
            closed(Value::Object(properties), required)
        };
        let t = |ty: &str| json!({"type": ty});
        use Compatibility::*;
        let cases: Vec<(Compatibility, Vec<Value>, Value, bool)> = vec![
            (None, vec![t("string")], t("integer"), true),
            (
                Backward,
                vec![v(&["a", "b"], &["a", "b"])],
                v(&["a", "b"], &["a"]),
                true,
            ),
            (
                Backward,
                vec![v(&["a", "b"], &["a"])],
                v(&["a", "b"], &["a", "b"]),
                false,
            ),
            // The latest accepts, an earlier one does not: only the transitive mode sees it.
            (
                BackwardTransitive,
                vec![v(&["a"], &[]), v(&["a", "c"], &[])],
                v(&["a", "c", "d"], &[]),
                true,
            ),
            (
                BackwardTransitive,
                vec![v(&["a", "b"], &[]), v(&["a"], &[])],
                v(&["a", "c"], &[]),
                false,
            ),
            (
                Backward,
                vec![v(&["a", "b"], &[]), v(&["a"], &[])],
                v(&["a", "c"], &[]),
                true,
            ),
            (Forward, vec![v(&["a", "b"], &[])], v(&["a"], &[]), true),
            (Forward, vec![v(&["a"], &[])], v(&["a", "b"], &[]), false),
            (
                ForwardTransitive,
                vec![v(&["a", "b", "c"], &[]), v(&["a", "b"], &[])],
                v(&["a"], &[]),
                true,
            ),
            (
                ForwardTransitive,
                vec![v(&["a"], &[]), v(&["a", "b"], &[])],
                v(&["a", "b"], &["b"]),
                false,
            ),
            (
                Forward,
                vec![v(&["a"], &[]), v(&["a", "b"], &[])],
                v(&["a", "b"], &["b"]),
                true,
            ),
            (
                Full,
                vec![t("string")],
                json!({"type": "string", "title": "the same values"}),
                true,
            ),
            (Full, vec![t("integer")], t("number"), false),
            (
                FullTransitive,
                vec![t("string"), t("string")],
                json!({"type": "string", "description": "x"}),
                true,
            ),
            (
                FullTransitive,
                vec![t("integer"), t("string")],
                json!({"type": "string", "title": "x"}),
                false,
            ),
            (
                Full,
                vec![t("integer"), t("string")],
                json!({"type": "string", "title": "x"}),
                true,
            ),
        ];
        for (mode, history, new, compatible) in cases {
            let earlier: Vec<(i32, &Value)> = history
                .iter()
                .enumerate()
                .map(|(i, s)| (i as i32 + 1, s))
                .collect();
            let reasons = check(mode, &new, &earlier);
            assert_eq!(
                reasons.is_empty(),
                compatible,
                "{mode} {history:?} -> {new}: {reasons:?}"
            );
        }
    }

    #[test]
    fn full_checks_both_ways_and_transitive_every_version() {
        let v1 = closed(json!({"a": {"type": "string"}}), &[]);
        let v2 = closed(
            json!({"a": {"type": "string"}, "b": {"type": "string"}}),
            &[],
        );
        assert_eq!(
            kinds(Compatibility::Full, v1.clone(), v2.clone()),
            ["PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"]
        );
        assert_eq!(
            kinds(Compatibility::None, v1.clone(), json!(false)),
            Vec::<&str>::new()
        );
        // v3 drops `a`: compatible with v2 backward? no, closed: `a` was allowed. Against v1 only
        // in the transitive mode.
        let v3 = closed(
            json!({"b": {"type": "string"}, "a": {"type": "string", "maxLength": 3}}),
            &[],
        );
        let earlier = [(1, &v1), (2, &v2)];
        let latest: Vec<i32> = check(Compatibility::Backward, &v3, &earlier)
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(latest, [2]);
        let all: Vec<i32> = check(Compatibility::BackwardTransitive, &v3, &earlier)
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(all, [1, 2]);
    }
}
