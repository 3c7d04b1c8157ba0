//! Rules meet schemas: the fields a rule's pattern names under `detail`, checked against the
//! latest schema of each event type the rule selects (by its exact `detail-type` values). A
//! field the schema does not declare (a typo, most often) or a comparison with a value of a type
//! the schema does not allow makes a warning; the rule is saved all the same. Where a schema
//! uses applicators (`anyOf`, `$ref`, …) on the way to a field, nothing is said.

use serde::Serialize;
use serde_json::{Map, Value};

use super::compat::{
    ANY, ARRAY, BOOLEAN, NULL, NUMBERS, OBJECT, STRING, declared_types, type_names, value_type,
};
use crate::domain::fields::pointer;
use crate::pattern::FieldUse;

/// One thing a saved rule's pattern says that its event types' schemas contradict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleWarning {
    /// Where in the rule (`/event_pattern/detail/…`).
    pub pointer: String,
    pub message: String,
}

/// An event type's latest schema, as the check sees it.
pub struct TypeSchema<'a> {
    pub source: &'a str,
    pub detail_type: &'a str,
    pub version: i32,
    pub schema: &'a Value,
}

/// What a schema says at a path.
enum Found<'a> {
    Node(&'a Map<String, Value>),
    /// The schema accepts anything here (`true`, `{}`, or an open object's undeclared member).
    Anything,
    /// No such member: `closed` when no other member is allowed either.
    Missing {
        segment: String,
        closed: bool,
    },
    /// An applicator or a reference on the way: not checked.
    Unknown,
}

const APPLICATORS: &[&str] = &[
    "$ref",
    "$dynamicRef",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "if",
    "patternProperties",
];

fn lookup<'a>(schema: &'a Value, segments: &[&str]) -> Found<'a> {
    let mut node = match schema {
        Value::Object(members) => members,
        Value::Bool(true) => return Found::Anything,
        _ => return Found::Unknown,
    };
    for segment in segments {
        // Arrays are transparent to patterns: a condition on a member applies to each item.
        while declared_types(node) & ARRAY != 0
            && declared_types(node) & OBJECT == 0
            && let Some(Value::Object(items)) = node.get("items")
        {
            node = items;
        }
        if APPLICATORS.iter().any(|k| node.contains_key(*k)) {
            return Found::Unknown;
        }
        let declared = node
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|p| p.get(*segment));
        node = match declared {
            Some(Value::Object(member)) => member,
            Some(Value::Bool(true)) => return Found::Anything,
            Some(_) => return Found::Unknown,
            None => {
                return match node.get("additionalProperties") {
                    Some(Value::Bool(false)) => Found::Missing {
                        segment: (*segment).to_owned(),
                        closed: true,
                    },
                    Some(Value::Object(_)) => Found::Unknown,
                    _ => Found::Missing {
                        segment: (*segment).to_owned(),
                        closed: false,
                    },
                };
            }
        };
    }
    if APPLICATORS.iter().any(|k| node.contains_key(*k)) {
        return Found::Unknown;
    }
    Found::Node(node)
}

/// The JSON types a leaf may have under this schema node (arrays look through to their items).
fn leaf_types(node: &Map<String, Value>) -> u8 {
    let listed = match (node.get("const"), node.get("enum")) {
        (Some(one), _) => Some(value_type(one)),
        (None, Some(Value::Array(values))) => Some(values.iter().fold(0, |b, v| b | value_type(v))),
        _ => None,
    };
    let mut types = declared_types(node) & listed.unwrap_or(ANY);
    if types & ARRAY != 0 {
        types &= !ARRAY;
        types |= match node.get("items") {
            Some(Value::Object(items)) => leaf_types(items),
            _ => ANY,
        };
    }
    types
}

fn expected_bits(expects: &[&str]) -> u8 {
    expects.iter().fold(0, |bits, t| {
        bits | match *t {
            "string" => STRING,
            "number" => NUMBERS,
            "boolean" => BOOLEAN,
            "null" => NULL,
            _ => ANY,
        }
    })
}

