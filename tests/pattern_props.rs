//! Differential property test: for generated patterns and events, the compiled rule set and the
//! reference evaluator always give the same answer. The vocabulary is small on purpose, so that
//! generated events often hit the generated patterns (and their arrays, numbers and cases).
//!
//! The two share the parser (both take the same `Pattern`) and the value models: which number
//! texts are comparable, how IP addresses and CIDR ranges read, which spellings a character has
//! in the case model. A mistake there would be made by both and is not caught here; the unit
//! tests of `number.rs`, `ip.rs` and `casefold.rs`, the spec cases and the AWS-recorded cases
//! cover them. Everything else is written twice: which leaf satisfies which condition, array
//! consistency, `exists`, `anything-but`, wildcard and case matching.

use proptest::prelude::*;
use switchyard::pattern::{self, Json, Limits, Pattern, RuleSet};

const KEYS: &[&str] = &["a", "b", "c", "a.b"];

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        prop::sample::select(vec![
            "x",
            "y",
            "xy",
            "X",
            "xY",
            "",
            "10.0.0.1",
            "10.0.0.01",
            "x*y",
            "straße",
            "STRASSE"
        ])
        .prop_map(|s| Json::String(s.into())),
        prop::sample::select(vec![
            "1",
            "1.0",
            "2",
            "-0",
            "0",
            "5e0",
            "5",
            "1e300",
            "9007199254740993",
            "0.5"
        ])
        .prop_map(|n| Json::Number(n.into())),
        any::<bool>().prop_map(Json::Bool),
        Just(Json::Null),
    ]
}

