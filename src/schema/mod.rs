//! The schema registry's logic, without I/O: an event type's schema (JSON Schema, draft 2020-12,
//! for the event's `detail`) read and compiled, the violations of one detail, the bus settings
//! that say what ingest does with them, the compatibility of a new version with the ones before
//! it ([`compat`]) and a schema inferred from events ([`infer`]).
//!
//! Validation is the `jsonschema` crate's: it implements draft 2020-12 completely (it passes the
//! official test suite), compiles a schema once into a validator that checks a parsed value
//! without allocating when it is valid, and reports each error with the instance's location and
//! the keyword. It is built without its default features: a remote `$ref` is refused when the
//! schema is registered, never fetched; and `pattern` runs on the `regex` crate (linear time),
//! since a schema's regular expressions run on every producer's input. `format` is asserted
//! (`date-time`, `uuid`, `email`, …): a schema that names a format means it. The compatibility
//! check and the inference are written here: no crate does either for JSON Schema.

pub mod compat;
pub mod infer;
pub mod rules;

use jsonschema::{PatternOptions, Validator};
use serde_json::Value;

use crate::domain::fields::{FieldError, unstorable};

/// The largest schema registered, as JSON text.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// At most this many violations are reported for one event.
pub const MAX_VIOLATIONS: usize = 10;
/// The only `$schema` a schema may name (or none).
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// What ingest does with an event of a type that has a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    Off,
    /// Accepted and flagged (the event's `schema_violations`, and /metrics).
    Warn,
    /// Refused: the entry fails alone.
    Enforce,
}

/// What ingest does with an event of a type that has no schema (when validation is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unregistered {
    Accept,
    Refuse,
}

/// A compatibility mode, as Confluent's Schema Registry defines it: which earlier versions a new
/// one is checked against, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    None,
    /// The new version accepts every event the latest one accepted (consumers can move first).
    Backward,
    BackwardTransitive,
    /// The latest version accepts every event the new one accepts (producers can move first).
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

macro_rules! text_enum {
    ($ty:ty, $($variant:ident => $text:literal),+ $(,)?) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$ty> {
                match text {
                    $($text => Some(<$ty>::$variant),)+
                    _ => None,
                }
            }

            /// Every accepted value, for error messages.
            pub fn choices() -> String {
                let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                all.join(", ")
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(Validation, Off => "off", Warn => "warn", Enforce => "enforce");
text_enum!(Unregistered, Accept => "accept", Refuse => "refuse");
text_enum!(
    Compatibility,
    None => "NONE",
    Backward => "BACKWARD",
    BackwardTransitive => "BACKWARD_TRANSITIVE",
    Forward => "FORWARD",
    ForwardTransitive => "FORWARD_TRANSITIVE",
    Full => "FULL",
    FullTransitive => "FULL_TRANSITIVE",
);

impl Compatibility {
    /// Whether a new version must accept what earlier ones accepted.
    pub fn backward(self) -> bool {
        matches!(
            self,
            Compatibility::Backward
                | Compatibility::BackwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    /// Whether earlier versions must accept what the new one accepts.
    pub fn forward(self) -> bool {
        matches!(
            self,
            Compatibility::Forward
                | Compatibility::ForwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    /// Whether every earlier version is compared, not only the latest.
    pub fn transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive
                | Compatibility::ForwardTransitive
                | Compatibility::FullTransitive
        )
    }
}

/// One way an event's detail breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    /// RFC 6901 pointer to the offending value in the event (`/detail/…`).
    pub pointer: String,
    /// The schema keyword it broke (`type`, `required`, `additionalProperties`, …).
    pub keyword: String,
    pub message: String,
}

/// A schema as registered: its JSON value (for the compatibility check), its compact text (as
/// stored) and its validator.
pub struct Schema {
    pub value: Value,
    pub text: String,
    pub validator: Validator,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("text", &self.text).finish()
    }
}

impl Schema {
    /// Reads a schema (`raw`: its JSON text, found at `pointer` in the request), refusing what
    /// could not be stored or compiled, each problem at its pointer.
    pub fn parse(raw: &str, pointer: &str) -> Result<Schema, FieldError> {
        if raw.len() > MAX_SCHEMA_BYTES {
            return Err(FieldError::new(
                pointer,
                format!(
                    "is {} bytes; a schema is at most {MAX_SCHEMA_BYTES} bytes",
                    raw.len()
                ),
            ));
        }
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| FieldError::new(pointer, format!("is not JSON: {e}")))?;
        Schema::from_value(value, pointer)
    }

    pub fn from_value(value: Value, pointer: &str) -> Result<Schema, FieldError> {
        match &value {
            Value::Object(members) => {
                if let Some(draft) = members.get("$schema")
                    && draft.as_str().map(|d| d.trim_end_matches('#')) != Some(DRAFT)
                {
                    return Err(FieldError::new(
                        format!("{pointer}/$schema"),
                        format!("must be {DRAFT:?} (draft 2020-12) or absent"),
                    ));
                }
            }
            Value::Bool(_) => {}
            _ => {
                return Err(FieldError::new(
                    pointer,
                    "must be a JSON Schema: an object (or true or false)",
                ));
            }
        }
        let text = value.to_string();
        if let Some(why) = unstorable(&text) {
            return Err(FieldError::new(pointer, why));
        }
        let validator = compile(&value).map_err(|error| {
            let at = error.schema_path;
            FieldError::new(
                format!("{pointer}{at}"),
                format!("is not a valid schema: {}", error.message),
            )
        })?;
        Ok(Schema {
            value,
            text,
            validator,
        })
    }

    /// The violations of an event's detail (at most [`MAX_VIOLATIONS`]); empty when valid.
    pub fn violations(&self, detail: &Value) -> Vec<Violation> {
        violations(&self.validator, detail)
    }
}

/// Why a schema does not compile: where in the schema, and the validator's words.
#[derive(Debug)]
pub struct CompileError {
    pub schema_path: String,
    pub message: String,
}

/// Compiles a schema as draft 2020-12 with asserted formats, linear-time patterns and no
/// remote references.
pub fn compile(schema: &Value) -> Result<Validator, CompileError> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
        .map_err(|error| CompileError {
            schema_path: error.instance_path().as_str().to_owned(),
            message: error.to_string(),
        })
}

