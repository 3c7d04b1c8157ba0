//! `switchyard pattern test`, run as a real process: JSON Lines in, one answer line out per
//! line, in order, never stopping at a bad line; and the one-case form with its exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

fn run_lines(input: &str) -> Vec<String> {
    let mut child = switchyard()
        .args(["pattern", "test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start switchyard");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "exit status {:?}", output.status);
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn json_lines_get_one_answer_each_in_order() {
    let input = [
        r#"{"pattern": {"source": ["a"]}, "event": {"source": "a"}}"#,
        r#"{"pattern": {"source": ["a"]}, "event": {"source": "b"}}"#,
        r#"{"pattern": {"source": "a"}, "event": {"source": "a"}}"#,
        r#"{"pattern": {"source": ["a"]}, "event": ["not", "an", "object"]}"#,
        r#"this line is not json"#,
        r#""#,
        r#"{"pattern": {"n": [37.807807921694092]}, "event": {"n": 37.807807921694092}}"#,
        r#"{"pattern": {"n": [37.807807921694092]}, "event": {"n": 37.80780792169409}}"#,
        r#"{"pattern": {"n": [{"numeric": ["<", 37.807807921694092]}]}, "event": {"n": 1}}"#,
        r#"{"pattern": {"source": ["a"]}, "event": {"source": "a"}}"#,
    ]
    .join("\n");
    let lines = run_lines(&(input + "\n"));
    let answers: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), 10, "{lines:?}");
    assert_eq!(answers[0], serde_json::json!({"result": true}));
    assert_eq!(answers[1], serde_json::json!({"result": false}));
    assert_eq!(
        answers[2],
        serde_json::json!({"error": "\"source\" must be an object or an array"})
    );
    assert_eq!(
        answers[3],
        serde_json::json!({"error": "Event must be a JSON object"})
    );
    assert!(answers[4]["error"].is_string());
    assert!(answers[5]["error"].is_string());
    assert_eq!(
        answers[6],
        serde_json::json!({"result": true}),
        "number text must reach the engine as written"
    );
    assert_eq!(answers[7], serde_json::json!({"result": false}));
    assert_eq!(
        answers[8],
        serde_json::json!({"error": "Cannot compare number : 37.807807921694092"})
    );
    assert_eq!(answers[9], serde_json::json!({"result": true}));
}

#[test]
fn one_case_exits_with_the_outcome() {
    let status = |pattern: &str, event: &str| {
        let output = switchyard()
            .args(["pattern", "test", "--pattern", pattern, "--event", event])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(status(r#"{"a":["x"]}"#, r#"{"a":"x"}"#).0, Some(0));
    assert_eq!(status(r#"{"a":["x"]}"#, r#"{"a":"y"}"#).0, Some(1));
    let (code, stderr) = status(r#"{"a":"x"}"#, r#"{"a":"x"}"#);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("\"a\" must be an object or an array"),
        "{stderr}"
    );
    assert_eq!(status(r#"{"a":["x"]}"#, "[1]").0, Some(3));

    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (p, e) = (dir.join("pattern.json"), dir.join("event.json"));
    std::fs::write(&p, r#"{"detail": {"n": [{"numeric": [">", 1]}]}}"#).unwrap();
    std::fs::write(&e, r#"{"detail": {"n": 2}}"#).unwrap();
    assert_eq!(status(p.to_str().unwrap(), e.to_str().unwrap()).0, Some(0));
    std::fs::remove_dir_all(&dir).unwrap();
}
