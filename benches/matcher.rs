//! Matcher throughput on the synthetic citylots2 corpus in `benches/data`, single-threaded, in release.
//!
//! `cargo bench --bench matcher [-- SET_NAME...]`
//!
//! For every rule set of `benches/data/citylots2-synthetic-100k.expected.json` it first
//! checks that each rule's match count equals event-ruler's (and exits non-zero if not), then
//! reports events/s matching from raw JSON lines: the median and min–max of `BENCH_PASSES`
//! (default 7) measured passes after one warm-up pass, through `matches_validated` (what ingest
//! and replays call: the corpus is read by serde_json first, as ingest reads every entry) and
//! through `matches_str` (any text, every byte checked; its counts must be the same). Then the
//! big CloudTrail event through both, and the scaling runs (10 to 10,000 exact rules, 1,000
//! mixed-operator rules) with the memory of each compiled set.
//!
//! Beside each rule set that it accepts, the `quamina` crate (the Rust port of Tim Bray's
//! quamina, the fastest peer we know) runs the same events in the same process as a yardstick:
//! its events/s, ours ÷ its, and whether its match counts equal ours (reported, not enforced:
//! its semantics are not EventBridge's in every corner).

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use switchyard::pattern::{self, Json, Limits, Matcher, Pattern, RuleSet};

/// The corpus folder (`benches/data`) and the CloudTrail event's (`tests/data`); both are
/// `$SWITCHYARD_SHARED_DIR/bench-data` when that is set.
fn data_dirs() -> (PathBuf, PathBuf) {
    match std::env::var_os("SWITCHYARD_SHARED_DIR") {
        Some(shared) => {
            let dir = PathBuf::from(shared).join("bench-data");
            (dir.clone(), dir)
        }
        None => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            (root.join("benches/data"), root.join("tests/data"))
        }
    }
}

