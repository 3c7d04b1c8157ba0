//! Every case in `tests/pattern_cases/*.json` (one named case per rule of `PATTERNS.md`),
//! checked against the compiled matcher and against the reference evaluator.
//!
//! A case is `{name, spec_section, pattern, event, expected}` where `expected` is `match`,
//! `no-match`, `invalid` (with the exact `reason` and, when given, the JSON `pointer`) or
//! `invalid-event`. A `pattern` or `event` written as a JSON string is raw text, so cases can
//! hold malformed JSON, duplicate keys and non-object events.

mod pattern_support;

use pattern_support::{get, get_str, items, parse_pattern, read_json};
use switchyard::pattern::{self, Json, RuleSet};

fn event_text(event: &Json) -> String {
    match event {
        Json::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

fn check(case: &Json) -> Result<(), String> {
    let expected = get_str(case, "expected").ok_or("no expected")?;
    let pattern = parse_pattern(get(case, "pattern").ok_or("no pattern")?);
    let event = event_text(get(case, "event").ok_or("no event")?);
    let pattern = match (expected, pattern) {
        ("invalid", Ok(_)) => return Err("the pattern was accepted".into()),
        ("invalid", Err(err)) => {
            let reason = get_str(case, "reason").ok_or("invalid case without reason")?;
            if err.reason != reason {
                return Err(format!("reason {:?}, expected {reason:?}", err.reason));
            }
            if let Some(pointer) = get_str(case, "pointer")
                && err.pointer != pointer
            {
                return Err(format!("pointer {:?}, expected {pointer:?}", err.pointer));
            }
            return Ok(());
        }
        (_, Err(err)) => {
            return Err(format!(
                "the pattern was refused: {} at {:?}",
                err.reason, err.pointer
            ));
        }
        (_, Ok(p)) => p,
    };
    let set = RuleSet::compile([("rule", &pattern)]);
    let compiled = set
        .matches_json(event.as_bytes())
        .map(|ids| !ids.is_empty());
    if Json::parse(&event).is_ok() {
        let validated = set
            .matcher()
            .matches_validated(&event)
            .map(|ids| !ids.is_empty());
        if validated != compiled {
            return Err(format!(
                "matches_validated answered {validated:?}, matches_json {compiled:?}"
            ));
        }
    }
    let reference = Json::parse(&event)
        .map_err(|_| ())
        .and_then(|json| pattern::reference::matches(&pattern, &json).map_err(|_| ()));
    match expected {
        "invalid-event" => {
            if compiled.is_ok() || reference.is_ok() {
                return Err(format!(
                    "the event was accepted (compiled {compiled:?}, reference {reference:?})"
                ));
            }
        }
        "match" | "no-match" => {
            let want = expected == "match";
            if compiled != Ok(want) {
                return Err(format!(
                    "compiled matcher said {compiled:?}, expected {want}"
                ));
            }
            if reference != Ok(want) {
                return Err(format!(
                    "reference evaluator said {reference:?}, expected {want}"
                ));
            }
            // The serde_json::Value path must agree too, where serde_json holds the event exactly
            // (it keeps one of duplicate keys and re-spells some numbers).
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&event)
                && Json::parse(&event).ok() == Some(Json::from_value(&value))
            {
                let from_value = set.matches_value(&value).map(|ids| !ids.is_empty());
                if from_value != Ok(want) {
                    return Err(format!(
                        "matching a serde_json::Value said {from_value:?}, expected {want}"
                    ));
                }
            }
        }
        other => return Err(format!("unknown expectation {other:?}")),
    }
    Ok(())
}

#[test]
fn every_spec_case_holds_for_the_matcher_and_the_reference() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pattern_cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    let mut names = std::collections::HashSet::new();
    for file in &files {
        for case in items(&read_json(file)) {
            count += 1;
            let name = get_str(case, "name").unwrap_or("<unnamed>");
            let section = get_str(case, "spec_section").unwrap_or("?");
            assert!(
                names.insert((file.clone(), name.to_owned())),
                "duplicate case name {name}"
            );
            if let Err(why) = check(case) {
                failures.push(format!(
                    "{} §{section} {name}: {why}",
                    file.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(count >= 150, "expected the full case list, found {count}");
    assert!(
        failures.is_empty(),
        "{} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
