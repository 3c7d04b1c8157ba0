//! The 155 TestEventPattern cases recorded against AWS (`tests/data`), every one of which
//! must give AWS's answer, with AWS's reason where it recorded one.

mod pattern_support;

use pattern_support::{both_answers, data_dir, get, get_str, items, parse_pattern, read_json};
use switchyard::pattern::{self, Json, RuleSet};

#[test]
fn every_aws_recorded_case_gives_the_aws_answer() {
    let file = read_json(&data_dir().join("eventbridge-conformance-cases.json"));
    let cases = items(get(&file, "cases").expect("cases"));
    assert_eq!(cases.len(), 155, "the file should hold 155 cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = get_str(case, "name").expect("name");
        let expected = get_str(case, "expected").expect("expected");
        let pattern = parse_pattern(get(case, "pattern").expect("pattern"));
        let event = get(case, "event").expect("event");
        match (expected, pattern) {
            ("invalid", Ok(_)) => failures.push(format!("{name}: accepted an invalid pattern")),
            ("invalid", Err(err)) => {
                if let Some(aws) = get_str(case, "aws_error_message") {
                    let ours = err.aws_message();
                    if ours != aws {
                        failures.push(format!("{name}: reason {ours:?}, AWS said {aws:?}"));
                    }
                }
            }
            (_, Err(err)) => failures.push(format!(
                "{name}: refused a valid pattern: {err} at {}",
                err.pointer
            )),
            (want, Ok(p)) => {
                let want = want == "match";
                let (compiled, reference) = both_answers(&p, event);
                if compiled != want {
                    failures.push(format!(
                        "{name}: compiled matcher said {compiled}, AWS said {want}"
                    ));
                }
                if reference != want {
                    failures.push(format!(
                        "{name}: reference evaluator said {reference}, AWS said {want}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with AWS:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn aws_syntax_and_shape_messages_are_reproduced() {
    let file = read_json(&data_dir().join("eventbridge-conformance-cases.json"));
    let mut checked = 0;
    for fact in items(get(&file, "extra_aws_facts").expect("extra_aws_facts")) {
        let (Some(Json::String(text)), Some(aws)) =
            (get(fact, "pattern"), get_str(fact, "aws_error"))
        else {
            continue;
        };
        let err = pattern::parse(text).expect_err("AWS refused this pattern");
        assert_eq!(
            format!("InvalidEventPatternException: {}", err.aws_message()),
            aws
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn a_dotted_pattern_key_addresses_nested_event_fields() {
    let p = pattern::parse(
        r#"{"detail":{"payload.nested.another-level.deep":{"inside-list":[{"prefix":"q-test"}]}}}"#,
    )
    .unwrap();
    let event = Json::parse(
        r#"{"detail":{"payload":{"nested":{"another-level":{"deep":{"inside-list":["q-test-1","other"]}}}}}}"#,
    )
    .unwrap();
    assert_eq!(both_answers(&p, &event), (true, true));
}

#[test]
fn the_big_cloudtrail_event_matches_its_pattern() {
    let dir = data_dir();
    let pattern_text =
        std::fs::read_to_string(dir.join("big-cloudtrail-event-pattern.json")).unwrap();
    let event_text = std::fs::read(dir.join("big-cloudtrail-event.json")).unwrap();
    let p = pattern::parse(&pattern_text).unwrap();
    let set = RuleSet::compile([("route53", &p)]);
    assert_eq!(set.matches_json(&event_text).unwrap(), [&"route53"]);
    let event = Json::parse(std::str::from_utf8(&event_text).unwrap()).unwrap();
    assert!(pattern::reference::matches(&p, &event).unwrap());
}
