//! `switchyard schema infer`, run as a real process: events in as JSON Lines, one schema per
//! event type out (required, nested, formats), a bad line reported with its number and skipped.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn infer(args: &[&str], input: &str) -> (bool, Vec<Value>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["schema", "infer"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchyard");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let lines = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an answer line is JSON"))
        .collect();
    (
        output.status.success(),
        lines,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn one_schema_per_event_type_from_events() {
    let events = [
        json!({"source": "shop", "detail-type": "placed", "detail": {"id": "0190a0c4-4b8e-7c3a-9a7e-4d5f6a7b8c9d", "customer": {"name": "a", "vip": true}, "lines": [{"qty": 1}]}}),
        json!({"source": "shop", "detail-type": "placed", "detail": {"id": "0190a0c4-4b8e-7c3a-9a7e-4d5f6a7b8c9e", "customer": {"name": "b"}, "lines": [], "note": "x"}}),
        json!({"source": "shop", "detail-type": "shipped", "detail": {"at": "2026-12-05T10:00:00Z"}}),
    ];
    let input: Vec<String> = events.iter().map(Value::to_string).collect();
    let (ok, lines, stderr) = infer(&[], &(input.join("\n") + "\n"));
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["detail_type"], "placed");
    assert_eq!(lines[0]["samples"], 2);
    let placed = &lines[0]["schema"];
    assert_eq!(placed["required"], json!(["customer", "id", "lines"]));
    assert_eq!(placed["properties"]["id"]["format"], "uuid");
    assert_eq!(
        placed["properties"]["customer"]["required"],
        json!(["name"])
    );
    assert_eq!(
        placed["properties"]["lines"]["items"]["properties"]["qty"]["type"],
        "integer"
    );
    assert_eq!(
        lines[1]["schema"]["properties"]["at"]["format"],
        "date-time"
    );
}

#[test]
fn a_bad_line_is_reported_with_its_number_and_skipped() {
    let input = "{\"a\": 1}\nnot json\n{\"a\": \"x\"}\n";
    let (ok, lines, stderr) = infer(&["--detail"], input);
    assert!(!ok, "a refused line makes the exit status 1");
    assert!(stderr.contains("line 2:"), "{stderr}");
    assert_eq!(
        lines,
        [
            json!({"samples": 2, "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {"a": {"type": ["integer", "string"]}}, "required": ["a"]}})
        ]
    );
    let (ok, _, stderr) = infer(&[], "{\"source\": \"a\"}\n");
    assert!(!ok);
    assert!(stderr.contains("line 1: is not an event"), "{stderr}");
}
