//! Helpers shared by the pattern test binaries: the test data folder and JSON access.
#![allow(dead_code)]

use std::path::PathBuf;

use switchyard::pattern::{self, Json, Limits, Pattern, PatternError, RuleSet};

/// The folder with the AWS-recorded conformance cases and the big CloudTrail event:
/// `tests/data` in the repository, or `$SWITCHYARD_SHARED_DIR/bench-data` when that is set.
/// Missing data is a test failure, never a skip.
pub fn data_dir() -> PathBuf {
    let dir = match std::env::var_os("SWITCHYARD_SHARED_DIR") {
        Some(shared) => PathBuf::from(shared).join("bench-data"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
    };
    assert!(
        dir.join("eventbridge-conformance-cases.json").is_file(),
        "test data not found in {}",
        dir.display()
    );
    dir
}

/// Reads a JSON file keeping number text as written.
pub fn read_json(path: &std::path::Path) -> Json {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Json::parse(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn get<'a>(json: &'a Json, key: &str) -> Option<&'a Json> {
    match json {
        Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

pub fn get_str<'a>(json: &'a Json, key: &str) -> Option<&'a str> {
    match get(json, key) {
        Some(Json::String(s)) => Some(s),
        _ => None,
    }
}

pub fn items(json: &Json) -> &[Json] {
    match json {
        Json::Array(items) => items,
        _ => panic!("expected an array"),
    }
}

/// The pattern value as the engine sees it: a JSON string holding text is parsed as text
/// (so cases can carry malformed JSON), anything else is the pattern itself.
pub fn parse_pattern(value: &Json) -> Result<Pattern, PatternError> {
    match value {
        Json::String(text) => pattern::parse(text),
        other => pattern::parse_json(other, &Limits::default()),
    }
}

/// The compiled matcher's answer (through JSON text) and the reference evaluator's.
pub fn both_answers(pattern: &Pattern, event: &Json) -> (bool, bool) {
    let set = RuleSet::compile([((), pattern)]);
    let text = event.to_string();
    let compiled = !set
        .matches_json(text.as_bytes())
        .expect("event is an object")
        .is_empty();
    let validated = !set
        .matcher()
        .matches_validated(&text)
        .expect("event is an object")
        .is_empty();
    assert_eq!(validated, compiled, "matches_validated on {text}");
    let reference = pattern::reference::matches(pattern, event).expect("event is an object");
    (compiled, reference)
}