/// The warnings for a rule whose pattern names `uses`, against the schemas of the types it
/// selects.
pub fn rule_warnings(uses: &[FieldUse], types: &[TypeSchema<'_>]) -> Vec<RuleWarning> {
    let mut warnings = Vec::new();
    for field in uses {
        let Some(rest) = field.path.strip_prefix("detail.") else {
            continue;
        };
        let segments: Vec<&str> = rest.split('.').collect();
        let at = segments
            .iter()
            .fold(String::from("/event_pattern/detail"), |p, s| pointer(&p, s));
        for ty in types {
            let name = format!(
                "version {} of the schema of {:?} / {:?}",
                ty.version, ty.source, ty.detail_type
            );
            match lookup(ty.schema, &segments) {
                Found::Missing { segment, closed } => warnings.push(RuleWarning {
                    pointer: at.clone(),
                    message: if closed {
                        format!(
                            "{name} has no field {segment:?} and allows no other: the rule can \
                             never match these events on `{}`",
                            field.path
                        )
                    } else {
                        format!(
                            "{name} does not declare {segment:?} (of `{}`): a typo?",
                            field.path
                        )
                    },
                }),
                Found::Node(node) if !field.expects.is_empty() => {
                    let allowed = leaf_types(node);
                    let expected = expected_bits(&field.expects);
                    if allowed & expected == 0 {
                        let what = if allowed == OBJECT {
                            "an object, and a pattern matches leaves".to_owned()
                        } else {
                            type_names(allowed)
                        };
                        warnings.push(RuleWarning {
                            pointer: at.clone(),
                            message: format!(
                                "`{}` is compared with a {}, but in {name} it is {what}",
                                field.path,
                                field.expects.join(" or ")
                            ),
                        });
                    }
                }
                Found::Node(_) | Found::Anything | Found::Unknown => {}
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn warnings(pattern: Value, schema: Value) -> Vec<RuleWarning> {
        let pattern = crate::pattern::parse(&pattern.to_string()).unwrap();
        let ty = TypeSchema {
            source: "shop",
            detail_type: "placed",
            version: 2,
            schema: &schema,
        };
        rule_warnings(&pattern.field_uses(), &[ty])
    }

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "customer": {"type": "object", "additionalProperties": false,
                         "properties": {"tier": {"enum": ["gold", "silver"]}, "age": {"type": "integer"}}},
            "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}},
            "total": {"type": "number"},
            "meta": {"anyOf": [{"type": "object"}]}
        }})
    }

    #[test]
    fn a_misspelt_field_is_named_with_its_pointer() {
        let found = warnings(
            json!({"detail": {"customer": {"tierr": ["gold"]}}}),
            schema(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pointer, "/event_pattern/detail/customer/tierr");
        assert!(found[0].message.contains("never match"), "{found:?}");
        let open = warnings(
            json!({"detail": {"totl": [{"numeric": [">", 1]}]}}),
            schema(),
        );
        assert!(open[0].message.contains("a typo?"), "{open:?}");
    }

    #[test]
    fn a_comparison_with_the_wrong_type_is_named() {
        let found = warnings(json!({"detail": {"total": ["12"]}}), schema());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains("compared with a string"),
            "{found:?}"
        );
        assert!(found[0].message.contains("number"), "{found:?}");
        let found = warnings(
            json!({"detail": {"customer": {"tier": [{"numeric": [">", 1]}]}}}),
            schema(),
        );
        assert_eq!(found.len(), 1, "an enum of strings is no number: {found:?}");
        let object = warnings(json!({"detail": {"customer": ["x"]}}), schema());
        assert!(object[0].message.contains("an object"), "{object:?}");
    }

    #[test]
    fn what_the_schema_allows_says_nothing() {
        for pattern in [
            json!({"detail": {"customer": {"tier": ["gold"], "age": [{"numeric": [">=", 18]}]}}}),
            json!({"detail": {"lines": {"sku": [{"prefix": "A"}]}}}),
            json!({"detail": {"total": [{"exists": true}]}}),
            json!({"detail": {"meta": {"anything": ["x"]}}}),
            json!({"source": ["shop"], "detail": {"total": [1, "1"]}}),
        ] {
            assert_eq!(warnings(pattern.clone(), schema()), Vec::new(), "{pattern}");
        }
    }
}
