//! A schema inferred from sample details: each value's types (`integer` when every number seen
//! was whole), objects with their properties (`required` when present in every sample of that
//! object), arrays with one schema for all their items, and a string `format` when every string
//! seen at that place has it (`date-time`, `date`, `uuid`, `email`, `ipv4`, `ipv6`, checked with
//! the validator's own format checks, so an inferred schema always accepts its samples).
//! Objects stay open (no `additionalProperties: false`), as EventBridge's discovery writes them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::{Map, Value, json};

const FORMATS: [&str; 6] = ["date-time", "date", "uuid", "email", "ipv4", "ipv6"];

fn format_checks() -> &'static [Option<Validator>] {
    static CHECKS: OnceLock<Vec<Option<Validator>>> = OnceLock::new();
    CHECKS.get_or_init(|| {
        FORMATS
            .iter()
            .map(|format| super::compile(&json!({"format": format})).ok())
            .collect()
    })
}

/// What was seen at one place of the samples.
#[derive(Debug, Default, Clone)]
struct Node {
    null: bool,
    boolean: bool,
    integer: bool,
    fraction: bool,
    /// Objects seen here, and per property how many had it and what it held.
    objects: u64,
    properties: BTreeMap<String, (u64, Node)>,
    /// Arrays seen here, and what their items held.
    arrays: bool,
    items: Option<Box<Node>>,
    /// Strings seen here, and the formats every one of them had so far.
    strings: bool,
    formats: Vec<bool>,
}

impl Node {
    fn add(&mut self, value: &Value) {
        match value {
            Value::Null => self.null = true,
            Value::Bool(_) => self.boolean = true,
            Value::Number(n) => {
                if n.is_i64() || n.is_u64() {
                    self.integer = true;
                } else {
                    self.fraction = true;
                }
            }
            Value::String(text) => {
                if !self.strings {
                    self.strings = true;
                    self.formats = vec![true; FORMATS.len()];
                }
                let instance = Value::String(text.clone());
                for (keep, check) in self.formats.iter_mut().zip(format_checks()) {
                    *keep = *keep && check.as_ref().is_some_and(|c| c.is_valid(&instance));
                }
            }
            Value::Array(items) => {
                self.arrays = true;
                for item in items {
                    self.items.get_or_insert_default().add(item);
                }
            }
            Value::Object(members) => {
                self.objects += 1;
                for (name, member) in members {
                    let (count, node) = self.properties.entry(name.clone()).or_default();
                    *count += 1;
                    node.add(member);
                }
            }
        }
    }

    fn schema(&self) -> Value {
        let mut types = Vec::new();
        let mut schema = Map::new();
        if self.null {
            types.push("null");
        }
        if self.boolean {
            types.push("boolean");
        }
        if self.fraction {
            types.push("number");
        } else if self.integer {
            types.push("integer");
        }
        if self.strings {
            types.push("string");
            if let Some(i) = self.formats.iter().position(|keep| *keep) {
                schema.insert("format".into(), json!(FORMATS[i]));
            }
        }
        if self.arrays {
            types.push("array");
            if let Some(items) = &self.items {
                schema.insert("items".into(), items.schema());
            }
        }
        if self.objects > 0 {
            types.push("object");
            let properties: Map<String, Value> = self
                .properties
                .iter()
                .map(|(name, (_, node))| (name.clone(), node.schema()))
                .collect();
            let required: Vec<&String> = self
                .properties
                .iter()
                .filter(|(_, (count, _))| *count == self.objects)
                .map(|(name, _)| name)
                .collect();
            schema.insert("properties".into(), Value::Object(properties));
            if !required.is_empty() {
                schema.insert("required".into(), json!(required));
            }
        }
        match types.as_slice() {
            [] => {}
            [one] => {
                schema.insert("type".into(), json!(one));
            }
            many => {
                schema.insert("type".into(), json!(many));
            }
        }
        Value::Object(schema)
    }
}

/// Reads sample details one by one; [`Inferrer::schema`] gives the schema of all seen so far.
#[derive(Debug, Default, Clone)]
pub struct Inferrer {
    root: Node,
    samples: u64,
}

impl Inferrer {
    pub fn add(&mut self, detail: &Value) {
        self.samples += 1;
        self.root.add(detail);
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The schema of every detail added, with its `$schema`.
    pub fn schema(&self) -> Value {
        let mut schema = self.root.schema();
        if let Value::Object(members) = &mut schema {
            let mut with_draft = Map::new();
            with_draft.insert("$schema".into(), json!(super::DRAFT));
            with_draft.append(members);
            return Value::Object(with_draft);
        }
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_and_nested_fields_and_formats_are_inferred() {
        let samples = [
            json!({"id": "0190a0c4-4b8e-7c3a-9a7e-4d5f6a7b8c9d", "at": "2026-12-05T10:00:00Z", "n": 1,
                   "customer": {"name": "a", "tier": "gold"}, "lines": [{"sku": "x", "qty": 2}]}),
            json!({"id": "0190a0c4-4b8e-7c3a-9a7e-4d5f6a7b8c9e", "at": "2026-12-05T10:01:00+01:00", "n": 2.5,
                   "customer": {"name": "b"}, "lines": [], "note": null}),
        ];
        let mut inferrer = Inferrer::default();
        for sample in &samples {
            inferrer.add(sample);
        }
        let schema = inferrer.schema();
        assert_eq!(schema["$schema"], super::super::DRAFT);
        assert_eq!(schema["type"], "object");
        assert_eq!(
            schema["required"],
            json!(["at", "customer", "id", "lines", "n"])
        );
        assert_eq!(schema["properties"]["id"]["format"], "uuid");
        assert_eq!(schema["properties"]["at"]["format"], "date-time");
        assert_eq!(schema["properties"]["n"]["type"], "number");
        assert_eq!(schema["properties"]["note"]["type"], "null");
        assert_eq!(
            schema["properties"]["customer"]["required"],
            json!(["name"])
        );
        assert_eq!(
            schema["properties"]["customer"]["properties"]["tier"]["type"],
            "string"
        );
        let item = &schema["properties"]["lines"]["items"];
        assert_eq!(item["properties"]["qty"]["type"], "integer");
        // The inferred schema accepts every sample it came from.
        let compiled = crate::schema::Schema::from_value(schema, "").unwrap();
        for sample in &samples {
            assert_eq!(compiled.violations(sample), Vec::new());
        }
    }

    #[test]
    fn a_format_is_kept_only_when_every_string_has_it() {
        let mut inferrer = Inferrer::default();
        inferrer.add(&json!({"d": "2026-12-05"}));
        inferrer.add(&json!({"d": "soon"}));
        let schema = inferrer.schema();
        assert_eq!(schema["properties"]["d"], json!({"type": "string"}));
        let mut mixed = Inferrer::default();
        mixed.add(&json!({"v": 1}));
        mixed.add(&json!({"v": "one"}));
        assert_eq!(
            mixed.schema()["properties"]["v"]["type"],
            json!(["integer", "string"])
        );
    }
}