fn get<'a>(json: &'a Json, key: &str) -> Option<&'a Json> {
    match json {
        Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn text(json: Option<&Json>) -> &str {
    match json {
        Some(Json::String(s)) => s,
        _ => "",
    }
}

fn list(json: Option<&Json>) -> &[Json] {
    match json {
        Some(Json::Array(items)) => items,
        _ => &[],
    }
}

struct Rule {
    pattern: Pattern,
    /// The pattern's JSON text, for the yardstick.
    text: String,
    expected: Option<u64>,
}

struct Passes {
    median: f64,
    min: f64,
    max: f64,
}

fn passes() -> usize {
    std::env::var("BENCH_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
}

/// Which of the matcher's entry points a run measures.
#[derive(Clone, Copy)]
enum Entry {
    /// `matches_validated`: text known to be valid JSON, as at ingest (serde_json has read every
    /// entry) and in replays; the parts no pattern names are passed over by structure.
    Validated,
    /// `matches_str`: text from anywhere, every byte checked.
    Any,
}

impl Entry {
    /// The matching rules of one event through this entry point.
    fn matches<'m, R>(self, matcher: &'m mut Matcher<'_, R>, event: &str) -> &'m [u32] {
        match self {
            Entry::Validated => matcher.matches_validated(event),
            Entry::Any => matcher.matches_str(event),
        }
        .expect("bench events are JSON objects")
    }
}

/// Runs the events through the set `1 + passes()` times; returns the counts of the first pass and
/// the events/s of the measured passes.
fn run<R>(set: &RuleSet<R>, events: &[String], entry: Entry) -> (Vec<u64>, Passes) {
    let mut matcher = set.matcher();
    let mut counts = vec![0u64; set.len()];
    let mut rates = Vec::new();
    for pass in 0..=passes() {
        let start = Instant::now();
        for event in events {
            let hits = entry.matches(&mut matcher, event);
            if pass == 0 {
                for &i in hits {
                    counts[i as usize] += 1;
                }
            }
        }
        if pass > 0 {
            rates.push(events.len() as f64 / start.elapsed().as_secs_f64());
        }
    }
    rates.sort_by(f64::total_cmp);
    let passes = Passes {
        median: rates[rates.len() / 2],
        min: rates[0],
        max: rates[rates.len() - 1],
    };
    (counts, passes)
}

/// The yardstick: the set in quamina, the same passes over the same events. `None` when it
/// refuses one of the patterns.
fn quamina_run(rules: &[Rule], events: &[String]) -> Option<(Vec<u64>, Passes)> {
    let mut q = quamina::Quamina::new();
    for (i, rule) in rules.iter().enumerate() {
        q.add_pattern(i, &rule.text).ok()?;
    }
    let mut counts = vec![0u64; rules.len()];
    let mut rates = Vec::new();
    for pass in 0..=passes() {
        let start = Instant::now();
        for event in events {
            let hits = q.matches_for_event(event.as_bytes()).ok()?;
            if pass == 0 {
                for i in hits {
                    counts[i] += 1;
                }
            }
        }
        if pass > 0 {
            rates.push(events.len() as f64 / start.elapsed().as_secs_f64());
        }
    }
    rates.sort_by(f64::total_cmp);
    Some((
        counts,
        Passes {
            median: rates[rates.len() / 2],
            min: rates[0],
            max: rates[rates.len() - 1],
        },
    ))
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else {
        format!("{:.0}K", rate / 1e3)
    }
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (dir, events_dir) = data_dirs();
    let started = Instant::now();
    let mut gz = Vec::new();
    std::fs::File::open(dir.join("citylots2-synthetic-100k.jlines.gz"))
        .and_then(|f| flate2::read::GzDecoder::new(f).read_to_end(&mut gz))
        .expect("read the citylots2 corpus from benches/data");
    let corpus = String::from_utf8(gz).expect("UTF-8 corpus");
    let events: Vec<String> = corpus.lines().map(str::to_owned).collect();
    drop(corpus);
    // What `matches_validated` relies on, as ingest does: every event was read as JSON before.
    for event in &events {
        serde_json::from_str::<serde::de::IgnoredAny>(event).expect("corpus events are JSON");
    }
    eprintln!(
        "loaded {} events in {:.1}s",
        events.len(),
        started.elapsed().as_secs_f64()
    );

    let expected_text = std::fs::read_to_string(dir.join("citylots2-synthetic-100k.expected.json"))
        .expect("expected counts");
    let expected = Json::parse(&expected_text).expect("expected counts are JSON");
    let limits = Limits::default();
    let mut sets: Vec<(String, Vec<Rule>)> = Vec::new();
    let mut skipped = Vec::new();
    for set in list(get(&expected, "sets")) {
        let name = text(get(set, "name")).to_owned();
        let mut rules = Vec::new();
        if let Some(union) = get(set, "union_of") {
            for part in list(Some(union)) {
                let (_, part_rules) = sets
                    .iter()
                    .find(|(n, _)| n == text(Some(part)))
                    .expect("union part defined before");
                rules.extend(part_rules.iter().map(|r| Rule {
                    pattern: r.pattern.clone(),
                    text: r.text.clone(),
                    expected: r.expected,
                }));
            }
        } else {
            let mut ok = true;
            for rule in list(get(set, "rules")) {
                let expected = match get(rule, "expected_matches") {
                    Some(Json::Number(n)) => n.parse().ok(),
                    _ => None,
                };
                let json = get(rule, "pattern").expect("pattern");
                match pattern::parse_json(json, &limits) {
                    Ok(p) => rules.push(Rule {
                        pattern: p,
                        text: json.to_string(),
                        expected,
                    }),
                    Err(e) => {
                        skipped.push(format!("{name}: {}", e.reason));
                        ok = false;
                        break;
                    }
                }
            }
            if ok && rules.is_empty() {
                skipped.push(format!("{name}: no rules of its own (quamina's older `shellstyle` spelling of WILDCARD)"));
            }
            if !ok || rules.is_empty() {
                continue;
            }
        }
        sets.push((name, rules));
    }

    println!(
        "| set (rules) | events/s median, validated text | min–max ({} passes) | any text (every byte checked) | counts | quamina events/s | ours ÷ quamina (validated / any) | quamina's counts |",
        passes()
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for (name, rules) in &sets {
        if !filter.is_empty() && !filter.iter().any(|f| f == name) {
            continue;
        }
        let set = RuleSet::compile(rules.iter().enumerate().map(|(i, r)| (i, &r.pattern)));
        let (counts, p) = run(&set, &events, Entry::Validated);
        let (any_counts, any) = run(&set, &events, Entry::Any);
        let mut wrong: Vec<String> = rules
            .iter()
            .zip(&counts)
            .enumerate()
            .filter(|(_, (r, c))| r.expected.is_some_and(|e| e != **c))
            .map(|(i, (r, c))| {
                format!(
                    "rule {i}: {c} matches, event-ruler {}",
                    r.expected.unwrap_or(0)
                )
            })
            .collect();
        if any_counts != counts {
            wrong.push("the two entry points' counts differ".to_owned());
        }
        let verdict = if wrong.is_empty() {
            "all equal to event-ruler".to_owned()
        } else {
            wrong.join("; ")
        };
        failed |= !wrong.is_empty();
        let yardstick = match quamina_run(rules, &events) {
            Some((theirs, q)) => {
                let same = if theirs == counts {
                    "equal".to_owned()
                } else {
                    let differ = theirs.iter().zip(&counts).filter(|(a, b)| a != b).count();
                    format!("{differ} rules differ")
                };
                format!(
                    "{} | {:.2}× / {:.2}× | {same}",
                    human(q.median),
                    p.median / q.median,
                    any.median / q.median
                )
            }
            None => "refuses a pattern | | ".to_owned(),
        };
        println!(
            "| {name} ({}) | {} | {}–{} | {} | {verdict} | {yardstick} |",
            rules.len(),
            human(p.median),
            human(p.min),
            human(p.max),
            human(any.median)
        );
    }
    for s in &skipped {
        println!("| {s} (not an EventBridge operator) | n/a | | | | | | |");
    }

    if filter.is_empty() || filter.iter().any(|f| f == "CLOUDTRAIL") {
        cloudtrail(&events_dir);
    }
    if filter.is_empty() || filter.iter().any(|f| f == "SCALING") {
        scaling(&events);
    }
    if failed {
        eprintln!("MATCH COUNTS DIFFER FROM event-ruler");
        std::process::exit(1);
    }
}

fn cloudtrail(events_dir: &std::path::Path) {
    let pattern = pattern::parse(
        &std::fs::read_to_string(events_dir.join("big-cloudtrail-event-pattern.json")).unwrap(),
    )
    .unwrap();
    let event = std::fs::read_to_string(events_dir.join("big-cloudtrail-event.json")).unwrap();
    let set = RuleSet::compile([(0usize, &pattern)]);
    let mut matcher = set.matcher();
    for _ in 0..200 {
        assert_eq!(
            matcher.matches_str(&event).unwrap().len(),
            1,
            "the CloudTrail event must match"
        );
    }
    println!();
    for entry in [Entry::Validated, Entry::Any] {
        let mut times = Vec::new();
        for _ in 0..passes() {
            let start = Instant::now();
            for _ in 0..2000 {
                entry.matches(&mut matcher, &event);
            }
            times.push(start.elapsed().as_secs_f64() / 2000.0 * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "Big CloudTrail event ({} bytes), 6-field pattern, {}: {:.3} ms per event (median of {} × 2,000; min {:.3}, max {:.3})",
            event.len(),
            match entry {
                Entry::Validated => "validated text",
                Entry::Any => "any text",
            },
            times[times.len() / 2],
            times.len(),
            times[0],
            times[times.len() - 1]
        );
    }
}

/// Exact-match rules on MAPBLKLOT drawn from the corpus, and a mixed-operator set.
fn scaling(events: &[String]) {
    let mut values: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in events {
        if let Some(start) = e.find("\"MAPBLKLOT\":\"") {
            let rest = &e[start + 13..];
            let v = &rest[..rest.find('"').unwrap_or(0)];
            if seen.insert(v.to_owned()) {
                values.push(v.to_owned());
            }
        }
    }
    println!(
        "\n| rule set | rules | events/s median | min–max | matches per pass | compiled set heap |"
    );
    println!("|---|---|---|---|---|---|");
    for n in [10usize, 100, 1000, 10000] {
        let patterns: Vec<Pattern> = values
            .iter()
            .take(n)
            .map(|v| {
                pattern::parse(&format!(r#"{{"properties":{{"MAPBLKLOT":["{v}"]}}}}"#)).unwrap()
            })
            .collect();
        report("exact MAPBLKLOT", &patterns, events);
    }
    // Every rule also names the event's `type`, which every event has: one condition shared by
    // all the rules (as every rule of a bus may name the same `source`).
    for n in [10usize, 10000] {
        let patterns: Vec<Pattern> = values
            .iter()
            .take(n)
            .map(|v| {
                pattern::parse(&format!(
                    r#"{{"type":["Feature"],"properties":{{"MAPBLKLOT":["{v}"]}}}}"#
                ))
                .unwrap()
            })
            .collect();
        report("exact MAPBLKLOT + a shared type", &patterns, events);
    }
    report("mixed operators", &mixed_rules(&values, 1000), events);
}

fn mixed_rules(values: &[String], n: usize) -> Vec<Pattern> {
    let streets = [
        "HYDE", "MASON", "FULTON", "MARKET", "MISSION", "VALENCIA", "FOLSOM", "HOWARD", "GEARY",
        "POLK",
    ];
    (0..n)
        .map(|i| {
            let v = &values[i % values.len()];
            let s = streets[i % streets.len()];
            let text = match i % 10 {
                0 => format!(r#"{{"properties":{{"MAPBLKLOT":[{{"prefix":"{}"}}]}}}}"#, &v[..4.min(v.len())]),
                1 => format!(r#"{{"properties":{{"STREET":[{{"suffix":"{}"}}]}}}}"#, &s[s.len() - 2..]),
                2 => format!(r#"{{"properties":{{"STREET":[{{"equals-ignore-case":"{}"}}]}}}}"#, s.to_lowercase()),
                3 => format!(r#"{{"properties":{{"MAPBLKLOT":[{{"anything-but":["{v}"]}}],"STREET":["{s}"]}}}}"#),
                4 => format!(
                    r#"{{"geometry":{{"firstCoordinates":{{"x":[{{"numeric":[">",-122.{:03},"<",-122.{:03}]}}]}}}}}}"#,
                    500 - i % 100,
                    400 - i % 100
                ),
                5 => format!(r#"{{"properties":{{"MAPBLKLOT":[{{"wildcard":"{}*{}"}}]}}}}"#, &v[..2], &v[v.len() - 1..]),
                6 => format!(r#"{{"properties":{{"STREET":["{s}"],"ODD_EVEN":["{}"]}}}}"#, if i % 2 == 0 { "E" } else { "O" }),
                7 => format!(r#"{{"properties":{{"ST_TYPE":[{{"exists":false}}],"STREET":[{{"prefix":"{}"}}]}}}}"#, &s[..2]),
                8 => format!(r#"{{"$or":[{{"properties":{{"BLOCK_NUM":["{}"]}}}},{{"properties":{{"LOT_NUM":["{:03}"]}}}}]}}"#, &v[..4.min(v.len())], i % 60),
                _ => format!(r#"{{"geometry":{{"type":["Polygon"]}},"properties":{{"MAPBLKLOT":["{v}"]}}}}"#),
            };
            pattern::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
        })
        .collect()
}

fn report(label: &str, patterns: &[Pattern], events: &[String]) {
    let set = RuleSet::compile(patterns.iter().enumerate());
    let (counts, p) = run(&set, events, Entry::Validated);
    println!(
        "| {label} | {} | {} | {}–{} | {} | {:.1} KiB |",
        patterns.len(),
        human(p.median),
        human(p.min),
        human(p.max),
        counts.iter().sum::<u64>(),
        set.approx_heap_bytes() as f64 / 1024.0
    );
}