fn event_value() -> impl Strategy<Value = Json> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|m| {
                Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

fn event() -> impl Strategy<Value = Json> {
    prop::collection::vec((prop::sample::select(KEYS), event_value()), 0..5)
        .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

/// Condition-list elements, as JSON text.
const CONDITIONS: &[&str] = &[
    r#""x""#,
    r#""xy""#,
    r#""""#,
    r#""10.0.0.1""#,
    "1",
    "5",
    "0",
    "9007199254740993",
    "true",
    "false",
    "null",
    r#"{"prefix":"x"}"#,
    r#"{"prefix":""}"#,
    r#"{"suffix":"y"}"#,
    r#"{"suffix":"Y"}"#,
    r#"{"equals-ignore-case":"XY"}"#,
    r#"{"equals-ignore-case":"Straße"}"#,
    r#"{"prefix":{"equals-ignore-case":"X"}}"#,
    r#"{"suffix":{"equals-ignore-case":"y"}}"#,
    r#"{"wildcard":"x*"}"#,
    r#"{"wildcard":"*y"}"#,
    r#"{"wildcard":"x\\*y"}"#,
    r#"{"anything-but":"x"}"#,
    r#"{"anything-but":["x","y"]}"#,
    r#"{"anything-but":[1,2]}"#,
    r#"{"anything-but":5}"#,
    r#"{"anything-but":{"prefix":"x"}}"#,
    r#"{"anything-but":{"suffix":"y"}}"#,
    r#"{"anything-but":{"equals-ignore-case":"x"}}"#,
    r#"{"anything-but":{"wildcard":"x*"}}"#,
    r#"{"numeric":[">",0]}"#,
    r#"{"numeric":[">=",1,"<",2]}"#,
    r#"{"numeric":["=",5]}"#,
    r#"{"numeric":["<",1e300]}"#,
    r#"{"exists":true}"#,
    r#"{"exists":false}"#,
    r#"{"cidr":"10.0.0.0/24"}"#,
];

fn condition_list() -> impl Strategy<Value = Json> {
    prop::collection::vec(prop::sample::select(CONDITIONS), 1..4).prop_map(|items| {
        Json::Array(
            items
                .iter()
                .map(|t| Json::parse(t).expect("valid condition"))
                .collect(),
        )
    })
}

fn pattern_object(depth: u32) -> BoxedStrategy<Json> {
    let field = (prop::sample::select(KEYS), condition_list()).prop_map(|(k, v)| (k.to_owned(), v));
    if depth == 0 {
        return prop::collection::vec(field, 1..3)
            .prop_map(Json::Object)
            .boxed();
    }
    let nested = (prop::sample::select(KEYS), pattern_object(depth - 1))
        .prop_map(|(k, v)| (k.to_owned(), v));
    let or = prop::collection::vec(pattern_object(depth - 1), 2..4)
        .prop_map(|b| ("$or".to_owned(), Json::Array(b)));
    prop::collection::vec(prop_oneof![4 => field, 2 => nested, 1 => or], 1..4)
        .prop_map(Json::Object)
        .boxed()
}

/// The indices of the patterns the reference evaluator says match.
fn reference_matches(patterns: &[Pattern], event: &Json) -> Vec<usize> {
    patterns
        .iter()
        .enumerate()
        .filter(|(_, p)| pattern::reference::matches(p, event).unwrap())
        .map(|(i, _)| i)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn compiled_rule_set_agrees_with_the_reference(
        patterns in prop::collection::vec(pattern_object(2), 1..6),
        event in event(),
    ) {
        let limits = Limits::default();
        let parsed: Vec<_> = patterns.iter().filter_map(|p| pattern::parse_json(p, &limits).ok()).collect();
        prop_assume!(!parsed.is_empty());
        let set = RuleSet::compile(parsed.iter().enumerate());
        let text = event.to_string();
        let mut compiled: Vec<usize> = set.matches_json(text.as_bytes()).unwrap().into_iter().copied().collect();
        compiled.sort_unstable();
        let mut matcher = set.matcher();
        let mut validated: Vec<usize> = matcher
            .matches_validated(&text)
            .unwrap()
            .to_vec()
            .into_iter()
            .map(|i| *matcher.rule(i))
            .collect();
        validated.sort_unstable();
        prop_assert_eq!(&validated, &compiled, "matches_validated, event {}", text);
        prop_assert_eq!(compiled, reference_matches(&parsed, &event), "event {}", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Every pattern also names one shared condition on `q.s` (as every rule of a bus may name
    /// the same `source`): the compiled set hits such shared conditions once for all of them.
    /// The patterns sit under `q`, which the event may make an array of objects, so that array
    /// consistency applies to the shared condition too.
    #[test]
    fn conditions_shared_by_many_rules_agree_with_the_reference(
        patterns in prop::collection::vec(pattern_object(1), 2..10),
        shared in prop::sample::select(CONDITIONS),
        elements in prop::collection::vec((event(), prop::option::of(scalar())), 1..4),
    ) {
        let shared = Json::parse(shared).expect("valid condition");
        let limits = Limits::default();
        let parsed: Vec<_> = patterns
            .into_iter()
            .filter_map(|p| {
                let Json::Object(mut members) = p else { return None };
                members.push(("s".to_owned(), Json::Array(vec![shared.clone()])));
                let nested = Json::Object(vec![("q".to_owned(), Json::Object(members))]);
                pattern::parse_json(&nested, &limits).ok()
            })
            .collect();
        prop_assume!(parsed.len() >= 2);
        let mut objects: Vec<Json> = elements
            .into_iter()
            .map(|(element, s)| {
                let Json::Object(mut members) = element else { unreachable!() };
                members.extend(s.map(|s| ("s".to_owned(), s)));
                Json::Object(members)
            })
            .collect();
        let q = if objects.len() == 1 { objects.remove(0) } else { Json::Array(objects) };
        let event = Json::Object(vec![("q".to_owned(), q)]);
        let set = RuleSet::compile(parsed.iter().enumerate());
        let text = event.to_string();
        let mut compiled: Vec<usize> = set.matches_json(text.as_bytes()).unwrap().into_iter().copied().collect();
        compiled.sort_unstable();
        prop_assert_eq!(compiled, reference_matches(&parsed, &event), "event {}", text);
    }
}

/// Members no pattern names, placed among the others: long strings full of brackets, quotes,
/// escapes (`\u` among them) and multi-byte characters, and nested containers, so that the
/// validated entry point's skipping crosses its 64-byte blocks in every state.
fn filler() -> impl Strategy<Value = (String, Json)> {
    // Escapes (the last four) are one piece in four, so that many blocks have none.
    let piece = prop::sample::select(vec![
        "}", "]", "{", "[", "}]", "é", "😀", "abc", "abcdefgh", ",", ":", " ", "\"", "\\", "\u{1}",
        "\n",
    ]);
    let text = prop::collection::vec(piece, 0..40).prop_map(|p| Json::String(p.concat()));
    let value = text.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec(inner, 0..4).prop_map(|v| {
                Json::Object(
                    v.into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("a{i}"), v))
                        .collect(),
                )
            }),
        ]
    });
    (prop::sample::select(vec!["z", "zz", "a.z", "b{"]), value).prop_map(|(k, v)| (k.to_owned(), v))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The validated entry point skips what no pattern names by structure alone; its answer is
    /// the full reader's, also when a skipped part holds a `\u` escape (read in full then).
    #[test]
    fn the_validated_entry_point_agrees_with_the_full_reader(
        patterns in prop::collection::vec(pattern_object(2), 1..6),
        event in event(),
        fillers in prop::collection::vec((0..6usize, filler()), 0..4),
    ) {
        let limits = Limits::default();
        let parsed: Vec<_> = patterns.iter().filter_map(|p| pattern::parse_json(p, &limits).ok()).collect();
        prop_assume!(!parsed.is_empty());
        let Json::Object(mut members) = event else { unreachable!() };
        for (at, member) in fillers {
            members.insert(at.min(members.len()), member);
        }
        let text = Json::Object(members).to_string();
        let set = RuleSet::compile(parsed.iter().enumerate());
        let mut matcher = set.matcher();
        let mut full: Vec<u32> = matcher.matches_str(&text).unwrap().to_vec();
        full.sort_unstable();
        let mut validated: Vec<u32> = matcher.matches_validated(&text).unwrap().to_vec();
        validated.sort_unstable();
        prop_assert_eq!(validated, full, "event {}", text);
    }
}

