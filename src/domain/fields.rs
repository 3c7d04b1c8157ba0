//! Reading and refusing JSON input field by field: [`FieldError`] (where, as an RFC 6901
//! pointer, and why), and [`Fields`], the members of one object taken one by one so that
//! whatever is left over is refused as unknown. The rule parser and the input-transformer
//! validation read their JSON with it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::value::RawValue;

/// One refused field: where (an RFC 6901 JSON pointer into the request body) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// Every field that was refused, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid field(s), first: {}: {}", .0.len(), .0[0].pointer, .0[0].detail)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// `Ok(value)` when nothing was refused; otherwise every error (or, if a parser gave up
    /// without saying why, that `what` is not valid).
    pub fn finish<T>(value: Option<T>, errors: Vec<FieldError>, what: &str) -> Result<T, Self> {
        match value {
            Some(value) if errors.is_empty() => Ok(value),
            _ if errors.is_empty() => Err(ValidationErrors(vec![FieldError::new(
                "",
                format!("is not a valid {what}"),
            )])),
            _ => Err(ValidationErrors(errors)),
        }
    }
}

/// Why Postgres could not store this text, if it could not: a NUL character (JSON's `\u0000`),
/// which a `text` or `jsonb` value cannot hold. Every text that reaches the database unescaped
/// is checked with this first, so the request fails alone with the field named, never the
/// statement (which may carry other clients' rows).
pub fn unstorable(text: &str) -> Option<&'static str> {
    text.contains('\0')
        .then_some("must not contain a NUL character (\\u0000)")
}

/// A free text of at most `max` characters that Postgres can store (a description, a reason).
pub fn check_text(text: &str, max: usize) -> Result<(), String> {
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    unstorable(text).map_or(Ok(()), |why| Err(why.to_owned()))
}

/// A whole number as JSON Schema's `integer` has it: any number without a fractional part, so
/// `262` and `262.0` alike; `None` for anything else (or beyond 2^53, where floats skip integers).
pub fn whole_number(value: &serde_json::Value) -> Option<u64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=EXACT).contains(f))
            .map(|f| f as u64)
    })
}

/// `base` + `/` + `key`, escaped as RFC 6901 requires.
pub fn pointer(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The members of one JSON object, taken one by one; what is left is unknown.
pub struct Fields {
    base: String,
    members: BTreeMap<String, Box<RawValue>>,
    taken: BTreeSet<String>,
}

impl Fields {
    pub fn parse(raw: &str, base: &str, errors: &mut Vec<FieldError>) -> Option<Fields> {
        match serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(raw) {
            Ok(members) => Some(Fields {
                base: base.to_owned(),
                members,
                taken: BTreeSet::new(),
            }),
            Err(_) => {
                errors.push(FieldError::new(base, "must be a JSON object"));
                None
            }
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// Whether the member was present (taken or not).
    pub fn had(&self, name: &str) -> bool {
        self.taken.contains(name) || self.has(name)
    }

    /// The member, unless it is absent or `null`.
    pub fn take(&mut self, name: &str) -> Option<Box<RawValue>> {
        let raw = self.members.remove(name)?;
        self.taken.insert(name.to_owned());
        (raw.get() != "null").then_some(raw)
    }

    /// A string member; one Postgres could not store is refused like a non-string.
    pub fn take_string(&mut self, name: &str, errors: &mut Vec<FieldError>) -> Option<String> {
        let raw = self.take(name)?;
        match serde_json::from_str::<String>(raw.get()) {
            Ok(text) => match unstorable(&text) {
                Some(why) => {
                    errors.push(FieldError::new(pointer(&self.base, name), why));
                    None
                }
                None => Some(text),
            },
            Err(_) => {
                errors.push(FieldError::new(
                    pointer(&self.base, name),
                    "must be a string",
                ));
                None
            }
        }
    }

    pub fn refuse_unknown(&mut self, errors: &mut Vec<FieldError>) {
        for name in std::mem::take(&mut self.members).into_keys() {
            errors.push(FieldError::new(
                pointer(&self.base, &name),
                "is not a known field",
            ));
        }
    }
}
