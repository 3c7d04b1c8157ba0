//! What validating an event's detail costs beside matching it, single-threaded, in release.
//!
//! `cargo bench --bench schema`
//!
//! The events are `switchyard bench --schema`'s (an order-like detail of about 330 bytes) as
//! ingest holds them: the envelope's text for the matcher, the detail's text for validation.
//! Per pass it times (1) matching every event against `switchyard bench`'s 100 rules, which
//! ingest does for every event anyway, and (2) what `enforce` adds per event: parsing the detail
//! into a `serde_json::Value` and checking it with the compiled validator of the bench's schema.
//! It reports events/s of each, the median and min–max of `BENCH_PASSES` (default 7) passes after
//! a warm-up, and validation ÷ matching in time per event: the yardstick is our own matcher,
//! run beside it in the same process.

use std::time::Instant;

use serde_json::{Value, json};
use switchyard::pattern::{self, RuleSet};
use switchyard::schema::Schema;

const EVENTS: u64 = 100_000;
const RULES: u64 = 100;

fn median(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn main() {
    let passes: usize = std::env::var("BENCH_PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(7);
    let details: Vec<String> = (0..EVENTS)
        .map(|n| {
            json!({"kind": n % RULES, "seq": n, "sent_ns": 1_765_000_000_000_000_000u64 + n,
                   "order": switchyard::bench::order(n)})
            .to_string()
        })
        .collect();
    let envelopes: Vec<String> = details
        .iter()
        .map(|d| {
            format!(
                r#"{{"version":"0","id":"0190a0c4-4b8e-7c3a-9a7e-4d5f6a7b8c9d","detail-type":"bench","source":"bench","account":"000000000000","time":"2026-12-05T10:00:00Z","region":"local","resources":[],"detail":{d}}}"#
            )
        })
        .collect();
    let patterns: Vec<pattern::Pattern> = (0..RULES)
        .map(|i| {
            pattern::parse(&format!(
                r#"{{"source": ["bench"], "detail": {{"kind": [{i}]}}}}"#
            ))
            .expect("a pattern")
        })
        .collect();
    let rules = RuleSet::compile(patterns.iter().enumerate());
    let schema = Schema::from_value(switchyard::bench::order_schema(), "").expect("the schema");

    let mut matcher = rules.matcher();
    let mut time_match = || {
        let started = Instant::now();
        let mut hits = 0usize;
        for event in &envelopes {
            hits += matcher.matches_str(event).expect("an event").len();
        }
        assert_eq!(hits as u64, EVENTS, "every event matches one rule");
        EVENTS as f64 / started.elapsed().as_secs_f64()
    };
    let time_validate = || {
        let started = Instant::now();
        let mut valid = 0u64;
        for detail in &details {
            let value: Value = serde_json::from_str(detail).expect("JSON");
            valid += u64::from(schema.violations(&value).is_empty());
        }
        assert_eq!(valid, EVENTS, "the schema accepts every event");
        EVENTS as f64 / started.elapsed().as_secs_f64()
    };
    // The parse alone: what of (2) is serde_json's.
    let time_parse = || {
        let started = Instant::now();
        let mut members = 0usize;
        for detail in &details {
            let value: Value = serde_json::from_str(detail).expect("JSON");
            members += value.as_object().map_or(0, |o| o.len());
        }
        assert!(members as u64 >= EVENTS);
        EVENTS as f64 / started.elapsed().as_secs_f64()
    };
    time_match();
    time_validate();
    time_parse();
    let (mut matching, mut validating, mut parsing) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..passes {
        matching.push(time_match());
        validating.push(time_validate());
        parsing.push(time_parse());
    }
    let (m, m_lo, m_hi) = median(matching);
    let (v, v_lo, v_hi) = median(validating);
    let (p, p_lo, p_hi) = median(parsing);
    println!("{EVENTS} events, {RULES} rules, {passes} passes (median, min–max):");
    println!("  match the envelope        {m:>12.0} events/s ({m_lo:.0}–{m_hi:.0})");
    println!("  parse + validate detail   {v:>12.0} events/s ({v_lo:.0}–{v_hi:.0})");
    println!("  of which the parse alone  {p:>12.0} events/s ({p_lo:.0}–{p_hi:.0})");
    println!("  validation ÷ matching, time per event: {:.2}×", m / v);
}