/// Arbitrary text mixing JSON punctuation, escapes and multi-byte characters.
fn junk() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "\"",
            "\\",
            "\\u",
            "d83d",
            "\\ude80",
            "a",
            "é",
            "😀",
            "1",
            "-",
            ".",
            "e",
            "true",
            "nul",
            " ",
            "\n",
            "\u{1}",
            "\"a\"",
            "{\"a\":",
            "[1,",
            "\"prefix\"",
            "\"$or\"",
        ]),
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Bad input is refused, never fatal: no text makes parsing or matching panic, and text that
    /// is not a JSON object is always an error rather than an answer.
    #[test]
    fn arbitrary_text_never_panics(pattern_text in junk(), event_text in junk()) {
        let parsed = pattern::parse(&pattern_text);
        if let Ok(p) = &parsed {
            let set = RuleSet::compile([((), p)]);
            let answer = set.matches_json(event_text.as_bytes());
            let is_object = matches!(Json::parse(&event_text), Ok(Json::Object(_)));
            prop_assert_eq!(answer.is_ok(), is_object, "event {:?}", event_text);
        }
        // The same text as an event against a fixed pattern.
        let fixed = pattern::parse(r#"{"a": [{"prefix": ""}, {"exists": false}], "b": {"c": [1]}}"#).unwrap();
        let set = RuleSet::compile([((), &fixed)]);
        let is_object = matches!(Json::parse(&pattern_text), Ok(Json::Object(_)));
        prop_assert_eq!(set.matches_json(pattern_text.as_bytes()).is_ok(), is_object);
    }
}

/// Nesting up to `json::MAX_DEPTH` (1,000 levels, PutEvents' bound) is walked recursively; deeper
/// events are refused. A release build stays within the 2 MiB stack of a tokio worker thread;
/// unoptimised builds have larger frames, so the debug run of this test gets 8 MiB.
#[test]
fn deeply_nested_events_are_refused_without_exhausting_the_stack() {
    let stack = if cfg!(debug_assertions) {
        8 << 20
    } else {
        2 << 20
    };
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(|| {
            let p = pattern::parse(r#"{"a": [{"exists": true}]}"#).unwrap();
            let set = RuleSet::compile([((), &p)]);
            for (open, close) in [("[", "]"), ("{\"x\":", "}"), ("{\"a\":", "}")] {
                let event = format!(
                    "{{\"a\":{}1{}}}",
                    open.repeat(100_000),
                    close.repeat(100_000)
                );
                assert!(
                    set.matches_json(event.as_bytes()).is_err(),
                    "nesting with {open} should be refused"
                );
                // Also where the validated entry point skips by structure (`x` is no pattern's).
                let mut matcher = set.matcher();
                assert_eq!(
                    matcher.matches_validated(&event).map(<[u32]>::len),
                    set.matcher().matches_str(&event).map(<[u32]>::len),
                    "nesting with {open}"
                );
                assert!(Json::parse(&event).is_err());
            }
            let deep = format!("{{\"a\":{}1{}}}", "[".repeat(998), "]".repeat(998));
            assert_eq!(set.matches_json(deep.as_bytes()).unwrap().len(), 1);
            // 999 levels below a member no pattern names: the limit is the same when skipped.
            for levels in [998, 999, 1000] {
                let skipped = format!(
                    "{{\"x\":{}1{},\"a\":1}}",
                    "[".repeat(levels),
                    "]".repeat(levels)
                );
                let empty = format!(
                    "{{\"x\":{}{},\"a\":1}}",
                    "[".repeat(levels),
                    "]".repeat(levels)
                );
                for text in [skipped, empty] {
                    assert_eq!(
                        set.matcher().matches_validated(&text).map(<[u32]>::len),
                        set.matcher().matches_str(&text).map(<[u32]>::len),
                        "{levels} levels"
                    );
                }
            }
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
}

/// Conditions shared by many rules are grouped (hit once for all of them); when two of a rule's
/// grouped conditions are met in different elements of one array and its own condition outside
/// it, the rule must still not match (array consistency), and must when one element has both.
#[test]
fn grouped_conditions_keep_array_consistency() {
    let patterns: Vec<_> = (0..20)
        .map(|i| {
            pattern::parse(&format!(
                r#"{{"top": [{i}], "q": {{"s": ["shared"], "a": ["x"]}}}}"#
            ))
            .unwrap()
        })
        .collect();
    let set = RuleSet::compile(patterns.iter().enumerate());
    let apart = r#"{"top": 7, "q": [{"s": "shared", "a": "y"}, {"s": "z", "a": "x"}]}"#;
    assert_eq!(
        set.matches_json(apart.as_bytes()).unwrap(),
        Vec::<&usize>::new()
    );
    let together = r#"{"top": 7, "q": [{"s": "shared", "a": "y"}, {"s": "shared", "a": "x"}]}"#;
    assert_eq!(set.matches_json(together.as_bytes()).unwrap(), [&7]);
    for (text, rules) in [(apart, 0), (together, 1)] {
        let event = Json::parse(text).unwrap();
        let reference = patterns
            .iter()
            .filter(|p| pattern::reference::matches(p, &event).unwrap())
            .count();
        assert_eq!(reference, rules, "{text}");
    }
}