/// The violations of `detail` (at most [`MAX_VIOLATIONS`]), each at its pointer in the event.
pub fn violations(validator: &Validator, detail: &Value) -> Vec<Violation> {
    if validator.is_valid(detail) {
        return Vec::new();
    }
    validator
        .iter_errors(detail)
        .take(MAX_VIOLATIONS)
        .map(|error| Violation {
            pointer: format!("/detail{}", error.instance_path().as_str()),
            keyword: error.kind().keyword().to_owned(),
            message: error.to_string(),
        })
        .collect()
}

/// The detail of a stored envelope (`null` if it has none, which ingest never stores).
pub fn detail_of(body: &str) -> Value {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        detail: Value,
    }
    serde_json::from_str::<Envelope>(body).map_or(Value::Null, |e| e.detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_violation_names_the_value_and_the_keyword() {
        let schema = Schema::from_value(
            json!({
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string", "format": "uuid"}, "n": {"type": "integer"}}
            }),
            "/schema",
        )
        .unwrap();
        assert!(
            schema
                .violations(&json!({"id": "0190a0c4-4b8e-7c3a-9a7e-4d5f6a7b8c9d"}))
                .is_empty()
        );
        let found = schema.violations(&json!({"id": "nope", "n": "1"}));
        let seen: Vec<(&str, &str)> = found
            .iter()
            .map(|v| (v.pointer.as_str(), v.keyword.as_str()))
            .collect();
        assert!(seen.contains(&("/detail/id", "format")), "{seen:?}");
        assert!(seen.contains(&("/detail/n", "type")), "{seen:?}");
        let missing = schema.violations(&json!({}));
        assert_eq!(missing[0].pointer, "/detail");
        assert_eq!(missing[0].keyword, "required");
    }

    #[test]
    fn what_cannot_be_registered_is_refused_at_its_pointer() {
        let bad = |raw: &str| Schema::parse(raw, "/schema").unwrap_err();
        assert_eq!(bad("[1]").pointer, "/schema");
        assert_eq!(bad("{").pointer, "/schema");
        assert_eq!(
            bad(r#"{"$schema": "http://json-schema.org/draft-07/schema#"}"#).pointer,
            "/schema/$schema"
        );
        let wrong = bad(r#"{"properties": {"a": {"type": "strin"}}}"#);
        assert!(wrong.pointer.starts_with("/schema"), "{wrong:?}");
        assert!(wrong.detail.contains("not a valid schema"), "{wrong:?}");
        // A remote reference is never fetched.
        bad(r#"{"$ref": "https://example.com/s.json"}"#);
        bad(r#"{"$ref": "file:///etc/passwd"}"#);
        // A NUL in a string is kept escaped in the stored text, which Postgres takes.
        let nul = Schema::parse(r#"{"const": "a\u0000"}"#, "/schema").unwrap();
        assert!(nul.text.contains("\\u0000"));
        // Linear-time regular expressions only: no look-around.
        bad(r#"{"pattern": "(?=a)"}"#);
    }
}
